package daemonset

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"quartet.dev/quartet/internal/controllers"
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

var podSerial atomic.Int64

// generateNames gives created objects a name, as the apiserver does.
func generateNames(action clienttesting.Action) (bool, runtime.Object, error) {
	obj := action.(clienttesting.CreateAction).GetObject().(metav1.Object)
	if obj.GetName() == "" && obj.GetGenerateName() != "" {
		obj.SetName(fmt.Sprintf("%s%05d", obj.GetGenerateName(), podSerial.Add(1)))
	}
	obj.SetUID(types.UID(obj.GetName() + "-uid"))
	return false, nil, nil
}

func newFixture(t testing.TB, objs ...runtime.Object) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset(objs...)
	client.PrependReactor("create", "*", generateNames)
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(t0)
	c, err := New(controllers.Config{Client: client, Informers: factory, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(1000)
	c.recorder = rec
	c.pods.(*realPodControl).recorder = rec
	f := &fixture{t: t, ctx: ctx, client: client, factory: factory, clock: clk, recorder: rec, c: c}
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

// observeCreatedPods delivers the pods created through the client to the
// cache and the pod handler, as the informer would.
func (f *fixture) observeCreatedPods() []*corev1.Pod {
	f.t.Helper()
	var out []*corev1.Pod
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			pod := a.(clienttesting.CreateAction).GetObject().(*corev1.Pod)
			f.see(pod)
			f.c.addPod(pod)
			out = append(out, pod)
		}
	}
	return out
}

func (f *fixture) observeRevisions() {
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "controllerrevisions" {
			f.see(a.(clienttesting.CreateAction).GetObject())
		}
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
	if st.DesiredNumberScheduled != 3 || st.CurrentNumberScheduled != 0 || st.NumberUnavailable != 3 || st.ObservedGeneration != 1 {
		t.Errorf("status = %+v", st)
	}
	ev := f.events()
	if len(ev) != 3 || !strings.HasPrefix(ev[0], "Normal SuccessfulCreate Created pod: agent-") {
		t.Errorf("events = %v", ev)
	}
}

func TestSyncWaitsForItsWritesToBeObserved(t *testing.T) {
	f := newFixture(t, testSet(), testNode("node-1"), testNode("node-2"))
	f.sync("default/agent")
	f.observeRevisions()
	f.client.ClearActions()

	// The informer has not delivered the pods yet: no second burst.
	f.sync("default/agent")
	if n := count(f.writes(), "create pods"); n != 0 {
		t.Fatalf("a sync before the creates were observed created %d more pods", n)
	}
	// Status is still written, without raising observedGeneration: this
	// sync did not act on the generation.
	ws := f.statusWrites()
	if len(ws) != 1 || ws[0].Status.ObservedGeneration != 0 || ws[0].Status.DesiredNumberScheduled != 2 {
		t.Errorf("status writes = %+v, want one with desired 2 and observedGeneration 0", ws)
	}

	// Deliver the creates from the first sync.
	f.client.ClearActions()
	var created []*corev1.Pod
	for _, n := range []string{"node-1", "node-2"} {
		p := newDaemonPod(testSet(), n, "h", nil)
		p.Name = "seen-" + n
		created = append(created, p)
	}
	if f.c.expectations.satisfied("default/agent") {
		t.Fatal("expectations satisfied before the pods were seen")
	}
	for _, p := range created {
		f.see(p)
		f.c.addPod(p)
	}
	if !f.c.expectations.satisfied("default/agent") {
		t.Fatal("expectations not satisfied after both pods were seen")
	}
	f.sync("default/agent")
	if n := count(f.writes(), "create pods"); n != 0 {
		t.Errorf("created %d pods on nodes that have one", n)
	}
}

func TestSyncExpectationsExpire(t *testing.T) {
	f := newFixture(t, testSet(), testNode("node-1"))
	f.sync("default/agent")
	f.observeRevisions()
	f.client.ClearActions()
	f.clock.Step(expectationsTimeout + time.Second)
	f.sync("default/agent")
	if n := count(f.writes(), "create pods"); n != 1 {
		t.Errorf("after the expectations timeout the lost create is retried: created %d, want 1", n)
	}
}

func TestSyncSlowStart(t *testing.T) {
	for name, tc := range map[string]struct {
		nodes       int
		failFrom    int // creates from this one on fail; 0 never
		wantCalls   int
		wantPending int
	}{
		"all succeed":         {nodes: 10, wantCalls: 10, wantPending: 10},
		"first fails":         {nodes: 10, failFrom: 1, wantCalls: 1, wantPending: 0},
		"fourth fails":        {nodes: 10, failFrom: 4, wantCalls: 7, wantPending: 3},
		"last batch fails":    {nodes: 7, failFrom: 4, wantCalls: 7, wantPending: 3},
		"250 of 300 at most":  {nodes: 300, wantCalls: 250, wantPending: 250},
		"every batch doubles": {nodes: 3, failFrom: 2, wantCalls: 3, wantPending: 1},
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
			f.c.pods = pods
			_, err := f.c.sync(f.ctx, "default/agent")
			if (err != nil) != (tc.failFrom > 0) {
				t.Fatalf("sync error = %v", err)
			}
			if pods.creates != tc.wantCalls {
				t.Errorf("create calls = %d, want %d", pods.creates, tc.wantCalls)
			}
			p := f.c.expectations.sets["default/agent"]
			if p.creates != tc.wantPending {
				t.Errorf("creates still expected = %d, want %d", p.creates, tc.wantPending)
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
	if f.c.expectations.satisfied("default/agent") {
		t.Fatal("delete not expected")
	}
	// First the pod is seen terminating, then gone: counted once.
	gone := pod.DeepCopy()
	gone.ResourceVersion = "2"
	gone.DeletionTimestamp = &metav1.Time{Time: t0}
	f.c.updatePod(pod, gone)
	f.c.deletePod(gone)
	if !f.c.expectations.satisfied("default/agent") {
		t.Error("expectations not satisfied after the delete was seen")
	}
	if ev := f.events(); !slices.Contains(ev, "Normal SuccessfulDelete Deleted pod: p1") {
		t.Errorf("events = %v", ev)
	}
}

func TestSyncFailedPodBackoff(t *testing.T) {
	set := testSet()
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
	f.c.deletePod(failed)
	if err := f.factory.Core().V1().Pods().Informer().GetIndexer().Delete(failed); err != nil {
		t.Fatal(err)
	}
	again := testPod("p2", "node-1", hash, phase(corev1.PodFailed))
	f.see(again)
	f.c.expectations.forget("default/agent")
	f.observeRevisions()
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
	data, _ := revisionData(&set.Spec.Template)
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
	pods := &recordingPodControl{}
	f.c.pods = pods
	f.sync("default/agent")
	want := []string{
		`default/orphan application/strategic-merge-patch+json {"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"DaemonSet","name":"agent","uid":"set-uid","controller":true,"blockOwnerDeletion":true}],"uid":"orphan-uid"}}`,
		`default/stray application/strategic-merge-patch+json {"metadata":{"ownerReferences":[{"$patch":"delete","uid":"set-uid"}],"uid":"stray-uid"}}`,
	}
	if diff := cmp.Diff(want, pods.patches); diff != "" {
		t.Errorf("patches (-want +got):\n%s", diff)
	}
	// The adopted pod counts for node-1; node-2 gets a new pod.
	var on []string
	for _, p := range pods.created {
		n, _ := targetNodeName(p)
		on = append(on, n)
	}
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
	f.c.pods = pods
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
	f := newFixture(t, testNode("node-1"))
	f.c.expectations.expect("default/agent", 3, nil)
	f.sync("default/agent")
	if _, ok := f.c.expectations.sets["default/agent"]; ok {
		t.Error("expectations of a deleted set are kept")
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
		f.observeRevisions()
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
	f.observeRevisions()
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
	f.c.addPod(pod)
	if f.c.queue.Len() != 1 {
		t.Errorf("owned pod added: queue length %d", f.c.queue.Len())
	}
	orphan := testPod("o", "node-1", "h")
	orphan.OwnerReferences = nil
	other := testSet()
	other.Name, other.UID = "other", "other-uid"
	other.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "none"}}
	f.see(other)
	f.c.addPod(orphan)
	k1, _ := f.c.queue.Get()
	f.c.queue.Done(k1)
	if k1 != "default/agent" || f.c.queue.Len() != 0 {
		t.Errorf("orphan added: got %s and %d more", k1, f.c.queue.Len())
	}
}

// TestStatusWritesFromAStaleCache: between a status write and its watch
// event the cache holds the older set; writing from it would conflict.
func TestStatusWritesFromAStaleCache(t *testing.T) {
	set := testSet()
	set.ResourceVersion = "5"
	hash := templateHash(&set.Spec.Template, nil)
	data, _ := revisionData(&set.Spec.Template)
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-" + hash, Namespace: "default", Labels: map[string]string{"app": "agent", appsv1.ControllerRevisionHashLabelKey: hash},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)}},
		Data: runtime.RawExtension{Raw: data}, Revision: 1,
	}
	f := newFixture(t, set, rev, testNode("node-1"), testNode("node-2"), testPod("p1", "node-1", hash, ready()))
	sets := &recordingSetControl{stored: set.DeepCopy()}
	f.c.sets = sets
	f.c.pods = &recordingPodControl{}

	f.sync("default/agent") // creates on node-2, writes desired 2 current 1
	p2 := testPod("p2", "node-2", hash)
	f.see(p2)
	f.c.addPod(p2)
	f.sync("default/agent") // the cache still has RV 5: current 2 goes on top of RV 6
	f.sync("default/agent") // nothing changed: no write

	if sets.rejects != 0 || sets.gets != 0 {
		t.Errorf("%d conflicts and %d fresh reads; the controller's own last write should have been the base", sets.rejects, sets.gets)
	}
	if len(sets.writes) != 2 {
		t.Fatalf("%d status writes, want 2", len(sets.writes))
	}
	if st := sets.stored.Status; st.CurrentNumberScheduled != 2 || st.DesiredNumberScheduled != 2 || st.ObservedGeneration != 1 {
		t.Errorf("stored status %+v", st)
	}

	// Once the cache has caught up, it is the base again.
	f.see(sets.stored.DeepCopy())
	f.sync("default/agent")
	if len(f.c.written) != 0 || len(sets.writes) != 2 {
		t.Errorf("after the cache caught up: %d remembered writes, %d status writes", len(f.c.written), len(sets.writes))
	}

	// Someone else's write in between: one conflict, one fresh read, done.
	other := sets.stored.DeepCopy()
	other.ResourceVersion = "42"
	other.Annotations["touched"] = "yes"
	sets.stored = other
	p3 := testPod("p3", "node-3", hash)
	f.see(testNode("node-3"))
	f.see(p3)
	f.sync("default/agent")
	if sets.rejects != 1 || sets.gets != 1 || sets.stored.Status.DesiredNumberScheduled != 3 || sets.stored.Annotations["touched"] != "yes" {
		t.Errorf("conflict retry: rejects %d gets %d stored %+v", sets.rejects, sets.gets, sets.stored.Status)
	}
}
