package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
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

// Env is the pair of clusters scenarios share, and the results so far.
type Env struct {
	// Args are the `quartet up` flags of every cluster, e.g. --nodes 3
	// --runtime sim; the mode flag is added per cluster.
	Args []string

	shared    map[Mode]*cluster.Cluster
	exclusive map[Mode]*sync.RWMutex
	has       map[Controller]bool
	allow     *Allowlist

	mu      sync.Mutex
	results []Result
}

// Result is one scenario's outcome.
type Result struct {
	Name        string
	Quartet     string // passed, failed, skipped (<reason>)
	Upstream    string // passed, failed
	Differences []Difference
	Failures    []string
	Duration    time.Duration
	Retried     int // differences of a first run that was run again
}

// Passed says the scenario passed in both modes with no difference outside
// the allowlist.
func (r Result) Passed() bool {
	return r.Quartet == "passed" && r.Upstream == "passed" && r.disallowed() == 0
}

// Skipped says quartet's run was skipped (a controller it lacks).
func (r Result) Skipped() bool { return strings.HasPrefix(r.Quartet, "skipped") }

func (r Result) disallowed() int {
	n := 0
	for _, d := range r.Differences {
		if d.Allowed == "" {
			n++
		}
	}
	return n
}

// NewEnv starts the shared quartet-mode and upstream-mode clusters side by
// side and loads the allowlist.
func NewEnv(args []string, allowlistFile string) (*Env, error) {
	al, err := LoadAllowlist(allowlistFile)
	if err != nil {
		return nil, err
	}
	e := &Env{Args: args, allow: al, shared: map[Mode]*cluster.Cluster{}, exclusive: map[Mode]*sync.RWMutex{}}
	pair, err := e.startPair(args)
	if err != nil {
		return nil, err
	}
	e.shared = pair
	for _, m := range []Mode{Quartet, Upstream} {
		e.exclusive[m] = &sync.RWMutex{}
	}
	e.has = quartetControllers(pair[Quartet].Output.String())
	return e, nil
}

// startPair starts a quartet-mode and an upstream-mode cluster at once.
func (e *Env) startPair(args []string) (map[Mode]*cluster.Cluster, error) {
	pair := map[Mode]*cluster.Cluster{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for _, m := range []Mode{Quartet, Upstream} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := cluster.Start(cluster.Options{Args: append([]string{"--workload-controllers=" + string(m)}, args...)})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s cluster: %w", m, err)
			}
			if c != nil {
				pair[m] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		for _, c := range pair {
			_ = c.Cleanup() // the start failed; its error is the one to report
		}
		return nil, firstErr
	}
	return pair, nil
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

// Close stops the shared clusters and reports processes left behind.
func (e *Env) Close() error {
	var errs []string
	for _, c := range e.shared {
		if err := c.Cleanup(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Run runs sc in both modes at once, compares the traces and records the
// result; t fails when the scenario does not pass.
func (e *Env) Run(t *testing.T, sc Scenario) {
	start := time.Now()
	res := Result{Name: sc.Name}
	defer func() {
		res.Duration = time.Since(start)
		e.mu.Lock()
		e.results = append(e.results, res)
		e.mu.Unlock()
	}()
	var missing []string
	for _, c := range sc.Controllers {
		if c != None && !e.has[c] {
			missing = append(missing, string(c))
		}
	}

	clusters, release := e.clustersFor(t, sc, &res)
	defer release()

	// Both modes run the scenario at once, on clusters that run many
	// scenarios at once: a wall-clock race (a checkpoint read a moment late,
	// a minute boundary) can make one run differ. A scenario whose runs
	// differ is run once more, and only differences seen again count; the
	// first run's differences stay in the log and the report.
	for attempt := 1; ; attempt++ {
		e.judge(t, sc, &res, e.runModes(t, sc, missing, clusters), missing)
		if attempt == 1 && res.disallowed() > 0 && os.Getenv("SCENARIO_NO_RETRY") == "" {
			for _, d := range res.Differences {
				if d.Allowed == "" {
					t.Logf("first run's difference (running the scenario once more): %s", d)
				}
			}
			res.Retried = res.disallowed()
			continue
		}
		break
	}
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
	if res.Skipped() && res.Upstream == "passed" {
		t.Logf("quartet run %s", res.Quartet)
	}
}

// clustersFor returns the clusters sc runs on, held as sc needs them: a
// pair of its own, or the shared pair alone (Exclusive) or with other
// scenarios; release gives them back.
func (e *Env) clustersFor(t *testing.T, sc Scenario, res *Result) (clusters map[Mode]*cluster.Cluster, release func()) {
	if sc.OwnCluster {
		args := append([]string(nil), e.Args...)
		if sc.Nodes > 0 {
			args = append(args, fmt.Sprintf("--nodes=%d", sc.Nodes))
		}
		pair, err := e.startPair(args)
		if err != nil {
			res.Quartet, res.Upstream = "failed", "failed"
			res.Failures = append(res.Failures, err.Error())
			t.Fatal(err)
		}
		return pair, func() {
			for _, c := range pair {
				if err := c.Cleanup(); err != nil {
					t.Error(err)
				}
			}
		}
	}
	modes := []Mode{Quartet, Upstream}
	for _, m := range modes {
		if sc.Exclusive {
			e.exclusive[m].Lock()
		} else {
			e.exclusive[m].RLock()
		}
	}
	return e.shared, func() {
		for _, m := range modes {
			if sc.Exclusive {
				e.exclusive[m].Unlock()
			} else {
				e.exclusive[m].RUnlock()
			}
		}
	}
}

// judge records in res what one attempt's runs of sc came to: each mode's
// status, the failures (with the failing runs' logs) and, when both passed,
// the differences between their traces.
func (e *Env) judge(t *testing.T, sc Scenario, res *Result, runs map[Mode]*S, missing []string) {
	status := func(s *S) string {
		switch {
		case s == nil:
			return "skipped (quartet lacks " + strings.Join(missing, ", ") + ")"
		case s.skipped != "":
			return "skipped (" + s.skipped + ")"
		case len(s.failures) > 0:
			return "failed"
		}
		return "passed"
	}
	res.Quartet, res.Upstream = status(runs[Quartet]), status(runs[Upstream])
	res.Failures, res.Differences = nil, nil
	for _, m := range []Mode{Upstream, Quartet} {
		if s := runs[m]; s != nil {
			res.Failures = append(res.Failures, s.failures...)
			if len(s.failures) > 0 {
				for _, l := range s.logs {
					t.Log(l)
				}
			}
		}
	}
	if runs[Quartet] != nil && runs[Upstream] != nil && res.Quartet == "passed" && res.Upstream == "passed" {
		qt, ut := runs[Quartet].rec.trace(sc.Unordered), runs[Upstream].rec.trace(sc.Unordered)
		res.Differences = Compare(qt, ut)
		e.allow.Apply(sc.Name, res.Differences)
		if os.Getenv("SCENARIO_TRACE") != "" {
			t.Logf("quartet trace:\n%s", formatTrace(qt))
			t.Logf("upstream trace:\n%s", formatTrace(ut))
		}
	}
}

// runModes runs the scenario in both modes at once (quartet's run left out
// when quartet lacks a controller it needs) and returns the runs.
func (e *Env) runModes(t *testing.T, sc Scenario, missing []string, clusters map[Mode]*cluster.Cluster) map[Mode]*S {
	runs := map[Mode]*S{}
	var wg sync.WaitGroup
	for _, m := range []Mode{Quartet, Upstream} {
		if m == Quartet && len(missing) > 0 {
			continue
		}
		s, err := e.newS(sc, m, clusters[m])
		if err != nil {
			t.Fatalf("%s: %v", m, err)
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
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
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
	fmt.Fprintf(w, "\n%-*s  %-10s  %-10s  %s\n", width, "scenario", "quartet", "upstream", "difference")
	passed, failed, skipped := 0, 0, 0
	for _, r := range rs {
		diff := "equal"
		switch {
		case r.Quartet != "passed" || r.Upstream != "passed":
			diff = "-"
		case r.disallowed() > 0:
			diff = fmt.Sprintf("%d differ", r.disallowed())
		case len(r.Differences) > 0:
			diff = fmt.Sprintf("equal (%d allowed)", len(r.Differences))
		}
		if r.Retried > 0 {
			diff += fmt.Sprintf(", run twice: first run %d differ", r.Retried)
		}
		q := r.Quartet
		if r.Skipped() {
			q = "skipped"
		}
		fmt.Fprintf(w, "%-*s  %-10s  %-10s  %s\n", width, r.Name, q, r.Upstream, diff)
		switch {
		case r.Skipped() && r.Upstream == "passed":
			skipped++
		case r.Passed():
			passed++
		default:
			failed++
		}
	}
	if skipped > 0 {
		fmt.Fprintf(w, "%d passed, %d failed, %d skipped for quartet mode\n", passed, failed, skipped)
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
