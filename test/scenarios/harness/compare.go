package harness

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
)

// Difference is one way a quartet mode's trace differs from upstream's.
type Difference struct {
	Mode    Mode   // the quartet mode (quartet or standalone)
	Section string // order, objects, checkpoint <name>, events, notes
	Line    string // "quartet only: ..." / "upstream only: ..."
	Allowed string // the allowlist's reason, when allowlisted
}

func (d Difference) String() string {
	s := d.Section + ": " + d.Line
	if d.Mode != "" {
		s = string(d.Mode) + " vs upstream, " + s
	}
	if d.Allowed != "" {
		s += "   [allowed: " + d.Allowed + "]"
	}
	return s
}

// Compare lists the differences between two traces.
func Compare(q, u Trace) []Difference {
	var diffs []Difference
	diffs = append(diffs, sequenceDiff("order", q.Order, u.Order)...)
	diffs = append(diffs, setDiff("objects", q.Objects, u.Objects)...)
	for i := 0; i < len(q.Checkpoints) || i < len(u.Checkpoints); i++ {
		var qc, uc Checkpoint
		if i < len(q.Checkpoints) {
			qc = q.Checkpoints[i]
		}
		if i < len(u.Checkpoints) {
			uc = u.Checkpoints[i]
		}
		name := qc.Name
		if name == "" {
			name = uc.Name
		}
		if qc.Name != uc.Name {
			diffs = append(diffs, Difference{Section: "checkpoints", Line: fmt.Sprintf("checkpoint %d is %q in quartet, %q in upstream", i+1, qc.Name, uc.Name)})
			continue
		}
		diffs = append(diffs, setDiff("checkpoint "+name, qc.Lines, uc.Lines)...)
	}
	diffs = append(diffs, setDiff("events", q.Events, u.Events)...)
	diffs = append(diffs, sequenceDiff("notes", q.Notes, u.Notes)...)
	return diffs
}

// setDiff compares two sorted multisets of lines.
func setDiff(section string, q, u []string) []Difference {
	count := map[string]int{}
	for _, l := range q {
		count[l]++
	}
	for _, l := range u {
		count[l]--
	}
	var out []Difference
	for _, l := range q {
		if count[l] > 0 {
			out = append(out, Difference{Section: section, Line: "quartet only: " + l})
			count[l]--
		}
	}
	for _, l := range u {
		if count[l] < 0 {
			out = append(out, Difference{Section: section, Line: "upstream only: " + l})
			count[l]++
		}
	}
	return out
}

// sequenceDiff reports the first point where two sequences diverge, with
// both tails, since one early difference shifts every later line.
func sequenceDiff(section string, q, u []string) []Difference {
	i := 0
	for i < len(q) && i < len(u) && q[i] == u[i] {
		i++
	}
	if i == len(q) && i == len(u) {
		return nil
	}
	tail := func(s []string) string {
		end := min(i+5, len(s))
		if i >= len(s) {
			return "<end>"
		}
		return strings.Join(s[i:end], ", ")
	}
	return []Difference{{Section: section, Line: fmt.Sprintf("diverge at #%d: quartet [%s] upstream [%s]", i+1, tail(q), tail(u))}}
}

// Allowlist is the reviewed list of accepted differences. Each line is
//
//	<scenario glob> <section glob> <regexp on the difference line> # reason
//
// and every entry must carry a reason.
type Allowlist struct {
	entries []allowEntry
}

type allowEntry struct {
	scenario, section string
	re                *regexp.Regexp
	reason            string
	line              int
}

// LoadAllowlist reads an allowlist file; a missing file is an empty list.
func LoadAllowlist(file string) (*Allowlist, error) {
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return &Allowlist{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	al := &Allowlist{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		body, reason, ok := strings.Cut(line, " # ")
		if !ok || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: an allowlist entry needs a reason after \" # \"", file, n)
		}
		f := strings.Fields(body)
		if len(f) < 3 {
			return nil, fmt.Errorf("%s:%d: want <scenario glob> <section glob> <regexp> # reason", file, n)
		}
		re, err := regexp.Compile(strings.Join(f[2:], " "))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, n, err)
		}
		al.entries = append(al.entries, allowEntry{scenario: f[0], section: f[1], re: re, reason: strings.TrimSpace(reason), line: n})
	}
	return al, sc.Err()
}

// Apply marks the allowed differences of a scenario.
func (al *Allowlist) Apply(scenario string, diffs []Difference) {
	for i := range diffs {
		for _, e := range al.entries {
			okS, _ := path.Match(e.scenario, scenario)
			okSec, _ := path.Match(e.section, diffs[i].Section)
			if okS && okSec && e.re.MatchString(diffs[i].Line) {
				diffs[i].Allowed = e.reason
				break
			}
		}
	}
}
