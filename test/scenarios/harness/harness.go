// Package harness runs differential scenarios: each scenario is a Go function
// that drives a cluster as a user would, run at once against a cluster with
// quartet's workload controllers, one with upstream's, and one without any
// beside which `quartet controllers` runs, each in its own namespace. Every
// run records a normalized trace; the quartet modes' traces must equal
// upstream's except for the differences listed in the reviewed allowlist.
package harness

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mode is which workload controllers a cluster runs.
type Mode string

// The modes every scenario runs in: quartet's controllers in `quartet up`,
// upstream's (the oracle), and quartet's in `quartet controllers` processes
// (two replicas, leader election) beside a `quartet up
// --workload-controllers none` cluster.
const (
	Quartet    Mode = "quartet"
	Upstream   Mode = "upstream"
	Standalone Mode = "standalone"
)

// Modes lists every mode, in the report's column order.
var Modes = []Mode{Quartet, Upstream, Standalone}

// QuartetControllers says the mode runs quartet's controllers (the
// extensions apply).
func (m Mode) QuartetControllers() bool { return m == Quartet || m == Standalone }

// modesFromEnv returns the modes to run: $SCENARIO_MODES (comma-separated,
// upstream always among them), else every mode.
func modesFromEnv() ([]Mode, error) {
	v := os.Getenv("SCENARIO_MODES")
	if v == "" {
		return Modes, nil
	}
	var out []Mode
	for _, n := range strings.Split(v, ",") {
		m := Mode(strings.TrimSpace(n))
		if !slices.Contains(Modes, m) {
			return nil, fmt.Errorf("SCENARIO_MODES=%s: unknown mode %q (want some of quartet, upstream, standalone)", v, m)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if !slices.Contains(out, Upstream) {
		return nil, fmt.Errorf("SCENARIO_MODES=%s: upstream must be one (the traces are compared with it)", v)
	}
	slices.SortFunc(out, func(a, b Mode) int { return slices.Index(Modes, a) - slices.Index(Modes, b) })
	return out, nil
}

// Controller names a workload controller a scenario exercises.
type Controller string

// Controllers, as quartet up reports them on its "quartet controllers" line.
const (
	StatefulSet      Controller = "statefulset"
	DaemonSet        Controller = "daemonset"
	Job              Controller = "job"
	CronJob          Controller = "cronjob"
	TTLAfterFinished Controller = "ttlafterfinished"
	// None marks a scenario that needs no workload controller (it checks
	// the apiserver or the nodes); it runs in every mode regardless.
	None Controller = ""
)

// Scenario is one behaviour, checked in every mode.
type Scenario struct {
	// Name is "<area>/<behaviour>", e.g. "statefulset/ordered-create".
	Name string
	// Controllers lists the quartet controllers the scenario needs; while
	// quartet lacks one, its quartet modes' runs are skipped, never passed.
	Controllers []Controller
	// Timeout bounds one run (default 3 minutes).
	Timeout time.Duration
	// Exclusive scenarios change what every namespace shares (nodes), so
	// they run alone on their cluster.
	Exclusive bool
	// OwnCluster scenarios stop and restart the cluster, so they get
	// clusters of their own (one per mode).
	OwnCluster bool
	// Unordered lists kinds whose creation order is not part of the
	// behaviour (e.g. pods of a Parallel StatefulSet): they compare as sets.
	Unordered []string
	// Nodes is the node count of OwnCluster clusters (default 3).
	Nodes int
	// Run drives the cluster and asserts what must happen.
	Run func(s *S)
}

var (
	registryMu sync.Mutex
	registry   []Scenario
)

// Register adds scenarios to the suite; call it from a var initializer or
// init in a _test.go file.
func Register(scs ...Scenario) bool {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, sc := range scs {
		if sc.Name == "" || sc.Run == nil {
			panic("harness.Register: a scenario needs a Name and a Run")
		}
		for _, have := range registry {
			if have.Name == sc.Name {
				panic(fmt.Sprintf("harness.Register: scenario %q registered twice", sc.Name))
			}
		}
		registry = append(registry, sc)
	}
	return true
}

// Scenarios returns the registered scenarios sorted by name.
func Scenarios() []Scenario {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := append([]Scenario(nil), registry...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// namespaceFor turns a scenario name into a namespace name.
func namespaceFor(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	ns := strings.Trim(b.String(), "-")
	if len(ns) > 50 {
		ns = ns[:50]
	}
	return strings.Trim(ns, "-")
}
