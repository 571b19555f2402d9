package daemonset

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

// fixture is a controller over a fake clientset whose informers are fed by
// hand, so each test decides exactly what the controller has seen.
type fixture struct {
	t        testing.TB
	ctx      context.Context
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	clock    *clocktesting.FakeClock
	recorder *record.FakeRecorder
	c        *Controller
}

func newFixture(t testing.TB, objs ...runtime.Object) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	for _, o := range objs {
		// The cache and the API start with the same version of each object.
		if m := o.(metav1.Object); m.GetResourceVersion() == "" {
			m.SetResourceVersion("1")
		}
	}
	client := kittest.NewAPI(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(t0)
	c, err := New(kit.Config{Client: client, Informers: factory, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(1000)
	c.Recorder = rec
	c.apply.pods.(*kit.ClientPodWriter).Recorder = rec
	f := &fixture{t: t, ctx: ctx, client: client, factory: factory, clock: clk, recorder: rec, c: c}
	// As after the informers' first list, at version 1.
	for _, store := range []cache.Store{
		factory.Apps().V1().DaemonSets().Informer().GetStore(), factory.Core().V1().Pods().Informer().GetStore(),
	} {
		store.Bookmark("1")
	}
	for _, o := range objs {
		f.see(o)
	}
	client.ClearActions()
	return f
}

// see puts obj in the informer caches, as a watch event would.
func (f *fixture) see(obj runtime.Object) {
	f.t.Helper()
	var err error
	switch o := obj.(type) {
	case *appsv1.DaemonSet:
		err = f.factory.Apps().V1().DaemonSets().Informer().GetIndexer().Add(o)
	case *corev1.Pod:
		err = f.factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
	case *corev1.Node:
		err = f.factory.Core().V1().Nodes().Informer().GetIndexer().Add(o)
	case *appsv1.ControllerRevision:
		err = f.factory.Apps().V1().ControllerRevisions().Informer().GetIndexer().Add(o)
	default:
		f.t.Fatalf("unexpected %T", obj)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

// observeCreatedPods delivers the pods the API holds that the cache does
// not to the cache and the pod handler, as the informer would.
func (f *fixture) observeCreatedPods() []*corev1.Pod {
	f.t.Helper()
	pods, err := f.client.CoreV1().Pods("default").List(f.ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	indexer := f.factory.Core().V1().Pods().Informer().GetIndexer()
	var out []*corev1.Pod
	for i := range pods.Items {
		pod := &pods.Items[i]
		if _, cached, _ := indexer.Get(pod); cached {
			continue
		}
		f.see(pod)
		f.c.podEvents.OnAdd(pod, false)
		out = append(out, pod)
	}
	return out
}

// observe delivers to the cache the revisions and the set as the API holds
// them (the controller's revision and status writes), as the informers
// would.
func (f *fixture) observe() {
	f.t.Helper()
	revs, err := f.client.AppsV1().ControllerRevisions("default").List(f.ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range revs.Items {
		f.see(&revs.Items[i])
	}
	sets, err := f.client.AppsV1().DaemonSets("default").List(f.ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range sets.Items {
		f.see(&sets.Items[i])
	}
}

func (f *fixture) sync(key string) time.Duration {
	f.t.Helper()
	d, err := f.c.sync(f.ctx, key)
	if err != nil {
		f.t.Fatalf("sync %s: %v", key, err)
	}
	return d
}

// writes lists the client's write actions as "verb resource[/subresource]".
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.client.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		r := a.GetResource().Resource
		if s := a.GetSubresource(); s != "" {
			r += "/" + s
		}
		out = append(out, a.GetVerb()+" "+r)
	}
	return out
}

func (f *fixture) statusWrites() []*appsv1.DaemonSet {
	var out []*appsv1.DaemonSet
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			out = append(out, a.(clienttesting.UpdateAction).GetObject().(*appsv1.DaemonSet))
		}
	}
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func TestSyncCreatesPodsAndWritesStatusOnce(t *testing.T) {
	set := testSet(withHostNetwork())
	objs := []runtime.Object{set}
	for _, n := range testNodes(3) {
		objs = append(objs, n)
	}
	f := newFixture(t, objs...)
	f.sync("default/agent")

	w := f.writes()
	if count(w, "create controllerrevisions") != 1 || count(w, "create pods") != 3 || count(w, "update daemonsets/status") != 1 {
		t.Fatalf("writes = %v, want 1 revision, 3 pods, 1 status", w)
	}
	hash := templateHash(&set.Spec.Template, nil)
	var nodes []string
	for _, pod := range f.observeCreatedPods() {
		n, err := targetNodeName(pod)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		if pod.Labels[appsv1.ControllerRevisionHashLabelKey] != hash || pod.Labels["pod-template-generation"] != "1" {
			t.Errorf("pod labels = %v", pod.Labels)
		}
		if pod.Spec.NodeName != "" {
			t.Errorf("pod created with spec.nodeName %q", pod.Spec.NodeName)
		}
	}
	sort.Strings(nodes)
	if diff := cmp.Diff([]string{"node-1", "node-2", "node-3"}, nodes); diff != "" {
		t.Errorf("pods per node (-want +got):\n%s", diff)
	}
	st := f.statusWrites()[0].Status
	// The status counts the pods this sync created (one status write, not
	// one from before the creates and one after).
	if st.DesiredNumberScheduled != 3 || st.CurrentNumberScheduled != 3 || st.UpdatedNumberScheduled != 3 || st.NumberUnavailable != 3 || st.ObservedGeneration != 1 {
		t.Errorf("status = %+v", st)
	}
	ev := f.events()
	if len(ev) != 3 || !strings.HasPrefix(ev[0], "Normal SuccessfulCreate Created pod: agent-") {
		t.Errorf("events = %v", ev)
	}
	// Once the caches show the pods and the status, the sync they bring
	// writes nothing.
	f.observe()
	f.client.ClearActions()
	f.sync("default/agent")
	if w := f.writes(); len(w) != 0 {
		t.Errorf("the sync after the creates were seen wrote %v", w)
	}
}

func TestSyncWaitsForItsWritesToBeObserved(t *testing.T) {
	f := newFixture(t, testSet(), testNode("node-1"), testNode("node-2"))
	f.sync("default/agent")
	f.client.ClearActions()

	// The cache shows neither the status write nor the pods: the next sync
	// does nothing and waits for the write's event, with no timed retry
	// sooner than kit.OwnWritesTimeout, and counts the skip as upstream's
	// daemonset_controller_stale_sync_skips_total does.
	RegisterMetrics()
	skips := func() float64 {
		v, err := testutil.GetCounterMetricValue(staleSkips.WithLabelValues("apps", "daemonsets"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := skips()
	if d := f.sync("default/agent"); d != kit.OwnWritesTimeout || len(f.writes()) != 0 {
		t.Fatalf("a sync before its status write was observed: requeue %v, writes %v", d, f.writes())
	}
	if got := skips() - before; got != 1 {
		t.Errorf("daemonset_controller_stale_sync_skips_total{group=apps,resource=daemonsets} grew by %v, want 1", got)
	}
	// The status write is seen, the pods are not: its update event syncs
	// the set, which makes no second burst, and the status it wrote stands.
	cached, _, err := kit.Cached[*appsv1.DaemonSet](f.c.sets, "default/agent")
	if err != nil {
		t.Fatal(err)
	}
	f.observe()
	written, _, err := kit.Cached[*appsv1.DaemonSet](f.c.sets, "default/agent")
	if err != nil {
		t.Fatal(err)
	}
	for f.c.queue.Len() > 0 {
		k, _ := f.c.queue.Get()
		f.c.queue.Done(k)
	}
	f.c.updateSet(cached, written)
	if f.c.queue.Len() != 1 {
		t.Fatalf("the status write's event: queue length %d", f.c.queue.Len())
	}
	f.client.ClearActions()
	f.sync("default/agent")
	if w := f.writes(); len(w) != 0 {
		t.Fatalf("a sync before the creates were observed wrote %v", w)
	}
	if f.c.apply.writes.Seen("set-uid", "pods") {
		t.Fatal("the creates count as seen before the pods were")
	}
	// Deliver the creates from the first sync.
	f.client.ClearActions()
	created := f.observeCreatedPods()
	if !f.c.apply.writes.Seen("set-uid", "pods") || len(created) != 2 {
		t.Fatalf("the creates are not seen after both pods (%d) were", len(created))
	}
	f.sync("default/agent")
	if n := count(f.writes(), "create pods"); n != 0 {
		t.Errorf("created %d pods on nodes that have one", n)
	}
}

func TestSyncGivesUpWaitingAfterFiveMinutes(t *testing.T) {
	f := newFixture(t, testSet(), testNode("node-1"))
	f.sync("default/agent")
	f.client.ClearActions()
	f.clock.Step(5*time.Minute + time.Second)
	f.sync("default/agent")
	if n := count(f.writes(), "create pods"); n != 1 {
		t.Errorf("after five minutes the lost create is retried: created %d, want 1", n)
	}
}

func TestSyncSlowStart(t *testing.T) {
	for name, tc := range map[string]struct {
		nodes     int
		failFrom  int // creates from this one on fail; 0 never
		wantCalls int
	}{
		"all succeed":        {nodes: 10, wantCalls: 10},
		"first fails":        {nodes: 10, failFrom: 1, wantCalls: 1},
		"fourth fails":       {nodes: 10, failFrom: 4},
		"second fails":       {nodes: 3, failFrom: 2},
		"250 of 300 at most": {nodes: 300, wantCalls: 250},
	} {
		t.Run(name, func(t *testing.T) {
			objs := []runtime.Object{testSet()}
			for _, n := range testNodes(tc.nodes) {
				objs = append(objs, n)
			}
			f := newFixture(t, objs...)
			pods := &recordingPodControl{}
			if tc.failFrom > 0 {
				pods.createErr = func(n int) error {
					if n >= tc.failFrom {
						return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", fmt.Errorf("exceeded quota"))
					}
					return nil
				}
			}
			f.c.apply.pods = pods
			_, err := f.c.sync(f.ctx, "default/agent")
			if (err != nil) != (tc.failFrom > 0) {
				t.Fatalf("sync error = %v", err)
			}
			successes := len(pods.created)
			if tc.wantCalls > 0 && pods.creates != tc.wantCalls {
				t.Errorf("create calls = %d, want %d", pods.creates, tc.wantCalls)
			}
			// After a failure no call starts: at most one more than twice
			// the successes are made.
			if tc.failFrom > 0 && (successes != tc.failFrom-1 || pods.creates > 2*successes+1) {
				t.Errorf("%d create calls for %d successes", pods.creates, successes)
			}
		})
	}
}

func TestSyncDeletesAndObservesDeletes(t *testing.T) {
	set := testSet(withNodeSelector("run", "yes"))
	hash := templateHash(&set.Spec.Template, nil)
	pod := testPod("p1", "node-1", hash, ready())
	f := newFixture(t, set, testNode("node-1"), pod)
	f.sync("default/agent")
	if n := count(f.writes(), "delete pods"); n != 1 {
		t.Fatalf("writes = %v, want one delete", f.writes())
	}
	if f.c.apply.writes.Seen("set-uid", "pods") {
		t.Fatal("the delete counts as seen while the cache still has the pod")
	}
	// Seen terminating is enough.
	gone := pod.DeepCopy()
	gone.ResourceVersion = "2"
	gone.DeletionTimestamp = &metav1.Time{Time: t0}
	f.see(gone)
	if !f.c.apply.writes.Seen("set-uid", "pods") {
		t.Error("the delete is not seen once the pod is terminating")
	}
	if ev := f.events(); !slices.Contains(ev, "Normal SuccessfulDelete Deleted pod: p1") {
		t.Errorf("events = %v", ev)
	}
}

func TestSyncFailedPodBackoff(t *testing.T) {
	set := testSet()
	set.Status.ObservedGeneration = 1 // back-offs are per generation
	hash := templateHash(&set.Spec.Template, nil)
	failed := testPod("p1", "node-1", hash, phase(corev1.PodFailed))
	f := newFixture(t, set, testNode("node-1"), failed)

	f.sync("default/agent")
	if n := count(f.writes(), "delete pods"); n != 1 {
		t.Fatalf("writes = %v, want the failed pod deleted", f.writes())
	}
	ev := f.events()
	if !slices.Contains(ev, "Warning FailedDaemonPod Found failed daemon pod default/p1 on node node-1, will try to kill it") {
		t.Errorf("events = %v", ev)
	}

	// Its replacement fails at once too.
	if err := f.factory.Core().V1().Pods().Informer().GetIndexer().Delete(failed); err != nil {
		t.Fatal(err)
	}
	again := testPod("p2", "node-1", hash, phase(corev1.PodFailed))
	f.see(again)
	f.observe()
	f.client.ClearActions()
	requeue := f.sync("default/agent")
	if n := count(f.writes(), "delete pods"); n != 0 {
		t.Errorf("the second failed pod was deleted within the back-off")
	}
	if requeue != time.Second {
		t.Errorf("requeue after %v, want the 1s back-off", requeue)
	}
	f.clock.Step(1500 * time.Millisecond)
	f.sync("default/agent")
	if n := count(f.writes(), "delete pods"); n != 1 {
		t.Errorf("after the back-off the failed pod is deleted: %v", f.writes())
	}
}

func TestSyncStatusOnlyWhenChanged(t *testing.T) {
	set := testSet()
	hash := templateHash(&set.Spec.Template, nil)
	set.Status = appsv1.DaemonSetStatus{
		ObservedGeneration: 1, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1,
		UpdatedNumberScheduled: 1, NumberAvailable: 1,
	}
	data, _ := kit.TemplatePatch(&set.Spec.Template, utiljson.Unmarshal)
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-" + hash, Namespace: "default", Labels: map[string]string{"app": "agent", appsv1.ControllerRevisionHashLabelKey: hash},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)}},
		Data: runtime.RawExtension{Raw: data}, Revision: 1,
	}
	f := newFixture(t, set, rev, testNode("node-1"), testPod("p1", "node-1", hash, ready()))
	f.sync("default/agent")
	if w := f.writes(); len(w) != 0 {
		t.Errorf("a set at rest wrote %v", w)
	}
}

func TestSyncAdoptsAndReleases(t *testing.T) {
	set := testSet()
	orphan := testPod("orphan", "node-1", "x", ready())
	orphan.OwnerReferences = nil
	stray := testPod("stray", "node-2", "x", ready())
	stray.Labels = map[string]string{"app": "other"}
	foreign := testPod("foreign", "node-2", "x", ready())
	foreign.OwnerReferences[0].UID = "someone-else"
	f := newFixture(t, set, testNode("node-1"), testNode("node-2"), orphan, stray, foreign)
	f.sync("default/agent")
	want := []string{
		`default/orphan application/strategic-merge-patch+json {"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"DaemonSet","name":"agent","uid":"set-uid","controller":true,"blockOwnerDeletion":true}],"uid":"orphan-uid"}}`,
		`default/stray application/strategic-merge-patch+json {"metadata":{"ownerReferences":[{"$patch":"delete","uid":"set-uid"}],"uid":"stray-uid"}}`,
	}
	var patches, on []string
	for _, a := range f.client.Actions() {
		switch a := a.(type) {
		case clienttesting.PatchAction:
			patches = append(patches, fmt.Sprintf("%s/%s %s %s", a.GetNamespace(), a.GetName(), a.GetPatchType(), a.GetPatch()))
		case clienttesting.CreateAction:
			if p, ok := a.GetObject().(*corev1.Pod); ok {
				n, _ := targetNodeName(p)
				on = append(on, n)
			}
		}
	}
	if diff := cmp.Diff(want, patches); diff != "" {
		t.Errorf("patches (-want +got):\n%s", diff)
	}
	// The adopted pod counts for node-1; node-2 gets a new pod.
	if diff := cmp.Diff([]string{"node-2"}, on); diff != "" {
		t.Errorf("created on (-want +got):\n%s", diff)
	}
}

func TestSyncDoesNotAdoptForADeletedSet(t *testing.T) {
	set := testSet()
	orphan := testPod("orphan", "node-1", "x", ready())
	orphan.OwnerReferences = nil
	// The cache has the set; the API says it is being deleted.
	f := newFixture(t, set, testNode("node-1"), orphan)
	fresh := set.DeepCopy()
	fresh.DeletionTimestamp = &metav1.Time{Time: t0}
	if err := f.client.Tracker().Update(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, fresh, "default"); err != nil {
		t.Fatal(err)
	}
	pods := &recordingPodControl{}
	f.c.apply.pods = pods
	if _, err := f.c.sync(f.ctx, "default/agent"); err == nil || !strings.Contains(err.Error(), "has just been deleted") {
		t.Errorf("sync error = %v", err)
	}
	if len(pods.patches) != 0 {
		t.Errorf("patched %v", pods.patches)
	}
}

func TestSyncSelectingAll(t *testing.T) {
	set := testSet()
	set.Spec.Selector = &metav1.LabelSelector{}
	f := newFixture(t, set, testNode("node-1"))
	f.sync("default/agent")
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes = %v", w)
	}
	if diff := cmp.Diff([]string{"Warning SelectingAll This daemon set is selecting all pods. A non-empty selector is required."}, f.events()); diff != "" {
		t.Error(diff)
	}
}

func TestSyncDeletedSet(t *testing.T) {
	set := testSet()
	f := newFixture(t, set, testNode("node-1"))
	f.sync("default/agent")
	if f.c.apply.writes.Seen("set-uid") {
		t.Fatal("the writes of the first sync count as seen")
	}
	f.c.deleteSet(cache.DeletedFinalStateUnknown{Key: "default/agent", Obj: set})
	if !f.c.apply.writes.Seen("set-uid") || f.c.apply.writes.Unseen("set-uid", "pods") != nil {
		t.Error("the writes of a deleted set are remembered")
	}
	if d, err := f.c.sync(f.ctx, "default/gone"); err != nil || d != 0 {
		t.Errorf("sync of a missing set: %v, %v", d, err)
	}
}

func TestSyncRevisionHistory(t *testing.T) {
	set := testSet(func(s *appsv1.DaemonSet) { s.Spec.RevisionHistoryLimit = new(int32(1)) })
	var objs []runtime.Object
	for i := 1; i <= 3; i++ {
		old := testSet(func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("busybox:%d", i) })
		r := revision(fmt.Sprintf("agent-r%d", i), fmt.Sprintf("r%d", i), int64(i), old)
		r.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)}
		objs = append(objs, r)
	}
	objs = append(objs, set, testNode("node-1"), testPod("still-r1", "node-1", "r1", ready()))
	f := newFixture(t, objs...)
	f.sync("default/agent")
	var deleted []string
	var created *appsv1.ControllerRevision
	for _, a := range f.client.Actions() {
		switch {
		case a.GetVerb() == "delete" && a.GetResource().Resource == "controllerrevisions":
			deleted = append(deleted, a.(clienttesting.DeleteAction).GetName())
		case a.GetVerb() == "create" && a.GetResource().Resource == "controllerrevisions":
			created = a.(clienttesting.CreateAction).GetObject().(*appsv1.ControllerRevision)
		}
	}
	// Three old revisions, a limit of one: two go, the oldest ones no pod
	// carries (r1 is still on a pod).
	if diff := cmp.Diff([]string{"agent-r2", "agent-r3"}, deleted); diff != "" {
		t.Errorf("deleted revisions (-want +got):\n%s", diff)
	}
	if created == nil || created.Revision != 4 {
		t.Errorf("created revision = %+v, want number 4", created)
	}
}

func TestSyncHashCollision(t *testing.T) {
	set := testSet()
	hash := templateHash(&set.Spec.Template, nil)
	other := testSet(func(s *appsv1.DaemonSet) { s.Spec.Template.Spec.Containers[0].Image = "other" })
	squatter := revision("agent-"+hash, hash, 1, other)
	squatter.Labels = map[string]string{"unrelated": "true"} // not selected, so not claimed
	f := newFixture(t, set, squatter, testNode("node-1"))
	if _, err := f.c.sync(f.ctx, "default/agent"); err == nil {
		t.Fatal("a colliding revision name gave no error")
	}
	ws := f.statusWrites()
	if len(ws) != 1 || ws[0].Status.CollisionCount == nil || *ws[0].Status.CollisionCount != 1 {
		t.Fatalf("status writes = %+v, want collisionCount 1", ws)
	}
	// With the new count the name differs.
	set.Status.CollisionCount = ws[0].Status.CollisionCount
	f.see(set)
	f.client.ClearActions()
	f.sync("default/agent")
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "controllerrevisions" {
			name := a.(clienttesting.CreateAction).GetObject().(*appsv1.ControllerRevision).Name
			if want := "agent-" + templateHash(&set.Spec.Template, set.Status.CollisionCount); name != want {
				t.Errorf("revision %s, want %s", name, want)
			}
			return
		}
	}
	t.Error("no revision created after the collision")
}

func TestSyncCanaryEvents(t *testing.T) {
	set := testSet(withAnnotation(AnnotationRolloutNodeSelector, "canary=true"))
	hash := templateHash(&set.Spec.Template, nil)
	f := newFixture(t, set,
		testNode("node-1"), testNode("node-2", label("canary", "true")),
		testPod("a", "node-1", "old", ready()), testPod("b", "node-2", hash, ready()))
	for range 3 {
		f.sync("default/agent")
		f.observe()
	}
	want := []string{fmt.Sprintf(`Normal RolloutPausedOutsideCanary Rolling update to revision %s is limited to nodes matching "canary=true": 1 pod(s) on other nodes keep the old revision until annotation quartet.dev/rollout-node-selector is removed`, hash)}
	if diff := cmp.Diff(want, f.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if n := count(f.writes(), "delete pods"); n != 0 {
		t.Errorf("deleted %d pods outside the canary", n)
	}

	// Removing the annotation lets the rollout continue.
	cur := set.DeepCopy()
	delete(cur.Annotations, AnnotationRolloutNodeSelector)
	f.see(cur)
	f.client.ClearActions()
	f.sync("default/agent")
	if n := count(f.writes(), "delete pods"); n != 1 {
		t.Errorf("after removing the annotation: writes %v, want the old pod deleted", f.writes())
	}
}

func TestSyncInvalidCanarySelector(t *testing.T) {
	set := testSet(withAnnotation(AnnotationRolloutNodeSelector, "canary in (true"))
	f := newFixture(t, set, testNode("node-1"), testPod("a", "node-1", "old", ready()))
	f.sync("default/agent")
	f.observe()
	f.sync("default/agent")
	ev := f.events()
	var warnings []string
	for _, e := range ev {
		if strings.HasPrefix(e, "Warning "+reasonInvalidRolloutNodeSelector) {
			warnings = append(warnings, e)
		}
	}
	if len(warnings) != 1 {
		t.Errorf("warnings = %v, want exactly one", warnings)
	}
	// Ignored: the rollout proceeds as without the annotation.
	if n := count(f.writes(), "delete pods"); n != 1 {
		t.Errorf("writes = %v, want the old pod replaced", f.writes())
	}
}

func TestNodeEventsEnqueue(t *testing.T) {
	gpu := testSet(withNodeSelector("hardware", "gpu"))
	gpu.Name, gpu.UID = "gpu", "gpu-uid"
	all := testSet()
	f := newFixture(t, gpu, all, testNode("node-1"))
	drain := func() []string {
		var keys []string
		for f.c.queue.Len() > 0 {
			k, _ := f.c.queue.Get()
			keys = append(keys, k)
			f.c.queue.Done(k)
		}
		sort.Strings(keys)
		return keys
	}
	plain := testNode("node-2")
	f.c.addNode(plain)
	if diff := cmp.Diff([]string{"default/agent"}, drain()); diff != "" {
		t.Errorf("node added (-want +got):\n%s", diff)
	}
	f.see(testPod("agent-on-2", "node-2", "h"))

	labelled := plain.DeepCopy()
	labelled.Labels["hardware"] = "gpu"
	f.c.updateNode(plain, labelled)
	if diff := cmp.Diff([]string{"default/gpu"}, drain()); diff != "" {
		t.Errorf("label added (-want +got):\n%s", diff)
	}

	heartbeat := labelled.DeepCopy()
	heartbeat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	f.c.updateNode(labelled, heartbeat)
	if keys := drain(); len(keys) != 0 {
		t.Errorf("a status-only node update enqueued %v", keys)
	}

	tainted := labelled.DeepCopy()
	tainted.Spec.Taints = []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectNoExecute}}
	f.c.updateNode(labelled, tainted)
	if diff := cmp.Diff([]string{"default/agent", "default/gpu"}, drain()); diff != "" {
		t.Errorf("NoExecute taint (-want +got):\n%s", diff)
	}

	f.c.deleteNode(cache.DeletedFinalStateUnknown{Key: "node-2", Obj: labelled})
	if diff := cmp.Diff([]string{"default/agent", "default/gpu"}, drain()); diff != "" {
		t.Errorf("node deleted (-want +got):\n%s", diff)
	}
}

func TestPodEventsEnqueue(t *testing.T) {
	set := testSet()
	f := newFixture(t, set)
	pod := testPod("p", "node-1", "h")
	f.c.podEvents.OnAdd(pod, false)
	if f.c.queue.Len() != 1 {
		t.Errorf("owned pod added: queue length %d", f.c.queue.Len())
	}
	orphan := testPod("o", "node-1", "h")
	orphan.OwnerReferences = nil
	other := testSet()
	other.Name, other.UID = "other", "other-uid"
	other.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "none"}}
	f.see(other)
	f.c.podEvents.OnAdd(orphan, false)
	k1, _ := f.c.queue.Get()
	f.c.queue.Done(k1)
	if k1 != "default/agent" || f.c.queue.Len() != 0 {
		t.Errorf("orphan added: got %s and %d more", k1, f.c.queue.Len())
	}
}

// TestStatusWritesFromAStaleCache: between a status write and its watch
// event the cache holds the older set; a sync waits for the event rather
// than write from the older copy, which would conflict.
func TestStatusWritesFromAStaleCache(t *testing.T) {
	set := testSet()
	set.ResourceVersion = "5"
	hash := templateHash(&set.Spec.Template, nil)
	data, _ := kit.TemplatePatch(&set.Spec.Template, utiljson.Unmarshal)
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-" + hash, Namespace: "default", Labels: map[string]string{"app": "agent", appsv1.ControllerRevisionHashLabelKey: hash},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)}},
		Data: runtime.RawExtension{Raw: data}, Revision: 1,
	}
	f := newFixture(t, set, rev, testNode("node-1"), testNode("node-2"), testPod("p1", "node-1", hash, ready()))
	f.c.apply.pods = &recordingPodControl{}
	stored := func() *appsv1.DaemonSet {
		obj, err := f.client.Tracker().Get(dsResource, "default", "agent")
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*appsv1.DaemonSet)
	}

	f.sync("default/agent") // creates on node-2, writes desired 2 current 2 ready 1
	p2 := testPod("p2", "node-2", hash, ready())
	f.see(p2)
	f.c.podEvents.OnAdd(p2, false)
	if d := f.sync("default/agent"); d != kit.OwnWritesTimeout || len(kittest.Calls(f.client, "daemonsets")) != 1 {
		t.Fatalf("a sync from the cache at RV 5: requeue %v, calls %v", d, kittest.Calls(f.client, "daemonsets"))
	}
	f.see(stored())
	f.sync("default/agent") // ready 2 on top of the written set
	f.see(stored())
	f.sync("default/agent") // nothing changed: no write

	// Two writes, no conflict, no fresh read.
	if diff := cmp.Diff([]string{"update/status agent", "update/status agent"}, kittest.Calls(f.client, "daemonsets")); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	if st := stored().Status; st.CurrentNumberScheduled != 2 || st.DesiredNumberScheduled != 2 || st.NumberReady != 2 || st.ObservedGeneration != 1 {
		t.Errorf("stored status %+v", st)
	}

	// Someone else's write in between: one conflict, one fresh read, done.
	other := stored()
	other.ResourceVersion = "42"
	other.Annotations["touched"] = "yes"
	if err := f.client.Tracker().Update(dsResource, other, "default"); err != nil {
		t.Fatal(err)
	}
	f.client.ClearActions()
	p3 := testPod("p3", "node-3", hash)
	f.see(testNode("node-3"))
	f.see(p3)
	f.sync("default/agent")
	if diff := cmp.Diff([]string{"update/status agent", "get agent", "update/status agent"}, kittest.Calls(f.client, "daemonsets")); diff != "" {
		t.Errorf("conflict retry: calls (-want +got):\n%s", diff)
	}
	if st := stored(); st.Status.DesiredNumberScheduled != 3 || st.Annotations["touched"] != "yes" {
		t.Errorf("conflict retry: stored %+v %v", st.Status, st.Annotations)
	}
}
