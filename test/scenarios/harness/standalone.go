package harness

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"quartet.dev/quartet/test/cluster"
)

// replicaArgs are the flags of standalone mode's `quartet controllers`
// replicas: every controller, every Job (the cluster has no Job controller
// of its own), and Lease timings short enough that a lost leader is
// replaced within seconds.
var replicaArgs = []string{"--controllers=*", "--take-over-jobs",
	"--leader-elect-lease-duration=8s", "--leader-elect-renew-deadline=6s", "--leader-elect-retry-period=1s"}

// replicaSet is standalone mode's two `quartet controllers` processes beside
// one `--workload-controllers none` cluster, with deploy/'s permissions.
// Like a Deployment, it starts a replica again when it exits (after a
// back-off); an exit is a failure of the run unless the scenario stopped
// the cluster (a leader that cannot renew its Lease exits by design).
type replicaSet struct {
	members []*cluster.Controllers

	mu        sync.Mutex
	stopping  bool
	restarted bool // a scenario stopped and started the cluster
	exits     []string
	wg        sync.WaitGroup
}

// startReplicas installs deploy/'s namespace, account and roles on c, starts
// two replicas with that account's token and waits until one leads.
func startReplicas(c *cluster.Cluster) (*replicaSet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	kubeconfig, err := c.InstallControllerAccess(ctx, "quartet-controllers.yaml", "takeover.yaml")
	if err != nil {
		return nil, err
	}
	rs := &replicaSet{}
	for _, name := range []string{"replica-a", "replica-b"} {
		k, err := cluster.StartControllers(name, kubeconfig, replicaArgs...)
		if err != nil {
			_ = rs.stop()
			return nil, err
		}
		rs.members = append(rs.members, k)
		rs.wg.Add(1)
		go rs.supervise(k)
	}
	for !rs.leading() {
		if ctx.Err() != nil {
			_ = rs.stop()
			return nil, fmt.Errorf("no quartet controllers replica leads after 4 minutes:\n%s", rs.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return rs, nil
}

// supervise starts k again whenever it exits, until the set stops.
func (rs *replicaSet) supervise(k *cluster.Controllers) {
	defer rs.wg.Done()
	backoff := time.Second
	for {
		err := k.ExitErr()
		rs.mu.Lock()
		if rs.stopping {
			rs.mu.Unlock()
			return
		}
		rs.exits = append(rs.exits, fmt.Sprintf("%s exited (%v): %s", k.Name, err, lastLines(k.Output.String(), 3)))
		rs.mu.Unlock()
		time.Sleep(backoff)
		backoff = min(2*backoff, 10*time.Second)
		rs.mu.Lock()
		if !rs.stopping {
			_ = k.Restart() // a failed start exits, and the loop tries again
		}
		rs.mu.Unlock()
	}
}

func (rs *replicaSet) leading() bool {
	for _, k := range rs.members {
		if k.Leading() {
			return true
		}
	}
	return false
}

// clusterRestarting says a scenario stops the cluster: replicas exiting
// after that are expected.
func (rs *replicaSet) clusterRestarting() {
	rs.mu.Lock()
	rs.restarted = true
	rs.mu.Unlock()
}

// stop stops every replica by its pid (SIGTERM, then SIGKILL), checks that
// nothing of theirs is left, and reports exits during the run.
func (rs *replicaSet) stop() error {
	rs.mu.Lock()
	rs.stopping = true
	exits, restarted := rs.exits, rs.restarted
	rs.mu.Unlock()
	var errs []string
	if len(exits) > 0 && !restarted {
		errs = append(errs, "quartet controllers replicas exited during the run: "+strings.Join(exits, "; "))
	}
	for _, k := range rs.members {
		if err := k.Cleanup(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	rs.wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (rs *replicaSet) output() string {
	var b strings.Builder
	for _, k := range rs.members {
		fmt.Fprintf(&b, "--- quartet controllers %s:\n%s", k.Name, k.Output.String())
	}
	return b.String()
}

var replicaControllers = regexp.MustCompile(`(?m): controllers (.*?) against `)

// controllers reads which controllers the replicas run from their first
// line ("quartet …: controllers statefulset, daemonset, … against URL").
func (rs *replicaSet) controllers() map[Controller]bool {
	has := map[Controller]bool{}
	if m := replicaControllers.FindStringSubmatch(rs.members[0].Output.String()); m != nil {
		for _, n := range strings.Split(m[1], ",") {
			has[Controller(strings.TrimSpace(n))] = true
		}
	}
	return has
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
