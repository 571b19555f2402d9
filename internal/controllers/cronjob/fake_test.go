package cronjob

import (
	"strings"

	"k8s.io/client-go/tools/record"
)

// drain returns the events a FakeRecorder holds as "Type Reason" strings,
// or with messages when full is set.
func drain(rec *record.FakeRecorder, full bool) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			if !full {
				f := strings.Fields(e)
				e = strings.Join(f[:min(2, len(f))], " ")
			}
			out = append(out, e)
		default:
			return out
		}
	}
}
