package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/test/cluster"
)

// Env is the clusters scenarios share (one per mode), and the results so
// far.
type Env struct {
	// Args are the `quartet up` flags of every cluster, e.g. --nodes 3
	// --runtime sim; the mode flag is added per cluster.
	Args []string

	modes  []Mode
	shared *clusterSet
	// slots bounds the scenarios running on the shared set at once: past a
	// point, more only slow the clusters down until waits time out.
	slots chan struct{}
	// exclusiveSet is the set Exclusive scenarios take turns on (under
	// exclusiveMu), started for the first one, so the others never wait
	// for them.
	exclusiveMu  sync.Mutex
	exclusiveSet *clusterSet
	has          map[Mode]map[Controller]bool
	allow        *Allowlist

	mu      sync.Mutex
	results []Result
}

// Result is one scenario's outcome.
type Result struct {
	Name string
	// Status is each mode's: passed, failed, skipped (<reason>).
	Status      map[Mode]string
	Differences []Difference
	Failures    []string
	// Took is how long the runs took, from the moment they had their
	// clusters.
	Took time.Duration
	// Retried says why a first run was run again ("2 differ", "failed in
	// quartet"); empty when it was not.
	Retried string
}

// Passed says the scenario passed in every mode with no difference outside
// the allowlist.
func (r Result) Passed() bool {
	for _, st := range r.Status {
		if st != "passed" {
			return false
		}
	}
	return r.disallowed() == 0
}

// Skipped says a quartet mode's run was skipped (a controller it lacks)
// and the others passed.
func (r Result) Skipped() bool {
	skipped := false
	for _, st := range r.Status {
		switch {
		case strings.HasPrefix(st, "skipped"):
			skipped = true
		case st != "passed":
			return false
		}
	}
	return skipped
}

func (r Result) disallowed() int {
	n := 0
	for _, d := range r.Differences {
		if d.Allowed == "" {
			n++
		}
	}
	return n
}

// NewEnv starts the shared clusters of every mode ($SCENARIO_MODES, else
// all) side by side and loads the allowlist.
func NewEnv(args []string, allowlistFile string) (*Env, error) {
	al, err := LoadAllowlist(allowlistFile)
	if err != nil {
		return nil, err
	}
	modes, err := modesFromEnv()
	if err != nil {
		return nil, err
	}
	slots := 12
	if v := os.Getenv("SCENARIO_PARALLEL"); v != "" {
		if slots, err = strconv.Atoi(v); err != nil || slots < 1 {
			return nil, fmt.Errorf("SCENARIO_PARALLEL=%s: want a number of scenarios, at least 1", v)
		}
	}
	e := &Env{Args: args, modes: modes, allow: al, slots: make(chan struct{}, slots), has: map[Mode]map[Controller]bool{}}
	set, err := e.startSet(args)
	if err != nil {
		return nil, err
	}
	e.shared = set
	if c := set.byMode[Quartet]; c != nil {
		e.has[Quartet] = quartetControllers(c.Output.String())
	}
	if set.replicas != nil {
		e.has[Standalone] = set.replicas.controllers()
	}
	return e, nil
}

// clusterSet is one cluster per mode, and standalone mode's `quartet
// controllers` replicas beside its cluster.
type clusterSet struct {
	byMode   map[Mode]*cluster.Cluster
	replicas *replicaSet
}

// startSet starts a cluster of each mode at once (standalone's: `quartet up
// --workload-controllers none`, then its replicas).
func (e *Env) startSet(args []string) (*clusterSet, error) {
	set := &clusterSet{byMode: map[Mode]*cluster.Cluster{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for _, m := range e.modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			flag := "--workload-controllers=" + string(m)
			if m == Standalone {
				flag = "--workload-controllers=none"
			}
			c, err := cluster.Start(cluster.Options{Args: append([]string{flag}, args...)})
			var rs *replicaSet
			if err == nil && m == Standalone {
				rs, err = startReplicas(c)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s cluster: %w", m, err)
			}
			if c != nil {
				set.byMode[m] = c
			}
			if rs != nil {
				set.replicas = rs
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		_ = set.cleanup() // the start failed; its error is the one to report
		return nil, firstErr
	}
	return set, nil
}

// cleanup stops the replicas, then the clusters, and reports what was left
// behind or went wrong.
func (set *clusterSet) cleanup() error {
	var errs []string
	if set.replicas != nil {
		if err := set.replicas.stop(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, c := range set.byMode {
		if err := c.Cleanup(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

var controllersLine = regexp.MustCompile(`(?m)^\s*quartet controllers\s+(.*?)\s+\d+\.\ds$`)

// quartetControllers reads which controllers quartet runs from the
// "quartet controllers" line `quartet up` prints.
func quartetControllers(output string) map[Controller]bool {
	has := map[Controller]bool{}
	m := controllersLine.FindStringSubmatch(output)
	if m == nil {
		return has
	}
	for _, n := range strings.Split(m[1], ",") {
		has[Controller(strings.TrimSpace(n))] = true
	}
	return has
}

// Close stops the shared clusters and replicas (and the exclusive
// scenarios' set) and reports processes left behind.
func (e *Env) Close() error {
	err := e.shared.cleanup()
	if e.exclusiveSet != nil {
		err = errors.Join(err, e.exclusiveSet.cleanup())
	}
	return err
}

// Run runs sc in every mode at once, compares the traces and records the
// result; t fails when the scenario does not pass.
func (e *Env) Run(t *testing.T, sc Scenario) {
	res := Result{Name: sc.Name}
	defer func() {
		e.mu.Lock()
		e.results = append(e.results, res)
		e.mu.Unlock()
	}()
	missing := map[Mode][]string{}
	for _, m := range e.modes {
		for _, c := range sc.Controllers {
			if m.QuartetControllers() && c != None && !e.has[m][c] {
				missing[m] = append(missing[m], string(c))
			}
		}
	}

	clusters, release := e.clustersFor(t, sc, &res)
	defer release()
	start := time.Now()
	defer func() { res.Took = time.Since(start) }()

	// Every mode runs the scenario at once, on clusters that run many
	// scenarios at once: a wall-clock race (a checkpoint read a moment late,
	// a minute boundary, a wait that times out while the machine is
	// saturated) can make one run differ or fail. Such a scenario is run once
	// more, and only what happens again counts; the first run's differences
	// and failures stay in the log and the report.
	for attempt := 1; ; attempt++ {
		e.judge(t, sc, &res, e.runModes(t, sc, missing, clusters), missing)
		why := e.retryReason(&res)
		if attempt > 1 || why == "" || os.Getenv("SCENARIO_NO_RETRY") != "" {
			break
		}
		res.Retried = why
		for _, f := range res.Failures {
			t.Logf("first run's failure (running the scenario once more): %s", f)
		}
		for _, d := range res.Differences {
			if d.Allowed == "" {
				t.Logf("first run's difference (running the scenario once more): %s", d)
			}
		}
	}
	e.report(t, &res)
}

// retryReason says why res's runs should run again ("failed in quartet",
// "2 differ"), or "" when they passed.
func (e *Env) retryReason(res *Result) string {
	var failed []string
	for _, m := range e.modes {
		if res.Status[m] == "failed" {
			failed = append(failed, string(m))
		}
	}
	switch {
	case len(failed) > 0:
		return "failed in " + strings.Join(failed, ", ")
	case res.disallowed() > 0:
		return fmt.Sprintf("%d differ", res.disallowed())
	}
	return ""
}

// report fails t with res's failures and disallowed differences and logs
// the rest.
func (e *Env) report(t *testing.T, res *Result) {
	for _, f := range res.Failures {
		t.Error(f)
	}
	for _, d := range res.Differences {
		if d.Allowed == "" {
			t.Errorf("difference: %s", d)
		} else {
			t.Logf("allowed difference: %s", d)
		}
	}
	for _, m := range e.modes {
		if strings.HasPrefix(res.Status[m], "skipped") {
			t.Logf("%s run %s", m, res.Status[m])
		}
	}
}

// clustersFor returns the clusters sc runs on, held as sc needs them: a set
// of its own (OwnCluster), the exclusive scenarios' set alone (Exclusive), or
// a slot on the shared set; release gives them back.
func (e *Env) clustersFor(t *testing.T, sc Scenario, res *Result) (clusters *clusterSet, release func()) {
	startFailed := func(err error) {
		res.Status = map[Mode]string{}
		for _, m := range e.modes {
			res.Status[m] = "failed"
		}
		res.Failures = append(res.Failures, err.Error())
		t.Fatal(err)
	}
	switch {
	case sc.OwnCluster:
		args := append([]string(nil), e.Args...)
		if sc.Nodes > 0 {
			args = append(args, fmt.Sprintf("--nodes=%d", sc.Nodes))
		}
		set, err := e.startSet(args)
		if err != nil {
			startFailed(err)
		}
		return set, func() {
			if err := set.cleanup(); err != nil {
				t.Error(err)
			}
		}
	case sc.Exclusive:
		e.exclusiveMu.Lock()
		if e.exclusiveSet == nil {
			set, err := e.startSet(e.Args)
			if err != nil {
				e.exclusiveMu.Unlock()
				startFailed(err)
			}
			e.exclusiveSet = set
		}
		return e.exclusiveSet, e.exclusiveMu.Unlock
	}
	e.slots <- struct{}{}
	return e.shared, func() { <-e.slots }
}

// judge records in res what one attempt's runs of sc came to: each mode's
// status, the failures (with the failing runs' logs) and, for each quartet
// mode that passed beside a passed upstream run, the differences between
// its trace and upstream's.
func (e *Env) judge(t *testing.T, sc Scenario, res *Result, runs map[Mode]*S, missing map[Mode][]string) {
	status := func(m Mode, s *S) string {
		switch {
		case s == nil:
			return "skipped (quartet lacks " + strings.Join(missing[m], ", ") + ")"
		case s.skipped != "":
			return "skipped (" + s.skipped + ")"
		case len(s.failures) > 0:
			return "failed"
		}
		return "passed"
	}
	res.Status, res.Failures, res.Differences = map[Mode]string{}, nil, nil
	for _, m := range e.modes {
		res.Status[m] = status(m, runs[m])
		if s := runs[m]; s != nil {
			res.Failures = append(res.Failures, s.failures...)
			if len(s.failures) > 0 {
				for _, l := range s.logs {
					t.Log(l)
				}
			}
		}
	}
	if res.Status[Upstream] != "passed" {
		return
	}
	ut := runs[Upstream].rec.trace(sc.Unordered)
	for _, m := range e.modes {
		if !m.QuartetControllers() || res.Status[m] != "passed" {
			continue
		}
		qt := runs[m].rec.trace(sc.Unordered)
		diffs := Compare(qt, ut)
		for i := range diffs {
			diffs[i].Mode = m
		}
		e.allow.Apply(sc.Name, diffs)
		res.Differences = append(res.Differences, diffs...)
		if os.Getenv("SCENARIO_TRACE") != "" {
			t.Logf("%s trace:\n%s", m, formatTrace(qt))
		}
	}
	if os.Getenv("SCENARIO_TRACE") != "" {
		t.Logf("upstream trace:\n%s", formatTrace(ut))
	}
}

// runModes runs the scenario in every mode at once (a quartet mode's run
// left out when it lacks a controller the scenario needs) and returns the
// runs.
func (e *Env) runModes(t *testing.T, sc Scenario, missing map[Mode][]string, clusters *clusterSet) map[Mode]*S {
	runs := map[Mode]*S{}
	var wg sync.WaitGroup
	for _, m := range e.modes {
		if len(missing[m]) > 0 {
			continue
		}
		s, err := e.newS(sc, m, clusters.byMode[m])
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if m == Standalone {
			s.replicas = clusters.replicas
		}
		runs[m] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.cancel()
			defer s.deleteNamespace()
			defer s.rec.stop()
			done := make(chan struct{})
			go func() {
				defer close(done)
				sc.Run(s)
			}()
			<-done
			s.rec.sync(s.Ctx)
		}()
	}
	wg.Wait()
	return runs
}

func (e *Env) newS(sc Scenario, m Mode, c *cluster.Cluster) (*S, error) {
	timeout := sc.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	client, err := c.Client()
	if err != nil {
		cancel()
		return nil, err
	}
	ns := namespaceFor(sc.Name)
	// A scenario run once more finds its first run's namespace still being
	// deleted (its pods terminating): wait for it to go.
	for {
		_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	// The serviceaccount controller creates "default" in a new namespace a
	// moment later; until then the admission plugin refuses pods. Wait for it
	// so that race does not show up as a difference between the modes.
	if err := waitDefaultServiceAccount(ctx, client, ns); err != nil {
		cancel()
		return nil, err
	}
	rec, err := newRecorder(ctx, client, ns)
	if err != nil {
		cancel()
		return nil, err
	}
	return &S{Mode: m, NS: ns, Ctx: ctx, Client: client, cluster: c, rec: rec, start: time.Now(), cancel: cancel}, nil
}

// Results returns the results so far, sorted by name.
func (e *Env) Results() []Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := append([]Result(nil), e.results...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Report prints the table `make conformance` shows and its last line
// "N passed, M failed" (and K skipped when quartet lacks controllers).
func (e *Env) Report(w io.Writer) {
	rs := e.Results()
	width := len("scenario")
	for _, r := range rs {
		width = max(width, len(r.Name))
	}
	fmt.Fprintf(w, "\n%-*s", width, "scenario")
	for _, m := range e.modes {
		fmt.Fprintf(w, "  %-10s", m)
	}
	fmt.Fprintf(w, "  %5s  %s\n", "took", "difference")
	passed, failed, skipped := 0, 0, 0
	for _, r := range rs {
		diff := "equal"
		allRan := true
		for _, m := range e.modes {
			allRan = allRan && r.Status[m] == "passed"
		}
		switch {
		case !allRan:
			diff = "-"
		case r.disallowed() > 0:
			diff = fmt.Sprintf("%d differ", r.disallowed())
		case len(r.Differences) > 0:
			diff = fmt.Sprintf("equal (%d allowed)", len(r.Differences))
		}
		if r.Retried != "" {
			diff += ", run twice: first run " + r.Retried
		}
		fmt.Fprintf(w, "%-*s", width, r.Name)
		for _, m := range e.modes {
			st, _, _ := strings.Cut(r.Status[m], " (")
			fmt.Fprintf(w, "  %-10s", st)
		}
		fmt.Fprintf(w, "  %4.0fs  %s\n", r.Took.Seconds(), diff)
		switch {
		case r.Skipped():
			skipped++
		case r.Passed():
			passed++
		default:
			failed++
		}
	}
	if skipped > 0 {
		fmt.Fprintf(w, "%d passed, %d failed, %d skipped for a quartet mode\n", passed, failed, skipped)
		return
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
}

func formatTrace(t Trace) string {
	var b strings.Builder
	fmt.Fprintf(&b, "order:\n  %s\n", strings.Join(t.Order, "\n  "))
	fmt.Fprintf(&b, "objects:\n  %s\n", strings.Join(t.Objects, "\n  "))
	for _, c := range t.Checkpoints {
		fmt.Fprintf(&b, "checkpoint %q:\n  %s\n", c.Name, strings.Join(c.Lines, "\n  "))
	}
	fmt.Fprintf(&b, "events:\n  %s\n", strings.Join(t.Events, "\n  "))
	fmt.Fprintf(&b, "notes:\n  %s\n", strings.Join(t.Notes, "\n  "))
	return b.String()
}

func waitDefaultServiceAccount(ctx context.Context, client kubernetes.Interface, ns string) error {
	for {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("waiting for service account %s/default: %w", ns, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service account %s/default never appeared: %w", ns, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
