package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// podWriter is every pod write the Job controller makes. The job-controller
// role allows create, delete and patch on pods, and no get.
type podWriter interface {
	createPod(ctx context.Context, job *batch.Job, pod *v1.Pod) (*v1.Pod, error)
	deletePod(ctx context.Context, job *batch.Job, pod *v1.Pod) error
	patchPod(ctx context.Context, pod *v1.Pod, patch []byte) error
}

// jobWriter is every Job read and write that bypasses the informer cache.
type jobWriter interface {
	updateStatus(ctx context.Context, job *batch.Job) (*batch.Job, error)
	// getFresh reads the Job from the apiserver, for the recheck before
	// adopting pods.
	getFresh(ctx context.Context, namespace, name string) (*batch.Job, error)
}

var (
	_ podWriter = (*realPodWriter)(nil)
	_ podWriter = (*fakePodWriter)(nil)
	_ jobWriter = (*realJobWriter)(nil)
	_ jobWriter = (*fakeJobWriter)(nil)
)

// realPodWriter writes through the API and records upstream's events for
// pod creations and deletions on the Job.
type realPodWriter struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
}

func (w *realPodWriter) createPod(ctx context.Context, job *batch.Job, pod *v1.Pod) (*v1.Pod, error) {
	created, err := w.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause) {
			w.recorder.Eventf(job, v1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		}
		return nil, err
	}
	klog.FromContext(ctx).V(4).Info("Created pod", "job", klog.KObj(job), "pod", klog.KObj(created))
	w.recorder.Eventf(job, v1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %v", created.Name)
	return created, nil
}

func (w *realPodWriter) deletePod(ctx context.Context, job *batch.Job, pod *v1.Pod) error {
	klog.FromContext(ctx).V(2).Info("Deleting pod", "job", klog.KObj(job), "pod", klog.KObj(pod))
	err := w.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	switch {
	case apierrors.IsNotFound(err):
		return err
	case err != nil:
		w.recorder.Eventf(job, v1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pod %s: %w", pod.Name, err)
	}
	w.recorder.Eventf(job, v1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %v", pod.Name)
	return nil
}

func (w *realPodWriter) patchPod(ctx context.Context, pod *v1.Pod, patch []byte) error {
	_, err := w.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

type realJobWriter struct {
	client kubernetes.Interface
}

func (w *realJobWriter) updateStatus(ctx context.Context, job *batch.Job) (*batch.Job, error) {
	return w.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
}

func (w *realJobWriter) getFresh(ctx context.Context, namespace, name string) (*batch.Job, error) {
	return w.client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
}

// Patches. Strategic merge patches on metadata only, so they never race
// with the kubelet's status writes.

// dropFinalizerPatch removes the tracking finalizer.
func dropFinalizerPatch() []byte {
	return []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["` + batch.JobTrackingFinalizer + `"]}}`)
}

// adoptPatch makes the Job the pod's controller and adds the tracking
// finalizer; the pod's uid guards against a pod recreated under the same name.
func adoptPatch(job *batch.Job, pod *v1.Pod) ([]byte, error) {
	type meta struct {
		UID             types.UID               `json:"uid"`
		OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
		Finalizers      []string                `json:"finalizers"`
	}
	yes := true
	return json.Marshal(map[string]meta{"metadata": {
		UID: pod.UID,
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion:         batch.SchemeGroupVersion.String(),
			Kind:               "Job",
			Name:               job.Name,
			UID:                job.UID,
			Controller:         &yes,
			BlockOwnerDeletion: &yes,
		}},
		Finalizers: []string{batch.JobTrackingFinalizer},
	}})
}

// releasePatch removes the Job's owner reference and the tracking
// finalizer from a pod that no longer matches the Job's selector.
func releasePatch(job *batch.Job, pod *v1.Pod) ([]byte, error) {
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":                                 pod.UID,
		"ownerReferences":                     []map[string]string{{"$patch": "delete", "uid": string(job.UID)}},
		"$deleteFromPrimitiveList/finalizers": []string{batch.JobTrackingFinalizer},
	}})
}

// writeConcurrency bounds the pod writes in flight for one Job.
const writeConcurrency = 100

// inParallel runs fn for 0..n-1 with at most writeConcurrency at a time.
func inParallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, min(n, writeConcurrency))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// deleteResult is what happened to a batch of deletions.
type deleteResult struct {
	// deleted holds the uids of pods now being deleted (or already gone).
	deleted []types.UID
	failed  int32
	// failedReady counts the ready pods among the failures.
	failedReady int32
	err         error
}

// deletePods deletes the pods in parallel; pods whose finalizer must go
// first lose it before the delete call.
func deletePods(ctx context.Context, w podWriter, job *batch.Job, deletes []podDelete) deleteResult {
	var mu sync.Mutex
	var res deleteResult
	var errs []error
	inParallel(len(deletes), func(i int) {
		del := deletes[i]
		err := func() error {
			if del.dropFinalizer && hasTrackingFinalizer(del.pod) {
				if err := w.patchPod(ctx, del.pod, dropFinalizerPatch()); err != nil {
					return fmt.Errorf("removing tracking finalizer: %w", err)
				}
			}
			return w.deletePod(ctx, job, del.pod)
		}()
		mu.Lock()
		defer mu.Unlock()
		if err != nil && !apierrors.IsNotFound(err) {
			res.failed++
			if isReady(del.pod) {
				res.failedReady++
			}
			errs = append(errs, err)
			return
		}
		res.deleted = append(res.deleted, del.pod.UID)
	})
	res.err = errors.Join(errs...)
	return res
}

// slowStartInitialBatch is the size of the first batch of pod creations;
// each later batch doubles, as long as the previous one fully succeeded.
const slowStartInitialBatch = 1

// createResult is what happened to a set of creations.
type createResult struct {
	created []types.UID
	// notCreated counts failed creations and those not attempted after a
	// failed batch.
	notCreated int32
	// nextBatch is where the next sync's slow start may begin: the largest
	// batch that fully succeeded, or 1 after a failure.
	nextBatch int
	err       error
}

// createPods creates the pods in batches that double in size, starting at
// first: a Job whose pods are refused (a quota, an admission webhook) costs
// one call and event per sync instead of hundreds. Upstream starts every
// sync at a batch of 1; quartet starts where the Job's last creations left
// off while they keep succeeding, and at 1 again after a failure.
func createPods(ctx context.Context, w podWriter, job *batch.Job, pods []*v1.Pod, first int) createResult {
	res := createResult{nextBatch: slowStartInitialBatch}
	var errs []error
	var mu sync.Mutex
	next := 0
	for size := max(first, slowStartInitialBatch); next < len(pods); size *= 2 {
		chunk := pods[next:min(len(pods), next+size)]
		next += len(chunk)
		failedBefore := res.notCreated
		inParallel(len(chunk), func(i int) {
			created, err := w.createPod(ctx, job, chunk[i])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.notCreated++
				if !apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause) {
					errs = append(errs, err)
				}
				return
			}
			res.created = append(res.created, created.UID)
		})
		if res.notCreated > failedBefore {
			// Stop here; the next sync tries again, from a batch of 1.
			res.notCreated += int32(len(pods) - next)
			res.nextBatch = slowStartInitialBatch
			break
		}
		res.nextBatch = max(res.nextBatch, len(chunk))
	}
	res.err = errors.Join(errs...)
	return res
}

// dropFinalizers removes the tracking finalizer from the pods in parallel
// and reports which pods no longer have it (a pod already gone counts).
func dropFinalizers(ctx context.Context, w podWriter, pods []*v1.Pod) (map[types.UID]bool, error) {
	dropped := make(map[types.UID]bool, len(pods))
	var mu sync.Mutex
	var errs []error
	patch := dropFinalizerPatch()
	inParallel(len(pods), func(i int) {
		err := w.patchPod(ctx, pods[i], patch)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing tracking finalizer from pod %s: %w", pods[i].Name, err))
			return
		}
		dropped[pods[i].UID] = true
	})
	return dropped, errors.Join(errs...)
}

// fakePodWriter records pod writes in memory for tests; errors can be
// injected per call kind.
type fakePodWriter struct {
	mu      sync.Mutex
	created []*v1.Pod
	deleted []string
	patched []string
	patches []string
	// createErr, when set, decides the error for each creation.
	createErr func(pod *v1.Pod) error
	deleteErr func(pod *v1.Pod) error
	patchErr  func(pod *v1.Pod) error
	seq       int
}

func (f *fakePodWriter) createPod(_ context.Context, _ *batch.Job, pod *v1.Pod) (*v1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		if err := f.createErr(pod); err != nil {
			return nil, err
		}
	}
	f.seq++
	created := pod.DeepCopy()
	created.Name = fmt.Sprintf("%s%05d", pod.GenerateName, f.seq)
	created.UID = types.UID(fmt.Sprintf("created-%d", f.seq))
	f.created = append(f.created, created)
	return created, nil
}

func (f *fakePodWriter) deletePod(_ context.Context, _ *batch.Job, pod *v1.Pod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		if err := f.deleteErr(pod); err != nil {
			return err
		}
	}
	f.deleted = append(f.deleted, pod.Name)
	return nil
}

func (f *fakePodWriter) patchPod(_ context.Context, pod *v1.Pod, patch []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.patchErr != nil {
		if err := f.patchErr(pod); err != nil {
			return err
		}
	}
	f.patched = append(f.patched, pod.Name)
	f.patches = append(f.patches, string(patch))
	return nil
}

// fakeJobWriter records status writes for tests.
type fakeJobWriter struct {
	mu       sync.Mutex
	statuses []batch.JobStatus
	fresh    *batch.Job
	err      error
	rv       int
}

func (f *fakeJobWriter) updateStatus(_ context.Context, job *batch.Job) (*batch.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.statuses = append(f.statuses, *job.Status.DeepCopy())
	out := job.DeepCopy()
	f.rv++
	out.ResourceVersion = fmt.Sprint(1000 + f.rv)
	return out, nil
}

func (f *fakeJobWriter) getFresh(_ context.Context, namespace, name string) (*batch.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fresh == nil {
		return nil, apierrors.NewNotFound(batch.Resource("jobs"), name)
	}
	return f.fresh.DeepCopy(), nil
}
