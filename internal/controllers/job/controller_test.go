package job

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
	"quartet.dev/quartet/internal/controllers/kittest"
)

// harness runs the controller against kittest's fake apiserver and real
// informers.
type harness struct {
	t       *testing.T
	ctx     context.Context
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	c       *Controller
	events  *record.FakeRecorder
}

func newHarness(t *testing.T, clk clock.WithTicker, objects ...runtime.Object) *harness {
	t.Helper()
	h := &harness{t: t, client: kittest.NewAPI(objects...)}
	h.factory = informers.NewSharedInformerFactory(h.client, 0)
	c, err := New(kit.Config{Client: h.client, Informers: h.factory, Clock: clk})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.events = record.NewFakeRecorder(1000)
	c.Recorder = h.events
	c.apply.pods = &kit.ClientPodWriter{Client: h.client, Recorder: h.events}
	h.c = c
	h.ctx = kittest.Start(t, h.factory)
	return h
}

// eventually polls cond until it holds or fails the test.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	kittest.Eventually(h.t, what, cond)
}

func (h *harness) createJob(job *batch.Job) {
	h.t.Helper()
	if _, err := h.client.BatchV1().Jobs(job.Namespace).Create(h.ctx, job, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.eventually("the Job in the cache", func() bool {
		_, err := h.cachedJob(job.Namespace, job.Name)
		return err == nil
	})
}

// cachedJob is the Job the controller's cache holds.
func (h *harness) cachedJob(namespace, name string) (*batch.Job, error) {
	job, ok, err := kit.Cached[*batch.Job](h.c.jobs, namespace+"/"+name)
	if err == nil && !ok {
		err = fmt.Errorf("job %s/%s is not in the cache", namespace, name)
	}
	return job, err
}

func (h *harness) createPod(p *v1.Pod) {
	h.t.Helper()
	if _, err := h.client.CoreV1().Pods(p.Namespace).Create(h.ctx, p, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.eventually("the pod in the cache", func() bool {
		_, err := h.c.podLister.Pods(p.Namespace).Get(p.Name)
		return err == nil
	})
}

func (h *harness) job(name string) *batch.Job {
	h.t.Helper()
	job, err := h.client.BatchV1().Jobs("default").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return job
}

func (h *harness) pods() []*v1.Pod {
	h.t.Helper()
	list, err := h.client.CoreV1().Pods("default").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*v1.Pod
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	slices.SortFunc(out, func(a, b *v1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// waitCached waits until the informers show what the client holds, so a
// sync sees the latest writes.
func (h *harness) waitCached() {
	h.t.Helper()
	h.eventually("the caches to catch up", func() bool {
		for _, p := range h.pods() {
			cached, err := h.c.podLister.Pods(p.Namespace).Get(p.Name)
			if err != nil || cached.ResourceVersion != p.ResourceVersion || !slices.Equal(cached.Finalizers, p.Finalizers) ||
				cached.Status.Phase != p.Status.Phase || !ptr.Equal(cached.DeletionTimestamp, p.DeletionTimestamp) {
				return false
			}
		}
		list, _ := h.client.BatchV1().Jobs("default").List(h.ctx, metav1.ListOptions{})
		for _, j := range list.Items {
			cached, err := h.cachedJob(j.Namespace, j.Name)
			if err != nil || !ptr.Equal(cached.Status.Ready, j.Status.Ready) || cached.Status.Active != j.Status.Active ||
				len(cached.Status.Conditions) != len(j.Status.Conditions) || cached.Status.Succeeded != j.Status.Succeeded {
				return false
			}
		}
		return true
	})
}

func (h *harness) sync(key string) time.Duration {
	h.t.Helper()
	h.waitCached()
	requeue, err := h.c.sync(h.ctx, key)
	if err != nil {
		h.t.Fatalf("sync %s: %v", key, err)
	}
	return requeue
}

func (h *harness) setPhase(p *v1.Pod, phase v1.PodPhase, finished time.Time) {
	h.t.Helper()
	p = p.DeepCopy()
	p.Status.Phase = phase
	code := int32(0)
	if phase == v1.PodFailed {
		code = 1
	}
	p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "main", State: v1.ContainerState{
		Terminated: &v1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(finished)}}}}
	if _, err := h.client.CoreV1().Pods(p.Namespace).UpdateStatus(h.ctx, p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// drainEvents returns the events recorded so far as "Type Reason".
func (h *harness) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-h.events.Events:
			fields := strings.SplitN(e, " ", 3)
			out = append(out, fields[0]+" "+fields[1])
		default:
			return out
		}
	}
}

// writes counts the write calls made so far.
func (h *harness) writes() int {
	n := 0
	for _, a := range h.client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
			n++
		}
	}
	return n
}

func (h *harness) actions(verb, resource string) []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range h.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			out = append(out, a)
		}
	}
	return out
}

func TestControllerRunsAJobToCompletion(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	h := newHarness(t, clk)
	h.createJob(newTestJob(2, 2))

	if requeue := h.sync("default/pi"); requeue != 0 {
		t.Errorf("requeue = %v", requeue)
	}
	pods := h.pods()
	if len(pods) != 2 {
		t.Fatalf("pods = %d, want 2", len(pods))
	}
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, "pi-") || !hasTrackingFinalizer(p) || p.Labels[batch.JobNameLabel] != "pi" {
			t.Errorf("pod %s: finalizers %v labels %v", p.Name, p.Finalizers, p.Labels)
		}
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.UID != "job-uid" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("pod %s owner = %+v", p.Name, ref)
		}
	}
	job := h.job("pi")
	if job.Status.Active != 2 || job.Status.StartTime == nil || !job.Status.StartTime.Time.Equal(testNow) {
		t.Errorf("status after start = %+v", job.Status)
	}

	clk.Step(5 * time.Second)
	for _, p := range pods {
		h.setPhase(p, v1.PodSucceeded, clk.Now())
	}
	h.sync("default/pi")

	job = h.job("pi")
	got := viewStatus(job.Status)
	want := statusView{Succeeded: 2, FailedIndexes: "<nil>", Started: true, Completed: true,
		Conditions: "SuccessCriteriaMet=True/CompletionsReached Complete=True/CompletionsReached"}
	if got != want {
		t.Errorf("status = %+v, want %+v", got, want)
	}
	for _, p := range h.pods() {
		if hasTrackingFinalizer(p) {
			t.Errorf("pod %s kept its finalizer", p.Name)
		}
	}
	// The counts were recorded before the finalizers went: two status
	// writes, the first with the pods uncounted.
	var statusWrites []*batch.Job
	for _, a := range h.actions("update", "jobs") {
		if a.GetSubresource() == "status" {
			statusWrites = append(statusWrites, a.(k8stesting.UpdateAction).GetObject().(*batch.Job))
		}
	}
	if len(statusWrites) != 3 {
		t.Fatalf("status writes = %d, want 3", len(statusWrites))
	}
	if u := statusWrites[1].Status.UncountedTerminatedPods; len(u.Succeeded) != 2 || statusWrites[1].Status.Succeeded != 0 {
		t.Errorf("second write = %+v, want both pods uncounted", statusWrites[1].Status)
	}
	wantEvents := []string{"Normal SuccessfulCreate", "Normal SuccessfulCreate", "Normal Completed"}
	if got := h.drainEvents(); !slices.Equal(got, wantEvents) {
		t.Errorf("events = %v, want %v", got, wantEvents)
	}

	// A finished Job is left alone.
	before := h.writes()
	h.sync("default/pi")
	if n := h.writes() - before; n != 0 {
		t.Errorf("a finished Job caused %d more writes", n)
	}
}

func TestControllerRetriesAfterTheDelay(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	h := newHarness(t, clk)
	h.createJob(newTestJob(1, 1, backoffLimit(2)))
	h.sync("default/pi")
	first := h.pods()[0]
	h.setPhase(first, v1.PodFailed, clk.Now().Add(-time.Second))
	if requeue := h.sync("default/pi"); requeue != 9*time.Second {
		t.Errorf("requeue = %v, want 9s", requeue)
	}
	if n := len(h.pods()); n != 1 {
		t.Errorf("pods = %d, want 1 during the delay", n)
	}
	// The failure is recorded before the finalizer goes; its count is
	// written by the next sync.
	if st := h.job("pi").Status; st.Failed != 0 || len(st.UncountedTerminatedPods.Failed) != 1 {
		t.Errorf("after the failure: failed %d uncounted %v", st.Failed, st.UncountedTerminatedPods)
	}
	if hasTrackingFinalizer(h.pods()[0]) {
		t.Errorf("the failed pod kept its finalizer")
	}
	clk.Step(9 * time.Second)
	h.sync("default/pi")
	if n := len(h.pods()); n != 2 {
		t.Errorf("pods = %d, want 2 after the delay", n)
	}
	if st := h.job("pi").Status; st.Failed != 1 || len(st.UncountedTerminatedPods.Failed) != 0 {
		t.Errorf("failed = %d uncounted %v, want 1 and none", st.Failed, st.UncountedTerminatedPods)
	}
}

func TestControllerBackoffAnnotations(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	h := newHarness(t, clk)
	job := newTestJob(1, 1)
	job.Annotations = map[string]string{BackoffBaseAnnotation: "2s", BackoffMaxAnnotation: "soon"}
	h.createJob(job)
	h.sync("default/pi")
	h.setPhase(h.pods()[0], v1.PodFailed, clk.Now())
	if requeue := h.sync("default/pi"); requeue != 2*time.Second {
		t.Errorf("requeue = %v, want the annotation's 2s", requeue)
	}
	h.sync("default/pi")
	var warnings int
	for _, e := range h.drainEvents() {
		if e == "Warning "+ReasonInvalidBackoff {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("InvalidBackoffAnnotation warnings = %d, want exactly 1", warnings)
	}
}

func TestControllerSkipsJobsManagedElsewhere(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	job := newTestJob(2, 2)
	job.Spec.ManagedBy = ptr.To("example.com/other-controller")
	h.createJob(job)
	before := h.writes()
	h.sync("default/pi")
	if n := h.writes() - before; n != 0 {
		t.Errorf("a Job managed elsewhere caused %d writes", n)
	}
	job = newTestJob(1, 1)
	job.Name = "mine"
	job.Spec.ManagedBy = ptr.To(batch.JobControllerName)
	h.createJob(job)
	h.sync("default/mine")
	if n := len(h.pods()); n != 1 {
		t.Errorf("pods of a Job managed by %s = %d, want 1", batch.JobControllerName, n)
	}
}

func TestControllerBesideUpstream(t *testing.T) {
	const quartet = "quartet.dev/job-controller"
	h := &harness{t: t, client: kittest.NewAPI()}
	h.factory = informers.NewSharedInformerFactory(h.client, 0)
	c, err := New(kit.Config{Client: h.client, Informers: h.factory, Clock: clocktesting.NewFakeClock(testNow), ManagedBy: quartet})
	if err != nil {
		t.Fatal(err)
	}
	h.events = record.NewFakeRecorder(1000)
	c.Recorder = h.events
	c.apply.pods = &kit.ClientPodWriter{Client: h.client, Recorder: h.events}
	h.c = c
	h.ctx = kittest.Start(t, h.factory)
	for name, managedBy := range map[string]*string{"plain": nil, "upstreams": ptr.To(batch.JobControllerName), "others": ptr.To("example.com/other")} {
		job := newTestJob(1, 1)
		job.Name, job.Spec.ManagedBy = name, managedBy
		h.createJob(job)
		before := h.writes()
		h.sync("default/" + name)
		if n := h.writes() - before; n != 0 {
			t.Errorf("beside upstream's controller, Job %s (managedBy %v) caused %d writes", name, ptr.Deref(managedBy, "unset"), n)
		}
	}
	job := newTestJob(1, 1)
	job.Name, job.Spec.ManagedBy = "mine", ptr.To(quartet)
	h.createJob(job)
	h.sync("default/mine")
	if n := len(h.pods()); n != 1 {
		t.Errorf("pods of a Job managed by %s = %d, want 1", quartet, n)
	}
}

func TestControllerAdoptsAndReleases(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	job := newTestJob(2, 2)
	h.createJob(job)
	orphan := newTestPod(job, "orphan", v1.PodRunning, noFinalizer)
	orphan.OwnerReferences = nil
	h.createPod(orphan)
	stray := newTestPod(job, "stray", v1.PodRunning)
	stray.Labels = map[string]string{"other": "label"}
	h.createPod(stray)

	h.sync("default/pi")
	got := map[string]*v1.Pod{}
	for _, p := range h.pods() {
		got[p.Name] = p
	}
	if ref := metav1.GetControllerOf(got["orphan"]); ref == nil || ref.UID != job.UID || !hasTrackingFinalizer(got["orphan"]) {
		t.Errorf("orphan not adopted: owners %v finalizers %v", got["orphan"].OwnerReferences, got["orphan"].Finalizers)
	}
	if metav1.GetControllerOf(got["stray"]) != nil || hasTrackingFinalizer(got["stray"]) {
		t.Errorf("stray not released: owners %v finalizers %v", got["stray"].OwnerReferences, got["stray"].Finalizers)
	}
	// The adopted pod counts: one more pod makes two.
	if n := len(got); n != 3 {
		t.Errorf("pods = %d, want 3 (orphan, stray, one new)", n)
	}
	if gets := h.actions("get", "jobs"); len(gets) != 1 {
		t.Errorf("fresh Job reads before adopting = %d, want 1", len(gets))
	}
}

func TestControllerDoesNotAdoptForADeletedJob(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	job := newTestJob(1, 1)
	h.createJob(job)
	orphan := newTestPod(job, "orphan", v1.PodRunning, noFinalizer)
	orphan.OwnerReferences = nil
	h.createPod(orphan)
	// The apiserver has a new Job of the same name.
	fresh := job.DeepCopy()
	fresh.UID = "another-uid"
	h.client.PrependReactor("get", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, fresh, nil
	})
	h.waitCached()
	if _, err := h.c.sync(h.ctx, "default/pi"); err == nil || !strings.Contains(err.Error(), "can't adopt") {
		t.Errorf("sync error = %v, want a refusal to adopt", err)
	}
	if p := h.pods()[0]; metav1.GetControllerOf(p) != nil {
		t.Errorf("orphan adopted by a Job that is gone")
	}
}

func TestControllerRemovesFinalizersOfOrphans(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	job := newTestJob(1, 1)
	left := newTestPod(job, "left-behind", v1.PodSucceeded)
	left.OwnerReferences = nil
	left.Labels = map[string]string{"nobody": "selects-me"}
	h.createPod(left)
	foreign := newTestPod(job, "foreign", v1.PodSucceeded)
	foreign.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs-uid", Controller: ptr.To(true)}}
	h.createPod(foreign)
	gone := newTestPod(job, "job-gone", v1.PodSucceeded)
	h.createPod(gone)

	for _, name := range []string{"left-behind", "foreign", "job-gone"} {
		if err := h.c.syncOrphans(h.ctx, orphanKey{namespace: "default", pod: name}); err != nil {
			t.Fatalf("syncOrphans %s: %v", name, err)
		}
	}
	for _, p := range h.pods() {
		want := p.Name == "foreign"
		if hasTrackingFinalizer(p) != want {
			t.Errorf("pod %s: finalizer present %v, want %v", p.Name, !want, want)
		}
	}
}

func TestControllerSweepsFinishedJobs(t *testing.T) {
	for name, tc := range map[string]struct {
		// removedUnseen: this controller removed the pod's finalizer and
		// the cache does not show it yet.
		removedUnseen bool
		wantPatches   int
	}{
		"a finished Job's pod that kept its finalizer loses it":   {wantPatches: 1},
		"a removal the cache does not show yet is not made twice": {removedUnseen: true},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, clocktesting.NewFakeClock(testNow))
			job := newTestJob(1, 1, withCondition(batch.JobComplete, batch.JobReasonCompletionsReached, msgCompletions))
			h.createJob(job)
			h.createPod(newTestPod(job, "done", v1.PodSucceeded))
			h.waitCached()
			if tc.removedUnseen {
				removed := h.pods()[0].DeepCopy()
				removed.Finalizers, removed.ResourceVersion = nil, "999999"
				h.c.apply.writes.Wrote(h.job("pi").UID, "pod finalizers", removed)
			}
			selector, _ := metav1.LabelSelectorAsSelector(job.Spec.Selector)
			if err := h.c.syncOrphans(h.ctx, orphanKey{namespace: "default", selector: selector.String()}); err != nil {
				t.Fatal(err)
			}
			if n := len(h.actions("patch", "pods")); n != tc.wantPatches {
				t.Errorf("%d pod patches, want %d", n, tc.wantPatches)
			}
			if !tc.removedUnseen && hasTrackingFinalizer(h.pods()[0]) {
				t.Errorf("the finished Job's pod kept its finalizer")
			}
		})
	}
}

// TestControllerSweepsADeletedJobsPods: deleting a Job sweeps its pods by
// selector; each pod loses its finalizer on its own, so one refused patch
// leaves only that pod for the retry.
func TestControllerSweepsADeletedJobsPods(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	job := newTestJob(30, 30) // never created: the Job is gone
	for i := range 30 {
		h.createPod(newTestPod(job, fmt.Sprintf("pod-%02d", i), v1.PodPending))
	}
	h.waitCached()
	kittest.FailNext(h.client, "patch", "pods", "pod-07", fmt.Errorf("refused"))
	selector, _ := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	key := orphanKey{namespace: "default", selector: selector.String()}
	if err := h.c.syncOrphans(h.ctx, key); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("sweep: err = %v, want the refused patch", err)
	}
	for _, p := range h.pods() {
		if want := p.Name == "pod-07"; hasTrackingFinalizer(p) != want {
			t.Errorf("pod %s: finalizer present %v, want %v", p.Name, !want, want)
		}
	}
	h.waitCached()
	if err := h.c.syncOrphans(h.ctx, key); err != nil {
		t.Fatalf("retried sweep: %v", err)
	}
	if n := len(h.actions("patch", "pods")); n != 31 {
		t.Errorf("%d pod patches, want 31 (each pod once, pod-07 twice)", n)
	}
	if hasTrackingFinalizer(h.pods()[7]) {
		t.Errorf("pod-07 kept its finalizer after the retry")
	}
}

// TestControllerSweepTakesGoingPodsFirst: a pod that starts being deleted
// while a deleted Job's pods are swept loses its finalizer next, ahead of
// the sweep's list (it is gone once it has), and only once.
func TestControllerSweepTakesGoingPodsFirst(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	h.c.sweepWorkers = 1
	job := newTestJob(30, 30) // never created: the Job is gone
	for i := range 30 {
		h.createPod(newTestPod(job, fmt.Sprintf("pod-%02d", i), v1.PodPending))
	}
	h.waitCached()
	var once sync.Once
	var going string
	h.client.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() {
			// The garbage collector deletes a pod the sweep has not reached
			// (one worker: only the first has been): the informer's event.
			// (The cache, not the client: a reactor holds the fake's lock.)
			pods, _ := h.c.podLister.List(labels.Everything())
			for _, p := range pods {
				if p.Name != a.(k8stesting.PatchAction).GetName() {
					going = p.Name
					p = p.DeepCopy()
					p.DeletionTimestamp = &metav1.Time{Time: testNow}
					h.c.sweepOrphan(p, false)
					break
				}
			}
		})
		return false, nil, nil
	})
	selector, _ := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err := h.c.syncOrphans(h.ctx, orphanKey{namespace: "default", selector: selector.String()}); err != nil {
		t.Fatal(err)
	}
	patches := kittest.Calls(h.client, "pods")
	patches = slices.DeleteFunc(patches, func(c string) bool { return !strings.HasPrefix(c, "patch ") })
	if len(patches) != 30 {
		t.Fatalf("%d pod patches, want 30 (each pod once): %v", len(patches), patches)
	}
	if patches[1] != "patch "+going {
		t.Errorf("second patch %q, want the pod being deleted (%s): %v", patches[1], going, patches)
	}
	if h.c.orphans.Len() != 0 {
		t.Errorf("%d keys queued apart, want none: the sweep took the pod being deleted", h.c.orphans.Len())
	}
	for _, p := range h.pods() {
		if hasTrackingFinalizer(p) {
			t.Errorf("pod %s kept its finalizer", p.Name)
		}
	}
}

func TestControllerWaitsForItsOwnStatusWrite(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	job := newTestJob(1, 1)
	h.createJob(job)
	h.waitCached()
	cached, _ := h.cachedJob("default", "pi")
	// A status write the cache does not show yet.
	written := cached.DeepCopy()
	written.ResourceVersion = "999999"
	h.c.apply.writes.Wrote(cached.UID, "jobs", written)
	skipsBefore := staleSkipsScraped(t)
	if _, err := h.c.sync(h.ctx, "default/pi"); err != nil {
		t.Fatal(err)
	}
	if len(h.pods()) != 0 {
		t.Fatalf("a sync from a cache older than the controller's write created pods")
	}
	if skips := staleSkipsScraped(t) - skipsBefore; skips != 1 {
		t.Errorf("job_controller_stale_sync_skips_total{group=batch,resource=jobs} grew by %v, want 1", skips)
	}
	if h.c.apply.writes.CaughtUp(cached.UID, "jobs") {
		t.Errorf("caught up while the cache is behind")
	}
	// The write's update event: the cache shows it, the Job syncs at once.
	store := h.factory.Batch().V1().Jobs().Informer().GetStore()
	if err := store.Update(written); err != nil {
		t.Fatal(err)
	}
	drain := func() int {
		n := h.c.queue.Len()
		for range n {
			k, _ := h.c.queue.Get()
			h.c.queue.Done(k)
		}
		return n
	}
	drain()
	h.c.updateJob(cached, written)
	if n := drain(); n != 1 {
		t.Errorf("the update event showing the write queued %d syncs, want 1 at once", n)
	}
	if h.c.apply.writes.CaughtUp(cached.UID, "jobs") {
		t.Errorf("a released sync is released twice")
	}
}

func TestControllerUnknownCompletionMode(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	job := newTestJob(1, 1)
	job.Spec.CompletionMode = ptr.To(batch.CompletionMode("Sometimes"))
	h.createJob(job)
	h.sync("default/pi")
	if n := len(h.pods()); n != 0 {
		t.Errorf("pods = %d, want none", n)
	}
	if got := h.drainEvents(); !slices.Equal(got, []string{"Warning UnknownCompletionMode"}) {
		t.Errorf("events = %v", got)
	}
}

func TestControllerSuspendAndResume(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	h := newHarness(t, clk)
	h.createJob(newTestJob(4, 2))
	h.sync("default/pi")
	if n := len(h.pods()); n != 2 {
		t.Fatalf("pods = %d", n)
	}
	job := h.job("pi")
	job.Spec.Suspend = ptr.To(true)
	if _, err := h.client.BatchV1().Jobs("default").Update(h.ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("the suspended Job in the cache", func() bool {
		j, _ := h.cachedJob("default", "pi")
		return ptr.Deref(j.Spec.Suspend, false)
	})
	clk.Step(time.Minute)
	h.sync("default/pi")
	// The fake clientset deletes at once (no kubelet, no grace).
	if n := len(h.pods()); n != 0 {
		t.Errorf("pods after suspending = %d, want 0", n)
	}
	job = h.job("pi")
	if got := viewStatus(job.Status); got.Conditions != "Suspended=True/JobSuspended" || got.Started || got.Active != 0 {
		t.Errorf("suspended status = %+v", got)
	}
	job.Spec.Suspend = ptr.To(false)
	if _, err := h.client.BatchV1().Jobs("default").Update(h.ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("the resumed Job in the cache", func() bool {
		j, _ := h.cachedJob("default", "pi")
		return !ptr.Deref(j.Spec.Suspend, false)
	})
	clk.Step(time.Minute)
	h.sync("default/pi")
	job = h.job("pi")
	if got := viewStatus(job.Status); got.Conditions != "Suspended=False/JobResumed" || got.Active != 2 || !job.Status.StartTime.Time.Equal(clk.Now()) {
		t.Errorf("resumed status = %+v start %v", got, job.Status.StartTime)
	}
	want := []string{"Normal SuccessfulCreate", "Normal SuccessfulCreate", "Normal SuccessfulDelete", "Normal SuccessfulDelete",
		"Normal Suspended", "Normal Resumed", "Normal SuccessfulCreate", "Normal SuccessfulCreate"}
	got := h.drainEvents()
	slices.Sort(got[2:6])
	slices.Sort(want[2:6])
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestControllerCreationFailures(t *testing.T) {
	h := newHarness(t, clocktesting.NewFakeClock(testNow))
	h.client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, fmt.Errorf("quota exceeded")
	})
	h.createJob(newTestJob(10, 10))
	h.waitCached()
	if _, err := h.c.sync(h.ctx, "default/pi"); err == nil {
		t.Fatalf("sync with refused creations returned no error")
	}
	// Slow start: one attempt, then the rest is skipped.
	if n := len(h.actions("create", "pods")); n != 1 {
		t.Errorf("create attempts = %d, want 1", n)
	}
	if got := h.drainEvents(); !slices.Equal(got, []string{"Warning FailedCreate"}) {
		t.Errorf("events = %v", got)
	}
	if got := h.job("pi").Status.Active; got != 0 {
		t.Errorf("active = %d, want 0", got)
	}
}

func TestControllerRunLoop(t *testing.T) {
	// The real clock: the queue's delays run for real, briefly.
	h := newHarness(t, nil)
	go h.c.Run(h.ctx, 2)
	job := newTestJob(5, 2)
	job.Spec.Template.Spec.RestartPolicy = v1.RestartPolicyNever
	h.createJob(job)

	// Play the node: every pod that appears succeeds.
	done := func() bool {
		for _, p := range h.pods() {
			if p.Status.Phase == v1.PodPending {
				h.setPhase(p, v1.PodSucceeded, time.Now())
			}
		}
		j := h.job("pi")
		return IsFinished(j)
	}
	h.eventually("the Job to finish", done)
	j := h.job("pi")
	if got := viewStatus(j.Status); got.Succeeded != 5 || got.Conditions != "SuccessCriteriaMet=True/CompletionsReached Complete=True/CompletionsReached" {
		t.Errorf("status = %+v", got)
	}
	if n := len(h.pods()); n != 5 {
		t.Errorf("pods = %d, want exactly 5", n)
	}
	for _, p := range h.pods() {
		if hasTrackingFinalizer(p) {
			t.Errorf("pod %s kept its finalizer", p.Name)
		}
	}
}

func TestControllerEventHandlers(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	h := newHarness(t, clk)
	wide := newTestJob(10, 4)
	h.createJob(wide)
	one := newTestJob(1, 1)
	one.Name, one.UID = "one", "one-uid"
	h.createJob(one)
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
	drain()

	finish := func(job *batch.Job, name string) {
		running := newTestPod(job, name, v1.PodRunning)
		running.ResourceVersion = "1"
		done := newTestPod(job, name, v1.PodSucceeded)
		done.ResourceVersion = "2"
		h.c.podEvents.OnUpdate(running, done)
	}
	// A one-pod Job syncs as soon as its pod finishes.
	finish(one, "o1")
	if got := drain(); !slices.Equal(got, []string{"default/one"}) {
		t.Errorf("queued %v, want default/one at once", got)
	}
	// A wide Job waits for the batch period, or for half its parallelism.
	finish(wide, "w1")
	if got := drain(); len(got) != 0 {
		t.Errorf("queued %v after one of four pods finished", got)
	}
	finish(wide, "w2")
	if got := drain(); !slices.Equal(got, []string{"default/pi"}) {
		t.Errorf("queued %v, want default/pi once two of four finished", got)
	}
	// Other pod changes wait for the batch period.
	p := newTestPod(wide, "w3", v1.PodRunning)
	p.ResourceVersion = "1"
	q := p.DeepCopy()
	q.ResourceVersion = "2"
	ready(q)
	h.c.podEvents.OnUpdate(p, q)
	if got := drain(); len(got) != 0 {
		t.Errorf("queued %v before the batch period", got)
	}
	clk.Step(batchPeriod)
	h.eventually("the batched sync", func() bool { return h.c.queue.Len() > 0 })
	if got := drain(); !slices.Equal(got, []string{"default/pi"}) {
		t.Errorf("queued %v after the batch period", got)
	}

	// A new deadline gets its own wake-up.
	started := wide.DeepCopy()
	started.Status.StartTime = ptr.To(metav1.NewTime(clk.Now()))
	withDeadline := started.DeepCopy()
	withDeadline.Spec.ActiveDeadlineSeconds = ptr.To[int64](30)
	h.c.updateJob(started, withDeadline)
	// First the update's own batched sync...
	clk.Step(batchPeriod)
	h.eventually("the update's sync", func() bool { return h.c.queue.Len() > 0 })
	drain()
	// ...then, with no other event, the wake-up at the deadline.
	clk.Step(29 * time.Second)
	h.eventually("the deadline wake-up", func() bool { return h.c.queue.Len() > 0 })
	if got := drain(); !slices.Equal(got, []string{"default/pi"}) {
		t.Errorf("queued %v at the deadline", got)
	}

	// Deleting a Job forgets what the controller remembered of it.
	h.c.memory.update(wide.UID, func(m *jobMemory) { m.backoff = backoffRecord{failures: 2} })
	h.c.deleteJob(wide)
	h.c.memory.mu.Lock()
	_, remembered := h.c.memory.jobs[wide.UID]
	h.c.memory.mu.Unlock()
	if remembered {
		t.Errorf("memory of a deleted Job kept")
	}
}

// staleSkipsScraped reads job_controller_stale_sync_skips_total{group=
// "batch",resource="jobs"} from the process's registry in the Prometheus
// text format, as /metrics serves it (0 before the first skip).
func staleSkipsScraped(t *testing.T) float64 {
	t.Helper()
	RegisterMetrics()
	rec := httptest.NewRecorder()
	legacyregistry.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, `job_controller_stale_sync_skips_total{group="batch",resource="jobs"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}
