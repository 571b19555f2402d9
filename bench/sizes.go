package bench

import (
	"fmt"
	"time"
)

// Size is how big each scenario is: the issues' sizes for `make bench`,
// small ones for `make bench-quick`. Scenario estimates (Scenario.Estimate)
// are for the quick sizes, the only run that fits scenarios before a
// minute boundary.
type Size struct {
	Rounds          int
	Nodes           int // nodes of the general sessions (room for the pods: 110 per node)
	WarmStarts      int // warm starts per startup run
	Idle            time.Duration
	OrderedReplicas int
	ParallelPods    int
	RollingPods     int
	DaemonNodes     int
	NodeAdds        int
	JobCompletions  int
	JobParallelism  int
	ManyJobs        int
	ManyJobsPods    int // completions (and parallelism) of each
	CronJobs        int
	LatencyPods     int
	ScaleNodes      int
	ScalePods       int
	Settle          time.Duration // before reading memory at scale
	Quiet           time.Duration // without workload-controller requests ends a window
	CeilingWorkers  int
	CreateWorkers   int // the bench's own concurrent creates (many Jobs, CronJobs)
	Timeout         time.Duration
}

// FullSize is the issues' sizes.
func FullSize() Size {
	return Size{
		Rounds: 3, Nodes: 20, WarmStarts: 3, Idle: 30 * time.Second,
		OrderedReplicas: 50, ParallelPods: 1000, RollingPods: 200,
		DaemonNodes: 500, NodeAdds: 5,
		JobCompletions: 5000, JobParallelism: 200, ManyJobs: 200, ManyJobsPods: 10,
		CronJobs: 1000, LatencyPods: 50, ScaleNodes: 1000, ScalePods: 10000, Settle: 15 * time.Second,
		Quiet: time.Second, CeilingWorkers: 256, CreateWorkers: 16, Timeout: 20 * time.Minute,
	}
}

// QuickSize is small enough for every scenario of both modes to run in
// under three minutes on two cores.
func QuickSize() Size {
	return Size{
		Rounds: 1, Nodes: 20, WarmStarts: 1, Idle: time.Second,
		OrderedReplicas: 10, ParallelPods: 100, RollingPods: 10,
		DaemonNodes: 20, NodeAdds: 2,
		JobCompletions: 60, JobParallelism: 20, ManyJobs: 10, ManyJobsPods: 5,
		CronJobs: 20, LatencyPods: 10, ScaleNodes: 20, ScalePods: 300, Settle: 2 * time.Second,
		Quiet: 300 * time.Millisecond, CeilingWorkers: 256, CreateWorkers: 16, Timeout: 2 * time.Minute,
	}
}

// Sessions groups the scenarios into clusters. The full run starts a
// fresh cluster per scenario group in each mode and round; the quick run
// puts every scenario in one cluster per mode.
func Sessions(quick bool, s Size) []Session {
	general := []string{"--runtime=sim", fmt.Sprintf("--nodes=%d", s.Nodes)}
	if quick {
		return []Session{{
			Name: "quick: every scenario, small, one cluster per mode",
			Args: general,
			Scenarios: []*Scenario{
				startupScenario(s), cronScenario(s), latencyScenario(s),
				orderedScenario(s), parallelScenario(s), rollingScenario(s),
				daemonSetScenario(s), nodeAddScenario(s),
				bigJobScenario(s), manyJobsScenario(s), scaleScenario(s),
			},
		}, imageSession(quick)}
	}
	return []Session{
		{Name: "startup (quartet up defaults)", Args: nil, Scenarios: []*Scenario{startupScenario(s)}},
		{Name: "statefulset ordered", Args: general, Scenarios: []*Scenario{orderedScenario(s)}},
		{Name: "statefulset parallel", Args: general, Scenarios: []*Scenario{parallelScenario(s)}},
		{Name: "statefulset rolling update", Args: general, Scenarios: []*Scenario{rollingScenario(s)}},
		{Name: "daemonset", Args: []string{"--runtime=sim", fmt.Sprintf("--nodes=%d", s.DaemonNodes)},
			Scenarios: []*Scenario{daemonSetScenario(s), nodeAddScenario(s)}},
		{Name: "job", Args: general, Scenarios: []*Scenario{bigJobScenario(s)}},
		{Name: "many jobs", Args: general, Scenarios: []*Scenario{manyJobsScenario(s)}},
		{Name: "cronjob", Args: general, Scenarios: []*Scenario{cronScenario(s)}},
		{Name: "node agent latency", Args: general, Scenarios: []*Scenario{latencyScenario(s)}},
		{Name: "node agent scale", Args: []string{"--runtime=sim", fmt.Sprintf("--nodes=%d", s.ScaleNodes)},
			Scenarios: []*Scenario{scaleScenario(s)}, Rounds: 1},
		imageSession(quick),
	}
}
