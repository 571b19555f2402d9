package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"quartet.dev/quartet/internal/control"
	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/test/cluster"
)

// Options say what to run.
type Options struct {
	// Quick runs the small version of every scenario, one round, in one
	// cluster per mode.
	Quick bool
	// Rounds is how many times each scenario runs in each mode (at least 3
	// for the full run); the order of the modes swaps every round.
	Rounds int
	// Only keeps the scenarios whose id matches.
	Only *regexp.Regexp
	// Progress receives what the run is doing.
	Progress io.Writer
	// ClusterLog receives every cluster's output (nil discards it).
	ClusterLog io.Writer
	// CeilingWorkers overrides the bare client's concurrent requests.
	CeilingWorkers int
	// DebugRequests prints, after each window, the API requests of every
	// user that made any, so the attribution to the workload controllers
	// can be checked.
	DebugRequests bool
	// HeapProfiles, when set, is a directory where the memory scenarios
	// save the process's heap profile (pprof, after a GC) beside the
	// resident memory they read: <scenario>-<mode>-<time>.pb.gz.
	HeapProfiles string
	// Command is how the run was started, for the report.
	Command string
}

// Session is one cluster configuration and the scenarios that run in it,
// one after the other, each in a namespace of its own.
type Session struct {
	Name      string
	Args      []string
	Scenarios []*Scenario
	// Rounds overrides Options.Rounds (e.g. one round of a slow,
	// quartet-only measurement).
	Rounds int
}

// Scenario is one workload timed in both modes.
type Scenario struct {
	ID      string
	Metrics []Metric
	// Namespace overrides the scenario's namespace (default: its id), so
	// that scenarios can share objects within a session.
	Namespace string
	// QuartetOnly scenarios run in quartet mode only.
	QuartetOnly bool
	// Ceiling, when set, is what a bare client creates after the scenario
	// ran; the time it takes is the ceiling that VsCeiling metrics compare
	// with.
	Ceiling func(e *Env) CeilingSpec
	// Setup prepares, untimed and outside the measured window.
	Setup func(ctx context.Context, e *Env) error
	// Run does the timed part inside the window and returns a value per
	// metric key.
	Run func(ctx context.Context, e *Env) (map[string]float64, error)
	// Teardown runs after the window, e.g. to stop CronJobs firing again.
	Teardown func(ctx context.Context, e *Env) error
	// OwnWindow scenarios measure API requests and CPU themselves (or not
	// at all), e.g. when they restart the cluster.
	OwnWindow bool
	// AtMinute scenarios act at the minute boundary that Setup chose
	// (Env.SetBoundary); other scenarios of the session run while they
	// fit before it, then the window opens just before the boundary.
	AtMinute bool
	// Follows names a scenario of the session that must run first (its
	// objects are this one's starting point).
	Follows string
	// Estimate is how long Setup to Teardown takes, to fit scenarios
	// before a minute boundary.
	Estimate time.Duration
	// PerPod, when set, adds a metric of controller CPU milliseconds per
	// pod (e.g. per completed Job pod).
	PerPod func(s Size) int
	// Breakdown, when set, is how many pods the scenario makes: its first
	// row then carries the process's CPU by component and the API writes
	// per pod by identity.
	Breakdown func(s Size) int
}

// Env is what a scenario sees of its cluster.
type Env struct {
	Mode    Mode
	Size    Size
	Quick   bool
	Cluster *cluster.Cluster
	Client  kubernetes.Interface
	// CeilingClient creates the ceiling's objects (see CeilingUser).
	CeilingClient kubernetes.Interface
	Control       *control.Client
	NS            string
	Logf          func(format string, args ...any)
	// Shared holds objects that scenarios of one session hand on.
	Shared   map[string]any
	data     any
	boundary time.Time
	debug    bool
	heapDir  string
	progress io.Writer
}

// SaveHeapProfile writes the process's heap profile into the directory of
// Options.HeapProfiles (nothing when unset); a failure is logged, never
// fatal: the profile is for finding what holds memory, not a measurement.
func (e *Env) SaveHeapProfile(ctx context.Context, scenario string) {
	if e.heapDir == "" {
		return
	}
	b, err := e.Control.HeapProfile(ctx)
	if err == nil {
		name := fmt.Sprintf("%s-%s-%s.pb.gz", scenario, e.Mode, time.Now().UTC().Format("150405"))
		path := filepath.Join(e.heapDir, name)
		if err = os.MkdirAll(e.heapDir, 0o755); err == nil {
			if err = os.WriteFile(path, b, 0o644); err == nil {
				e.Logf("heap profile: %s", path)
			}
		}
	}
	if err != nil {
		e.Logf("heap profile: %v", err)
	}
}

// SetData and Data carry state from Setup to Run and Teardown.
func (e *Env) SetData(v any) { e.data = v }

// Data is what Setup stored.
func (e *Env) Data() any { return e.data }

// SetBoundary tells the harness when an AtMinute scenario acts.
func (e *Env) SetBoundary(t time.Time) { e.boundary = t }

// Boundary is the time SetBoundary set.
func (e *Env) Boundary() time.Time { return e.boundary }

// Bench runs the sessions and returns the table's rows.
func Bench(ctx context.Context, opts Options) ([]Row, Machine, error) {
	size := FullSize()
	if opts.Quick {
		size = QuickSize()
	}
	if opts.Rounds <= 0 {
		opts.Rounds = size.Rounds
	}
	if opts.CeilingWorkers > 0 {
		size.CeilingWorkers = opts.CeilingWorkers
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	machine := ThisMachine(opts.Command)
	sessions := Sessions(opts.Quick, size)
	h := &harness{opts: opts, size: size, durations: map[string]time.Duration{}}
	var rows []Row
	for _, s := range sessions {
		var keep []*Scenario
		for _, sc := range s.Scenarios {
			if opts.Only == nil || opts.Only.MatchString(sc.ID) {
				keep = append(keep, sc)
			}
		}
		if len(keep) == 0 {
			continue
		}
		s.Scenarios = keep
		runs := map[string]map[Mode][]Run{}
		for _, sc := range keep {
			runs[sc.ID] = map[Mode][]Run{}
		}
		rounds := opts.Rounds
		if s.Rounds > 0 && s.Rounds < rounds {
			rounds = s.Rounds
		}
		for round := 0; round < rounds; round++ {
			for _, mode := range modeOrder(round, keep) {
				if err := ctx.Err(); err != nil {
					return rows, machine, err
				}
				got := h.session(ctx, s, mode, round)
				for id, r := range got {
					runs[id][mode] = append(runs[id][mode], r)
				}
			}
		}
		var srows []Row
		for _, sc := range keep {
			rs := Aggregate(sc.ID, sc.allMetrics(size), runs[sc.ID], machine)
			if sc.Breakdown != nil && len(rs) > 0 {
				rs[0].Breakdown = MakeBreakdown(sc.Breakdown(size), runs[sc.ID])
			}
			srows = append(srows, rs...)
		}
		fmt.Fprintf(opts.Progress, "\n== %s\n", s.Name)
		RenderTable(opts.Progress, srows)
		rows = append(rows, srows...)
	}
	machine.LoadEnd = LoadAverage()
	for i := range rows {
		rows[i].Machine = machine
	}
	return rows, machine, nil
}

func modeOrder(round int, scs []*Scenario) []Mode {
	quartetOnly := true
	for _, sc := range scs {
		quartetOnly = quartetOnly && sc.QuartetOnly
	}
	if quartetOnly {
		return []Mode{ModeQuartet}
	}
	if round%2 == 0 {
		return []Mode{ModeQuartet, ModeUpstream}
	}
	return []Mode{ModeUpstream, ModeQuartet}
}

func (sc *Scenario) allMetrics(s Size) []Metric {
	ms := sc.Metrics
	if sc.PerPod != nil {
		ms = append(ms[:len(ms):len(ms)], Metric{Key: "cpu-per-pod", Name: ms[0].Name + ", controller CPU per pod",
			Unit: "ms", Targets: []Target{RatioAtMost(1, "no more CPU per pod than upstream"),
				RatioAtMost(0.6, "<= 0.6× upstream's (issue 18)")}})
	}
	return ms
}

type harness struct {
	opts      Options
	size      Size
	durations map[string]time.Duration
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.opts.Progress, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// session starts one cluster in one mode, runs the session's scenarios
// in it and stops it.
func (h *harness) session(ctx context.Context, s Session, mode Mode, round int) map[string]Run {
	failAll := func(err error) map[string]Run {
		out := map[string]Run{}
		for _, sc := range s.Scenarios {
			if mode == ModeUpstream && sc.QuartetOnly {
				continue
			}
			r := NewRun()
			r.Err = err.Error()
			out[sc.ID] = r
		}
		return out
	}
	h.logf("%s, round %d, %s mode: starting `quartet up %s`", s.Name, round+1, mode, strings.Join(s.Args, " "))
	c, cold, err := h.startCluster(s, mode)
	if err != nil {
		return failAll(err)
	}
	h.logf("  ready in %.1fs (pid %d)", cold.Seconds(), c.Pid())
	defer func() {
		if err := c.Cleanup(); err != nil {
			h.logf("  cleanup: %v", err)
		}
	}()
	e, err := h.env(ctx, c, mode, cold)
	if err != nil {
		return failAll(err)
	}
	return h.runScenarios(ctx, e, s, mode)
}

// startCluster starts the session's cluster. A cluster that fails to
// start is tried once more: one sample lost to a start-up crash would
// weaken the medians; both attempts are logged. It returns how long the
// start that worked took.
func (h *harness) startCluster(s Session, mode Mode) (*cluster.Cluster, time.Duration, error) {
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		t0 := time.Now()
		var c *cluster.Cluster
		c, err = cluster.Start(cluster.Options{
			Args:         append([]string{"--workload-controllers=" + string(mode)}, s.Args...),
			Log:          h.opts.ClusterLog,
			ReadyTimeout: 20 * time.Minute,
		})
		if err == nil {
			return c, time.Since(t0), nil
		}
		h.logf("  cluster did not start (attempt %d): %s", attempt, gist(err.Error()))
	}
	return nil, 0, err
}

// env is what the scenarios of a session get: the cluster and its clients.
func (h *harness) env(ctx context.Context, c *cluster.Cluster, mode Mode, cold time.Duration) (*Env, error) {
	client, err := benchClient(c)
	if err != nil {
		return nil, err
	}
	ctl, err := control.NewClient(datadir.Dir(c.DataDir).ControlSocket())
	if err != nil {
		return nil, err
	}
	ceiling, err := ceilingClient(ctx, c, client)
	if err != nil {
		return nil, err
	}
	e := &Env{Mode: mode, Size: h.size, Quick: h.opts.Quick, Cluster: c, Client: client, CeilingClient: ceiling, Control: ctl,
		Shared: map[string]any{"cold-start": cold}, debug: h.opts.DebugRequests, heapDir: h.opts.HeapProfiles, progress: h.opts.Progress}
	e.Logf = func(format string, args ...any) { h.logf("    "+format, args...) }
	return e, nil
}

// runScenarios runs the session's scenarios in e's cluster. A scenario
// acting at a minute boundary is set up first; the others run while they
// fit before it.
func (h *harness) runScenarios(ctx context.Context, e *Env, s Session, mode Mode) map[string]Run {
	out := map[string]Run{}
	var atMinute *Scenario
	var atMinuteEnv *Env
	finishMinute := func() {
		if atMinute == nil {
			return
		}
		out[atMinute.ID] = h.scenarioAfterSetup(ctx, atMinuteEnv, atMinute)
		atMinute = nil
	}
	var pending []*Scenario
	for _, sc := range s.Scenarios {
		if mode != ModeUpstream || !sc.QuartetOnly {
			pending = append(pending, sc)
		}
	}
	done := map[string]bool{}
	for len(pending) > 0 {
		left := time.Duration(0)
		if atMinute != nil {
			left = time.Until(atMinuteEnv.boundary)
		}
		i := pick(pending, done, atMinute != nil, left, h.estimate)
		if i < 0 {
			if atMinute != nil {
				finishMinute()
				continue
			}
			i = 0 // a prerequisite that is not in this run
		}
		sc := pending[i]
		pending = append(pending[:i:i], pending[i+1:]...)
		done[sc.ID] = true
		se := e.forScenario(sc)
		if sc.AtMinute {
			finishMinute()
		}
		if err := h.setup(ctx, se, sc); err != nil {
			out[sc.ID] = failed(err)
			continue
		}
		if sc.AtMinute {
			atMinute, atMinuteEnv = sc, se
			continue
		}
		out[sc.ID] = h.scenarioAfterSetup(ctx, se, sc)
	}
	finishMinute()
	return out
}

// pick chooses the next of the pending scenarios: the first whose
// prerequisite (Follows) has run and, while a minute scenario waits for its
// boundary (waiting, left before it), whose estimate fits with 3 s to
// spare. It returns -1 when none can run now.
func pick(pending []*Scenario, done map[string]bool, waiting bool, left time.Duration, estimate func(*Scenario) time.Duration) int {
	for i, sc := range pending {
		if sc.Follows != "" && !done[sc.Follows] {
			continue
		}
		if waiting && (sc.AtMinute || estimate(sc)+3*time.Second > left) {
			continue
		}
		return i
	}
	return -1
}

func failed(err error) Run {
	r := NewRun()
	r.Err = err.Error()
	return r
}

func (h *harness) estimate(sc *Scenario) time.Duration {
	if d, ok := h.durations[sc.ID]; ok {
		return d
	}
	return sc.Estimate
}

func (e *Env) forScenario(sc *Scenario) *Env {
	se := *e
	se.NS = sc.ID
	if sc.Namespace != "" {
		se.NS = sc.Namespace
	}
	se.data, se.boundary = nil, time.Time{}
	return &se
}

// setup makes the namespace and runs the scenario's Setup.
func (h *harness) setup(ctx context.Context, e *Env, sc *Scenario) error {
	h.logf("  %s (%s)", sc.ID, e.Mode)
	start := time.Now()
	e.Shared["start:"+sc.ID] = start
	ctx, cancel := context.WithTimeout(ctx, e.Size.Timeout)
	defer cancel()
	if err := EnsureNamespace(ctx, e.Client, e.NS); err != nil {
		return err
	}
	if sc.Setup != nil {
		if err := sc.Setup(ctx, e); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	return nil
}

// scenarioAfterSetup opens the window, runs the scenario, closes the
// window, tears down and times the ceiling.
func (h *harness) scenarioAfterSetup(ctx context.Context, e *Env, sc *Scenario) Run {
	run := NewRun()
	if !e.boundary.IsZero() {
		// Setup, not measurement: the window opens just before the minute.
		if d := time.Until(e.boundary) - 1500*time.Millisecond; d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, e.Size.Timeout)
	defer cancel()
	var w *Window
	if !sc.OwnWindow {
		var err error
		if w, err = OpenWindow(ctx, e); err != nil {
			e.Logf("window: %v (API requests and CPU not measured)", err)
		}
	}
	values, err := sc.Run(ctx, e)
	if w != nil {
		w.Close(ctx, e, &run)
	}
	if err != nil {
		run.Err = err.Error()
		e.Logf("FAILED: %v", err)
	}
	for k, v := range values {
		run.Values[k] = v
	}
	if sc.PerPod != nil && !math.IsNaN(run.CPUSeconds) {
		run.Values["cpu-per-pod"] = run.CPUSeconds * 1000 / float64(sc.PerPod(e.Size))
	}
	if sc.OwnWindow {
		// The scenario reports its own window through its values.
		run.APIRequests = valueOr(values, "_api", run.APIRequests)
		run.CPUSeconds = valueOr(values, "_cpu", run.CPUSeconds)
		run.CPUTotal = valueOr(values, "_cpu_total", run.CPUTotal)
	}
	if sc.Teardown != nil {
		tctx, tcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := sc.Teardown(tctx, e); err != nil {
			e.Logf("teardown: %v", err)
		}
		tcancel()
	}
	if sc.Ceiling != nil && run.Err == "" {
		cctx, ccancel := context.WithTimeout(parent, e.Size.Timeout)
		if d, err := Ceiling(cctx, e, sc.Ceiling(e)); err != nil {
			e.Logf("ceiling: %v", err)
		} else {
			run.Ceiling = d
		}
		ccancel()
	}
	took := time.Duration(0)
	if start, ok := e.Shared["start:"+sc.ID].(time.Time); ok {
		took = time.Since(start)
		h.durations[sc.ID] = took
	}
	e.Logf("%s (%.1fs in all)", describeRun(run), took.Seconds())
	return run
}

func valueOr(m map[string]float64, k string, def float64) float64 {
	if v, ok := m[k]; ok {
		return v
	}
	return def
}

func describeRun(r Run) string {
	var parts []string
	for k, v := range r.Values {
		if strings.HasPrefix(k, "_") {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%.3f", k, v))
	}
	parts = append(parts, fmt.Sprintf("api=%.0f cpu=%.2fs (process %.2fs)", r.APIRequests, r.CPUSeconds, r.CPUTotal))
	return strings.Join(parts, " ")
}

// Window measures the workload controllers' API requests and CPU between
// OpenWindow and Close. Requests count when they are in the scenario's
// namespace or in none (cluster-scoped, all namespaces): a scenario before
// it may still be settling in its own.
type Window struct {
	before  Requests
	cpuOn   bool
	started time.Time
}

// OpenWindow reads the request counters and starts a CPU profile.
func OpenWindow(ctx context.Context, e *Env) (*Window, error) {
	before, err := ScrapeRequests(ctx, e.Client)
	if err != nil {
		return nil, err
	}
	w := &Window{before: before, started: time.Now()}
	if err := e.Control.StartCPUProfile(ctx); err != nil {
		e.Logf("CPU profile: %v", err)
	} else {
		w.cpuOn = true
	}
	return w, nil
}

// Close stops the profile and records the deltas in run.
func (w *Window) Close(ctx context.Context, e *Env, run *Run) {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
	}
	after, err := w.settle(ctx, e)
	if w.cpuOn {
		var cpu struct {
			Total               float64            `json:"total"`
			WorkloadControllers float64            `json:"workloadControllers"`
			Components          map[string]float64 `json:"components"`
			WorkloadParts       map[string]float64 `json:"workloadParts"`
		}
		if err := e.Control.StopCPUProfile(ctx, &cpu); err != nil {
			e.Logf("CPU profile: %v", err)
		} else {
			run.CPUSeconds, run.CPUTotal, run.CPUByComponent = cpu.WorkloadControllers, cpu.Total, cpu.Components
			run.CPUWorkloadParts = cpu.WorkloadParts
		}
	}
	if err != nil {
		e.Logf("API requests: %v", err)
		return
	}
	d := DeltaRequests(w.before, after)
	own := d.In(e.NS)
	run.APIRequests = own.ByUser().Sum(WorkloadControllerUsers)
	run.Writes = own.Writes()
	if e.debug {
		fmt.Fprint(e.progress, FormatRequests(d, e.NS))
	}
}

// settle reads the request counters until the workload controllers have
// made no request for Size.Settle: what they still write after the
// scenario's end (status, events) is part of its work.
func (w *Window) settle(ctx context.Context, e *Env) (Requests, error) {
	last, err := ScrapeRequests(ctx, e.Client)
	if err != nil {
		return nil, err
	}
	for range 20 {
		select {
		case <-time.After(e.Size.Quiet):
		case <-ctx.Done():
			return last, nil
		}
		now, err := ScrapeRequests(ctx, e.Client)
		if err != nil {
			return nil, err
		}
		if now.In(e.NS).ByUser().Sum(WorkloadControllerUsers) == last.In(e.NS).ByUser().Sum(WorkloadControllerUsers) {
			return now, nil
		}
		last = now
	}
	return last, nil
}

// FormatRequests lists a request delta by user, most first, and under each
// user its requests by verb and resource (failures with their status code,
// requests in another namespace than ns with theirs), most first.
func FormatRequests(d Requests, ns string) string {
	byUser := d.ByUser()
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	sort.Slice(users, func(i, j int) bool {
		if byUser[users[i]] != byUser[users[j]] {
			return byUser[users[i]] > byUser[users[j]]
		}
		return users[i] < users[j]
	})
	var b strings.Builder
	for _, u := range users {
		fmt.Fprintf(&b, "      %8.0f  %s\n", byUser[u], u)
		var keys []RequestKey
		for k := range d {
			if k.User == u {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool {
			if d[keys[i]] != d[keys[j]] {
				return d[keys[i]] > d[keys[j]]
			}
			return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j])
		})
		for _, k := range keys {
			what := k.Verb + " " + k.Resource
			if k.Namespace != "" && k.Namespace != ns {
				what += " (namespace " + k.Namespace + ", not counted)"
			}
			if k.Code != "" {
				what += " -> " + k.Code
			}
			fmt.Fprintf(&b, "      %8.0f      %s\n", d[k], what)
		}
	}
	return b.String()
}

// ScrapeRequests reads the apiserver's per-user request counters.
func ScrapeRequests(ctx context.Context, client kubernetes.Interface) (Requests, error) {
	b, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading /metrics: %w", err)
	}
	return ParseRequests(string(b))
}

// CeilingUser is the identity of the ceiling's bare client: a kube-system
// service account, so that API Priority and Fairness puts its requests in
// the same priority level (workload-high) as the workload controllers',
// rather than exempting them as it exempts the bench's cluster-admin.
const CeilingUser = "system:serviceaccount:kube-system:quartet-bench-ceiling"

// ceilingClient impersonates CeilingUser, after binding it to
// cluster-admin.
func ceilingClient(ctx context.Context, c *cluster.Cluster, admin kubernetes.Interface) (kubernetes.Interface, error) {
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "quartet-bench-ceiling"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: metav1.NamespaceSystem, Name: "quartet-bench-ceiling"}},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	rc, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	rc.UserAgent = "quartet-bench-ceiling"
	rc.Impersonate = rest.ImpersonationConfig{UserName: CeilingUser,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}}
	return kubernetes.NewForConfig(rc)
}

// benchClient is the bench's own client: cluster-admin, with the
// in-process components' limits (QPS 1000, burst 2000) and protobuf, as
// kube-controller-manager's clients speak it, so that the watches cost the
// apiserver little and the ceiling's bare client is not slowed by JSON.
func benchClient(c *cluster.Cluster) (kubernetes.Interface, error) {
	rc, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	rc.UserAgent = "quartet-bench"
	return kubernetes.NewForConfig(rc)
}

// EnsureNamespace creates ns (if needed) and waits for its default
// ServiceAccount, without which pods are refused.
func EnsureNamespace(ctx context.Context, client kubernetes.Interface, ns string) error {
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.New("namespace " + ns + ": no default ServiceAccount")
		case <-time.After(50 * time.Millisecond): // setup, not a measurement
		}
	}
}

// gist is the first line of a start-up failure and its lines that say
// what went wrong, not the goroutine dump after them.
func gist(s string) string {
	lines := strings.Split(s, "\n")
	out := []string{lines[0]}
	for _, l := range lines[1:] {
		if len(out) >= 6 {
			break
		}
		if strings.Contains(l, "fatal error") || strings.HasPrefix(l, "panic:") || strings.Contains(strings.ToLower(l), "error:") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, " | ")
}
