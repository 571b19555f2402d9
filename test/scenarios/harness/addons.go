package harness

import (
	"strings"
)

// DataDir is the cluster's data dir; local-path volumes live in
// DataDir()/storage.
func (s *S) DataDir() string { return s.cluster.DataDir }

// DNSAddr is the address cluster DNS listens on, as `quartet up` printed it
// on its "cluster DNS" line; "" if it printed none.
func (s *S) DNSAddr() string {
	for _, line := range strings.Split(s.cluster.Output.String(), "\n") {
		f := strings.Fields(line)
		// The ready line names the address; a line of progress does not.
		if len(f) >= 3 && f[0] == "cluster" && f[1] == "DNS" && strings.Contains(f[2], ":") {
			return f[2]
		}
	}
	return ""
}
