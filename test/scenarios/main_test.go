// Package scenarios checks every workload behaviour against quartet's
// controllers (in `quartet up`, and in `quartet controllers` processes beside
// a cluster without workload controllers) and against upstream's, and
// compares what happened. `make conformance` runs it and prints the table;
// see docs/scenarios.md.
package scenarios

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"quartet.dev/quartet/test/scenarios/harness"
)

// clusterArgs are the `quartet up` flags of the shared clusters: three
// nodes, and the auto runtime, so containers with a command run as real
// processes and the rest are simulated.
var clusterArgs = []string{"--nodes=3", "--runtime=auto"}

var env *harness.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("scenarios: skipped in -short mode")
		os.Exit(0)
	}
	var err error
	env, err = harness.NewEnv(clusterArgs, "allowlist.txt")
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenarios:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Report(os.Stdout)
	if file := os.Getenv("SCENARIO_REPORT"); file != "" {
		if f, err := os.Create(file); err == nil {
			env.Report(f)
			f.Close()
		}
	}
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "scenarios:", err)
		code = 1
	}
	os.Exit(code)
}

// TestScenarios runs every registered scenario, all at once except the
// exclusive ones; `go test -run 'TestScenarios/chapter/' ./test/scenarios`
// runs a subset.
func TestScenarios(t *testing.T) {
	for _, sc := range harness.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			env.Run(t, sc)
		})
	}
}
