// Package harness runs differential scenarios: each scenario is a Go function
// that drives a cluster as a user would, run once against a cluster with
// quartet's workload controllers and once against one with upstream's, each
// in its own namespace. Both runs record a normalized trace; the traces must
// be equal except for the differences listed in the reviewed allowlist.
package harness

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mode is which workload controllers a cluster runs.
type Mode string

// The two modes every scenario runs in.
const (
	Quartet  Mode = "quartet"
	Upstream Mode = "upstream"
)

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
	// the apiserver or the nodes); it runs in both modes regardless.
	None Controller = ""
)

// Scenario is one behaviour, checked in both modes.
type Scenario struct {
	// Name is "<area>/<behaviour>", e.g. "statefulset/ordered-create".
	Name string
	// Controllers lists the quartet controllers the scenario needs; while
	// quartet lacks one, its quartet run is skipped, never passed.
	Controllers []Controller
	// Timeout bounds one run (default 3 minutes).
	Timeout time.Duration
	// Exclusive scenarios change what every namespace shares (nodes), so
	// they run alone on their cluster.
	Exclusive bool
	// OwnCluster scenarios stop and restart the cluster, so they get a
	// cluster pair of their own.
	OwnCluster bool
	// Unordered lists kinds whose creation order is not part of the
	// behaviour (e.g. pods of a Parallel StatefulSet): they compare as sets.
	Unordered []string
	// Nodes is the node count of an OwnCluster pair (default 3).
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
