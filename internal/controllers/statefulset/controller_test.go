package statefulset

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/testutil"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

// harness is the controller against kittest's fake apiserver, with the
// informers running. The harness plays the kubelet by setting pod status.
type harness struct {
	t      *testing.T
	ctx    context.Context
	client *fake.Clientset
	c      *Controller
	rec    *record.FakeRecorder
	clock  *testingclock.FakeClock
	revs   appslisters.ControllerRevisionLister
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := kittest.NewAPI(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := testingclock.NewFakeClock(now)
	c, err := New(kit.Config{Client: client, Informers: factory, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(1000)
	c.Recorder, c.apply.recorder = rec, rec
	revs := factory.Apps().V1().ControllerRevisions().Lister()
	return &harness{t: t, ctx: kittest.Start(t, factory), client: client, c: c, rec: rec, clock: clk, revs: revs}
}

// eventually waits for cond to hold, polling.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	kittest.Eventually(h.t, what, cond)
}

// sync runs one sync of default/web once the caches have caught up with the
// API (the fake's writes reach the informers asynchronously).
func (h *harness) sync() time.Duration {
	h.t.Helper()
	h.caughtUp()
	d, err := h.c.sync(h.ctx, "default/web")
	if err != nil {
		h.t.Fatalf("sync: %v", err)
	}
	if d == kit.OwnWritesTimeout {
		h.t.Fatalf("sync found the caches behind")
	}
	h.caughtUp()
	return d
}

// caughtUp waits until the informer caches hold exactly what the fake API
// holds.
func (h *harness) caughtUp() {
	h.t.Helper()
	h.eventually("the informer caches", func() bool {
		apiPods, _ := h.client.CoreV1().Pods("default").List(h.ctx, metav1.ListOptions{})
		cachedPods, _ := h.c.pods.Pods("default").List(labels.Everything())
		apiClaims, _ := h.client.CoreV1().PersistentVolumeClaims("default").List(h.ctx, metav1.ListOptions{})
		cachedClaims, _ := h.c.claims.PersistentVolumeClaims("default").List(labels.Everything())
		apiRevs, _ := h.client.AppsV1().ControllerRevisions("default").List(h.ctx, metav1.ListOptions{})
		cachedRevs, _ := h.revs.ControllerRevisions("default").List(labels.Everything())
		apiSets, _ := h.client.AppsV1().StatefulSets("default").List(h.ctx, metav1.ListOptions{})
		cachedSets, _ := h.c.sets.StatefulSets("default").List(labels.Everything())
		return sameObjects(apiPods.Items, cachedPods) && sameObjects(apiClaims.Items, cachedClaims) &&
			sameObjects(apiRevs.Items, cachedRevs) && sameObjects(apiSets.Items, cachedSets)
	})
}

// sameObjects reports whether the cache holds exactly the API's objects.
func sameObjects[T any, P interface {
	*T
	metav1.Object
}](api []T, cached []P) bool {
	if len(api) != len(cached) {
		return false
	}
	byName := map[string]P{}
	for _, c := range cached {
		byName[c.GetName()] = c
	}
	for i := range api {
		c, ok := byName[P(&api[i]).GetName()]
		if !ok || !equality.Semantic.DeepEqual(&api[i], (*T)(c)) {
			return false
		}
	}
	return true
}

func (h *harness) podNames() []string {
	pods, err := h.client.CoreV1().Pods("default").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names
}

func (h *harness) claimNames() []string {
	claims, err := h.client.CoreV1().PersistentVolumeClaims("default").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, c := range claims.Items {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}

func (h *harness) pod(name string) *v1.Pod {
	p, err := h.client.CoreV1().Pods("default").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) set() *appsv1.StatefulSet {
	s, err := h.client.AppsV1().StatefulSets("default").Get(h.ctx, "web", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// markReady plays the kubelet: the pods are Running and Ready as of now.
func (h *harness) markReady(names ...string) {
	h.t.Helper()
	for _, name := range names {
		p := h.pod(name)
		p.Status.Phase = v1.PodRunning
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.Time{Time: h.clock.Now()}}}
		if _, err := h.client.CoreV1().Pods("default").UpdateStatus(h.ctx, p, metav1.UpdateOptions{}); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) setStatus(name string, phase v1.PodPhase) {
	h.t.Helper()
	p := h.pod(name)
	p.Status.Phase = phase
	p.Status.Conditions = nil
	if _, err := h.client.CoreV1().Pods("default").UpdateStatus(h.ctx, p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) update(change func(*appsv1.StatefulSet)) {
	h.t.Helper()
	s := h.set()
	change(s)
	s.Generation++
	if _, err := h.client.AppsV1().StatefulSets("default").Update(h.ctx, s, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func chapterSet(opts ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	set := testSet("web", 3)
	withClaims(set)
	set.UID = "uid-web"
	for _, o := range opts {
		o(set)
	}
	return set
}

// TestChapterWalkthrough follows the seed chapter: web-0..2 come up in order
// with data-web-N claims, a deleted web-1 comes back with the same name and
// claim (exercise 1), and scaling down keeps the claims.
func TestChapterWalkthrough(t *testing.T) {
	h := newHarness(t, chapterSet())

	h.sync()
	if diff := cmp.Diff([]string{"web-0"}, h.podNames()); diff != "" {
		t.Fatalf("pods after the first sync (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"data-web-0"}, h.claimNames()); diff != "" {
		t.Fatalf("claims (-want +got):\n%s", diff)
	}
	rev := h.set().Status.UpdateRevision
	if rev == "" || h.set().Status.CurrentRevision != rev || h.set().Status.ObservedGeneration != 1 {
		t.Fatalf("status %+v", h.set().Status)
	}
	web0 := h.pod("web-0")
	if web0.Labels[appsv1.StatefulSetRevisionLabel] != rev || web0.Spec.Hostname != "web-0" || web0.Spec.Subdomain != "web" {
		t.Errorf("web-0 labels %v hostname %q subdomain %q", web0.Labels, web0.Spec.Hostname, web0.Spec.Subdomain)
	}
	if diff := cmp.Diff([]string{
		"Normal SuccessfulCreate Create Claim data-web-0 Pod web-0 in StatefulSet web success",
		"Normal SuccessfulCreate Create Pod web-0 in StatefulSet web successful",
	}, kittest.Events(h.rec)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Nothing more until web-0 is Ready.
	h.sync()
	if len(h.podNames()) != 1 {
		t.Fatalf("pods %v while web-0 is Pending", h.podNames())
	}
	for i := 0; i < 3; i++ {
		h.markReady(fmt.Sprintf("web-%d", i))
		h.sync()
	}
	if diff := cmp.Diff([]string{"web-0", "web-1", "web-2"}, h.podNames()); diff != "" {
		t.Fatalf("pods (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"data-web-0", "data-web-1", "data-web-2"}, h.claimNames()); diff != "" {
		t.Fatalf("claims (-want +got):\n%s", diff)
	}
	st := h.set().Status
	if st.Replicas != 3 || st.ReadyReplicas != 3 || st.AvailableReplicas != 3 || st.CurrentReplicas != 3 || st.UpdatedReplicas != 3 {
		t.Errorf("status %+v", st)
	}

	// Exercise 1: delete web-1; it comes back with the same name and claim.
	uid := h.pod("web-1").UID
	if err := h.client.CoreV1().Pods("default").Delete(h.ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	kittest.Events(h.rec)
	h.sync()
	web1 := h.pod("web-1")
	if web1.UID == uid {
		t.Fatal("web-1 was not recreated")
	}
	if web1.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-web-1" {
		t.Errorf("web-1 mounts %+v", web1.Spec.Volumes)
	}
	if diff := cmp.Diff([]string{"Normal SuccessfulCreate Create Pod web-1 in StatefulSet web successful"}, kittest.Events(h.rec)); diff != "" {
		t.Errorf("events: the claim must be reused, not created (-want +got):\n%s", diff)
	}
	h.markReady("web-1")
	h.sync()

	// A Failed pod is deleted and comes back too.
	h.setStatus("web-2", v1.PodFailed)
	h.sync()
	if diff := cmp.Diff([]string{"web-0", "web-1"}, h.podNames()); diff != "" {
		t.Fatalf("pods after web-2 failed (-want +got):\n%s", diff)
	}
	h.sync()
	if diff := cmp.Diff([]string{"web-0", "web-1", "web-2"}, h.podNames()); diff != "" {
		t.Fatalf("pods after the failed web-2 was replaced (-want +got):\n%s", diff)
	}
	h.markReady("web-2")
	h.sync()

	// Scale down to 1: web-2, then web-1, go; every claim stays.
	h.update(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](1) })
	h.sync()
	if diff := cmp.Diff([]string{"web-0", "web-1"}, h.podNames()); diff != "" {
		t.Fatalf("pods (-want +got):\n%s", diff)
	}
	h.sync()
	if diff := cmp.Diff([]string{"web-0"}, h.podNames()); diff != "" {
		t.Fatalf("pods (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"data-web-0", "data-web-1", "data-web-2"}, h.claimNames()); diff != "" {
		t.Fatalf("claims after scale-down (-want +got):\n%s", diff)
	}
	h.sync()
	if st := h.set().Status; st.Replicas != 1 || st.ObservedGeneration != 2 {
		t.Errorf("status after scale-down %+v", st)
	}
}

func TestRollingUpdateAndRollback(t *testing.T) {
	set := chapterSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](2) })
	h := newHarness(t, set)
	h.sync()
	h.markReady("web-0")
	h.sync()
	h.markReady("web-1")
	h.sync()
	r1 := h.set().Status.CurrentRevision

	h.update(func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" })
	h.sync()
	st := h.set().Status
	r2 := st.UpdateRevision
	if r2 == r1 || st.CurrentRevision != r1 {
		t.Fatalf("revisions after the template change: %+v", st)
	}
	// web-1 goes first; web-0 waits.
	if diff := cmp.Diff([]string{"web-0"}, h.podNames()); diff != "" {
		t.Fatalf("pods (-want +got):\n%s", diff)
	}
	h.sync()
	if got := h.pod("web-1").Labels[appsv1.StatefulSetRevisionLabel]; got != r2 {
		t.Fatalf("web-1 recreated at %s, want %s", got, r2)
	}
	if h.pod("web-1").Spec.Containers[0].Image != "nginx:1.28" {
		t.Errorf("web-1 image %s", h.pod("web-1").Spec.Containers[0].Image)
	}
	h.markReady("web-1")
	h.sync()
	h.sync()
	h.markReady("web-0")
	h.sync()
	st = h.set().Status
	if st.CurrentRevision != r2 || st.UpdatedReplicas != 2 || st.CurrentReplicas != 2 {
		t.Fatalf("status after the rollout %+v", st)
	}

	// Roll back to the first template: the old revision is renumbered, not
	// duplicated.
	h.update(func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "nginx:1.27" })
	h.sync()
	if got := h.set().Status.UpdateRevision; got != r1 {
		t.Errorf("update revision after rollback %s, want %s", got, r1)
	}
	revs, err := h.client.AppsV1().ControllerRevisions("default").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	numbers := map[string]int64{}
	for _, r := range revs.Items {
		numbers[r.Name] = r.Revision
	}
	if diff := cmp.Diff(map[string]int64{r1: 3, r2: 2}, numbers); diff != "" {
		t.Errorf("revisions (-want +got):\n%s", diff)
	}
}

func TestRetentionPolicyOwnerReferences(t *testing.T) {
	set := chapterSet(func(s *appsv1.StatefulSet) {
		s.Spec.Replicas = ptr.To[int32](2)
		s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
			WhenScaled:  appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		}
	})
	h := newHarness(t, set)
	h.sync() // creates both claims and pods
	h.sync() // pending pods: claims get the set's reference
	owners := func(claim string) []string {
		c, err := h.client.CoreV1().PersistentVolumeClaims("default").Get(h.ctx, claim, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range c.OwnerReferences {
			out = append(out, r.Kind+"/"+r.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"StatefulSet/web"}, owners("data-web-1")); diff != "" {
		t.Fatalf("owners of data-web-1 (-want +got):\n%s", diff)
	}
	h.markReady("web-0", "web-1")
	h.sync()
	h.update(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](1) })
	h.sync()
	if diff := cmp.Diff([]string{"Pod/web-1"}, owners("data-web-1")); diff != "" {
		t.Errorf("owners of the scaled-down claim (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"StatefulSet/web"}, owners("data-web-0")); diff != "" {
		t.Errorf("owners of data-web-0 (-want +got):\n%s", diff)
	}
}

func TestAdoptionAndRelease(t *testing.T) {
	set := chapterSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](1); s.Spec.VolumeClaimTemplates = nil })
	f := newFixture(t, 1, withClaims) // the same template, so the same revision
	orphan := f.pod(0, f.r1, ready)
	orphan.OwnerReferences = nil
	delete(orphan.Labels, appsv1.StatefulSetPodNameLabel)
	stray := f.pod(7, f.r1, ready)
	stray.Labels = map[string]string{"app": "other"}
	stray.OwnerReferences[0].UID = set.UID
	h := newHarness(t, set, orphan, stray)
	h.sync()
	web0 := h.pod("web-0")
	if ref := metav1.GetControllerOf(web0); ref == nil || ref.UID != set.UID {
		t.Errorf("web-0 not adopted: %+v", web0.OwnerReferences)
	}
	if metav1.GetControllerOf(h.pod("web-7")) != nil {
		t.Errorf("web-7 not released: %+v", h.pod("web-7").OwnerReferences)
	}
	// The adopted pod's identity is restored in the next sync.
	h.sync()
	if h.pod("web-0").Labels[appsv1.StatefulSetPodNameLabel] != "web-0" {
		t.Errorf("web-0 labels %v", h.pod("web-0").Labels)
	}
	if diff := cmp.Diff([]string{"Normal SuccessfulUpdate Update Pod web-0 in StatefulSet web successful"}, kittest.Events(h.rec)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestMinReadySecondsRequeue(t *testing.T) {
	set := chapterSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](1); s.Spec.MinReadySeconds = 30 })
	h := newHarness(t, set)
	h.sync()
	h.markReady("web-0")
	h.clock.Step(10 * time.Second)
	if d := h.sync(); d != 20*time.Second {
		t.Errorf("requeue after %v, want 20s", d)
	}
	if st := h.set().Status; st.ReadyReplicas != 1 || st.AvailableReplicas != 0 {
		t.Errorf("status %+v", st)
	}
	h.clock.Step(20 * time.Second)
	if d := h.sync(); d != 0 {
		t.Errorf("requeue after %v once available", d)
	}
	if st := h.set().Status; st.AvailableReplicas != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestInvalidAnnotationWarnsOnce(t *testing.T) {
	set := chapterSet(func(s *appsv1.StatefulSet) {
		s.Spec.Replicas = ptr.To[int32](0)
		s.Annotations = map[string]string{ReplaceUnreadyAfterAnnotation: "soon"}
	})
	h := newHarness(t, set)
	h.sync()
	h.sync()
	var warnings []string
	for _, e := range kittest.Events(h.rec) {
		if strings.Contains(e, reasonInvalidReplaceUnreadyAfter) {
			warnings = append(warnings, e)
		}
	}
	if len(warnings) != 1 {
		t.Errorf("warnings %v, want exactly one", warnings)
	}
}

// TestRun drives the controller through Run, with events going to the
// (fake) events API as in production.
func TestRun(t *testing.T) {
	set := chapterSet(func(s *appsv1.StatefulSet) {
		s.Spec.Replicas = ptr.To[int32](5)
		s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	})
	client := kittest.NewAPI(set)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(kit.Config{Client: client, Informers: factory})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	factory.Start(ctx.Done())
	go func() { c.Run(ctx, 2); close(done) }()
	defer func() {
		cancel()
		<-done
		factory.Shutdown()
	}()
	h := &harness{t: t, ctx: ctx, client: client, c: c, clock: testingclock.NewFakeClock(time.Now())}
	h.eventually("5 pods", func() bool { return len(h.podNames()) == 5 })
	h.markReady("web-0", "web-1", "web-2", "web-3", "web-4")
	h.eventually("5 ready replicas", func() bool { return h.set().Status.ReadyReplicas == 5 })
	h.eventually("creation events in the events API", func() bool {
		list, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		n := 0
		for _, e := range list.Items {
			if e.Reason == "SuccessfulCreate" && e.Source.Component == componentName && e.InvolvedObject.Name == "web" {
				n++
			}
		}
		return n == 10
	})
}

func TestEventHandlersEnqueue(t *testing.T) {
	set := chapterSet(func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = 10 })
	h := newHarness(t, set)
	f := newFixture(t, 3, withClaims)
	drain := func() []string {
		var keys []string
		for h.c.queue.Len() > 0 {
			k, _ := h.c.queue.Get()
			keys = append(keys, k)
			h.c.queue.Done(k)
			h.c.queue.Forget(k)
		}
		return keys
	}
	owned := f.pod(0, f.r1)
	orphan := f.pod(1, f.r1)
	orphan.OwnerReferences = nil
	stranger := f.pod(2, f.r1)
	stranger.OwnerReferences = nil
	stranger.Labels = map[string]string{"app": "other"}
	foreign := f.pod(3, f.r1)
	foreign.OwnerReferences[0].UID = "not-this-set"

	tests := map[string]struct {
		event func()
		want  []string
	}{
		"an owned pod is added":               {event: func() { h.c.podEvents.OnAdd(owned, false) }, want: []string{"default/web"}},
		"a matching orphan is added":          {event: func() { h.c.podEvents.OnAdd(orphan, false) }, want: []string{"default/web"}},
		"an unrelated orphan is added":        {event: func() { h.c.podEvents.OnAdd(stranger, false) }},
		"a pod of an earlier set of the name": {event: func() { h.c.podEvents.OnAdd(foreign, false) }},
		"an owned pod is deleted":             {event: func() { h.c.podEvents.OnDelete(owned) }, want: []string{"default/web"}},
		"a deletion seen as a tombstone": {
			event: func() { h.c.podEvents.OnDelete(cache.DeletedFinalStateUnknown{Key: "default/web-0", Obj: owned}) },
			want:  []string{"default/web"},
		},
		"a resync of an unchanged pod": {event: func() { h.c.podEvents.OnUpdate(owned, owned) }},
		"an orphan's labels change to match": {
			event: func() {
				before := stranger.DeepCopy()
				before.ResourceVersion = "0"
				h.c.podEvents.OnUpdate(before, orphan)
			},
			want: []string{"default/web"},
		},
		"a claim of the set is deleted": {
			event: func() { h.c.claimDeleted(f.claim(1)) },
			want:  []string{"default/web"},
		},
		"a claim deletion seen as a tombstone": {
			event: func() { h.c.claimDeleted(cache.DeletedFinalStateUnknown{Key: "default/data-web-1", Obj: f.claim(1)}) },
			want:  []string{"default/web"},
		},
		"another claim is deleted": {
			event: func() {
				c := f.claim(1)
				c.Labels = map[string]string{"app": "other"}
				h.c.claimDeleted(c)
			},
		},
		"a claim is written while no sync waits": {
			event: func() {
				waitForClaim(h, set, nil)
				h.c.claimWritten(f.claim(1))
			},
		},
		"a claim event while a sync still waits for its claim write": {
			event: func() {
				shown := "1"
				waitForClaim(h, set, &shown)
				h.c.claimWritten(f.claim(1))
			},
		},
		"the event of the last write a sync waits for": {
			event: func() {
				shown := "1"
				waitForClaim(h, set, &shown)
				shown = "5"
				h.c.claimWritten(f.claim(1))
			},
			want: []string{"default/web"},
		},
		"the last write's event, of a claim without the set's labels": {
			// A set selecting by matchExpressions alone gives its claims no
			// labels.
			event: func() {
				shown := "1"
				waitForClaim(h, set, &shown)
				shown = "5"
				c := f.claim(1)
				c.Labels = nil
				h.c.claimWritten(c)
			},
			want: []string{"default/web"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			drain()
			tc.event()
			if diff := cmp.Diff(tc.want, drain()); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
		})
	}

	// A pod becoming Ready is looked at again after minReadySeconds.
	drain()
	notReady := f.pod(0, f.r1, running)
	nowReady := f.pod(0, f.r1, readyFor(0))
	nowReady.ResourceVersion = "2"
	h.c.podEvents.OnUpdate(notReady, nowReady)
	if got := drain(); len(got) != 1 {
		t.Fatalf("queued %v on readiness", got)
	}
	h.clock.Step(10 * time.Second)
	h.eventually("the minReadySeconds requeue", func() bool { return h.c.queue.Len() == 1 })
}

// versionStore is an informer store that has applied the resource version
// *shown, and holds nothing.
type versionStore struct{ shown *string }

func (s versionStore) LastStoreSyncResourceVersion() string { return *s.shown }
func (versionStore) GetByKey(string) (any, bool, error)     { return nil, false, nil }

// waitForClaim gives h's controller a claim write for set at resource
// version 5 and, when shown is set, a sync that found it unseen in a claim
// store that has applied *shown.
func waitForClaim(h *harness, set *appsv1.StatefulSet, shown *string) {
	if shown == nil {
		h.c.apply.writes = kit.NewOwnWrites(h.clock, nil)
		return
	}
	h.c.apply.writes = kit.NewOwnWrites(h.clock, map[string]kit.Store{"persistentvolumeclaims": versionStore{shown}})
	written := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-web-1", UID: "uid-data-web-1", ResourceVersion: "5"}}
	h.c.apply.writes.Wrote(set.UID, "persistentvolumeclaims", written)
	if h.c.apply.writes.Seen(set.UID) {
		h.t.Fatal("a write ahead of the store counts as seen")
	}
}

// TestSyncWaitsForItsOwnWrites: a sync that finds one of its controller's
// writes unseen writes nothing and asks for no timed retry sooner than
// kit.OwnWritesTimeout (the write's event brings the set back), and counts
// the skip in statefulset_controller_stale_sync_skips_total under the
// resource whose write is unseen; once the store shows the write, the next
// sync acts.
func TestSyncWaitsForItsOwnWrites(t *testing.T) {
	RegisterMetrics()
	groups := map[string]string{"statefulsets": "apps", "pods": "", "persistentvolumeclaims": ""}
	for _, name := range []string{"statefulsets", "pods", "persistentvolumeclaims"} {
		t.Run(name, func(t *testing.T) {
			skips := func() float64 {
				v, err := testutil.GetCounterMetricValue(staleSkips.WithLabelValues(groups[name], name))
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			before := skips()
			set := chapterSet()
			h := newHarness(t, set)
			h.caughtUp()
			shown := "1"
			h.c.apply.writes = kit.NewOwnWrites(h.clock, map[string]kit.Store{name: versionStore{&shown}})
			written := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", UID: "uid-web-0", ResourceVersion: "999999"}}
			h.c.apply.writes.Wrote(set.UID, name, written)
			d, err := h.c.sync(h.ctx, "default/web")
			if err != nil || d != kit.OwnWritesTimeout {
				t.Fatalf("sync with an unseen write: requeue %v, err %v", d, err)
			}
			if calls := append(kittest.Calls(h.client, "pods"), kittest.Calls(h.client, "persistentvolumeclaims")...); len(calls) != 0 {
				t.Fatalf("a sync waiting for its writes wrote %v", calls)
			}
			if got := skips() - before; got != 1 {
				t.Errorf("stale_sync_skips_total{group=%q,resource=%q} grew by %v, want 1", groups[name], name, got)
			}
			shown = "999999"
			if _, err := h.c.sync(h.ctx, "default/web"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"create web-0"}, kittest.Calls(h.client, "pods")); diff != "" {
				t.Errorf("once the write is seen (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSyncAdoptsOrphanRevisionsAndPrunes(t *testing.T) {
	set := chapterSet(func(s *appsv1.StatefulSet) {
		s.Spec.Replicas = ptr.To[int32](1)
		s.Spec.RevisionHistoryLimit = ptr.To[int32](1)
	})
	f := newFixture(t, 1, withClaims)
	orphanRev := f.r1.DeepCopy()
	orphanRev.OwnerReferences = nil
	h := newHarness(t, set, orphanRev)
	h.sync()
	rev, err := h.client.AppsV1().ControllerRevisions("default").Get(h.ctx, orphanRev.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(rev); ref == nil || ref.UID != set.UID {
		t.Errorf("orphan revision not adopted: %+v", rev.OwnerReferences)
	}
	if h.set().Status.UpdateRevision != orphanRev.Name {
		t.Errorf("update revision %s, want the adopted %s", h.set().Status.UpdateRevision, orphanRev.Name)
	}
	h.markReady("web-0")
	h.sync()
	// Three more templates, each rolled out: only the live revisions and
	// one old one stay.
	for _, image := range []string{"nginx:1.28", "nginx:1.29", "nginx:1.30"} {
		h.update(func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = image })
		h.sync() // deletes web-0
		h.sync() // recreates it
		h.markReady("web-0")
		h.sync()
	}
	h.sync()
	revs, _ := h.client.AppsV1().ControllerRevisions("default").List(h.ctx, metav1.ListOptions{})
	if len(revs.Items) != 2 {
		t.Errorf("%d revisions with revisionHistoryLimit 1, want the live one and one old one", len(revs.Items))
	}
}

func TestSyncOfDeletedSet(t *testing.T) {
	h := newHarness(t)
	if d, err := h.c.sync(h.ctx, "default/gone"); err != nil || d != 0 {
		t.Errorf("sync of a missing set: %v, %v", d, err)
	}
	if _, err := h.c.sync(h.ctx, "not/a/key"); err == nil {
		t.Error("a malformed key synced")
	}
}
