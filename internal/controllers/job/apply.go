package job

import (
	"context"
	"errors"
	"fmt"
	"sync"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"

	"quartet.dev/quartet/internal/controllers/kit"
)

// The job-controller role allows create, delete and patch on pods, and no
// get: every pod write goes through a kit.PodWriter.

// dropFinalizerPatch removes the tracking finalizer: a strategic merge
// patch on metadata only, so it never races with the kubelet's status
// writes.
func dropFinalizerPatch() []byte {
	return []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["` + batch.JobTrackingFinalizer + `"]}}`)
}

// patchPod patches pod with a strategic merge patch.
func patchPod(ctx context.Context, w kit.PodWriter, pod *v1.Pod, patch []byte) (*v1.Pod, error) {
	return w.PatchPod(ctx, pod.Namespace, pod.Name, types.StrategicMergePatchType, patch)
}

// writeConcurrency bounds the pod writes in flight for one Job.
const writeConcurrency = 100

// inParallel runs fn for 0..n-1 with at most writeConcurrency at a time,
// each of them even when the sync's context is done (its write then fails).
func inParallel(n int, fn func(i int)) {
	workqueue.ParallelizeUntil(context.Background(), writeConcurrency, n, fn)
}

// deleteResult is what happened to a batch of deletions.
type deleteResult struct {
	// deleted are the pods now being deleted (or already gone).
	deleted []*v1.Pod
	failed  int32
	// failedReady counts the ready pods among the failures.
	failedReady int32
	err         error
}

// deletePods deletes the pods in parallel, each only if it still has its
// UID; pods whose finalizer must go first lose it before the delete call.
func deletePods(ctx context.Context, w kit.PodWriter, job *batch.Job, deletes []podDelete) deleteResult {
	var mu sync.Mutex
	var res deleteResult
	var errs []error
	inParallel(len(deletes), func(i int) {
		del := deletes[i]
		err := func() error {
			if del.dropFinalizer && hasTrackingFinalizer(del.pod) {
				if _, err := patchPod(ctx, w, del.pod, dropFinalizerPatch()); err != nil {
					return fmt.Errorf("removing tracking finalizer: %w", err)
				}
			}
			return w.DeletePod(ctx, job, del.pod.Namespace, del.pod.Name, del.pod.UID)
		}()
		mu.Lock()
		defer mu.Unlock()
		if err != nil && !apierrors.IsNotFound(err) {
			res.failed++
			if kit.IsReady(del.pod) {
				res.failedReady++
			}
			errs = append(errs, err)
			return
		}
		res.deleted = append(res.deleted, del.pod)
	})
	res.err = errors.Join(errs...)
	return res
}

// slowStartInitialBatch is where the slow start of a Job's first pod
// creations begins.
const slowStartInitialBatch = 1

// createResult is what happened to a set of creations.
type createResult struct {
	created []*v1.Pod
	// notCreated counts failed creations and those not attempted after a
	// failure.
	notCreated int32
	// attempted counts the create calls made (succeeded or refused).
	attempted int32
	// nextBatch is where the next sync's slow start may begin: the window
	// the creations ended with, or 1 after a failure.
	nextBatch int
	err       error
}

// createPods creates the pods with kit.SlowStart, from a window of first:
// a Job whose pods are refused (a quota, an admission webhook) costs a few
// calls and events per sync instead of hundreds. Upstream starts every sync
// at a batch of 1; quartet starts where the Job's last creations left off
// while they keep succeeding, and at 1 again after a failure.
func createPods(ctx context.Context, w kit.PodWriter, job *batch.Job, pods []*v1.Pod, first int) createResult {
	var mu sync.Mutex
	var res createResult
	var errs []error
	started, window, _ := kit.SlowStart(len(pods), first, writeConcurrency, func(i int) error {
		created, err := w.CreatePod(ctx, job, pods[i])
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			res.created = append(res.created, created)
		case apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause):
			res.notCreated++
		default:
			res.notCreated++
			errs = append(errs, err)
		}
		return err
	})
	res.notCreated += int32(len(pods) - started)
	res.attempted = int32(started)
	res.nextBatch = window
	res.err = errors.Join(errs...)
	return res
}

// dropFinalizers removes the tracking finalizer from the pods in parallel
// and returns the pods that no longer have it: as patched, or as they were
// when already gone.
func dropFinalizers(ctx context.Context, w kit.PodWriter, pods []*v1.Pod) ([]*v1.Pod, error) {
	var dropped []*v1.Pod
	var mu sync.Mutex
	var errs []error
	patch := dropFinalizerPatch()
	inParallel(len(pods), func(i int) {
		patched, err := patchPod(ctx, w, pods[i], patch)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case apierrors.IsNotFound(err):
			dropped = append(dropped, pods[i])
		case err != nil:
			errs = append(errs, fmt.Errorf("removing tracking finalizer from pod %s: %w", pods[i].Name, err))
		default:
			dropped = append(dropped, patched)
		}
	})
	return dropped, errors.Join(errs...)
}

// applier makes the writes of a Job's sync, and remembers them in writes:
// pod creates and deletes under "pods", finalizer removals under "pod
// finalizers", status writes (through client) under "jobs".
type applier struct {
	pods   kit.PodWriter
	client kubernetes.Interface
	writes *kit.OwnWrites
}

// writePods carries out the decision's deletions and creations, the
// creations in a slow start from a window of firstBatch. It returns where
// the next creations' slow start may begin (0 when none were made).
func (a *applier) writePods(ctx context.Context, job *batch.Job, d *decision, firstBatch int) (outcome, int, error) {
	var out outcome
	var errs []error
	nextBatch := 0
	if len(d.deletes) > 0 {
		res := deletePods(ctx, a.pods, job, d.deletes)
		out.deletesFailed, out.readyDeletesFailed = res.failed, res.failedReady
		// Only deletions made to resize the Job are waited for, as upstream
		// does; a finishing Job deletes without waiting.
		if d.finishing == nil {
			for _, p := range res.deleted {
				a.writes.Deleted(job.UID, "pods", p.Namespace, p.Name, p.UID)
			}
		}
		errs = append(errs, res.err)
	}
	if len(d.creates) > 0 {
		if len(job.Spec.Template.Labels) == 0 {
			// A pod without labels could never be matched to its Job again.
			out.createsFailed = int32(len(d.creates))
			errs = append(errs, errors.New("unable to create pods, no labels"))
		} else {
			res := createPods(ctx, a.pods, job, d.creates, firstBatch)
			recordCreations(job, d, int32(len(res.created)), res.attempted-int32(len(res.created)))
			out.createsFailed = res.notCreated
			for _, p := range res.created {
				a.writes.Wrote(job.UID, "pods", p)
			}
			nextBatch = res.nextBatch
			errs = append(errs, res.err)
		}
	}
	return out, nextBatch, errors.Join(errs...)
}

// writeStatus writes status to job and remembers the write.
func (a *applier) writeStatus(ctx context.Context, job *batch.Job, status batch.JobStatus) (*batch.Job, error) {
	next := job.DeepCopy()
	next.Status = status
	written, err := a.client.BatchV1().Jobs(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	a.writes.Wrote(job.UID, "jobs", written)
	recordStatus(job, &job.Status, &written.Status)
	return written, nil
}

// dropFinalizers removes the tracking finalizer of pods and returns the
// UIDs of those that no longer have it.
func (a *applier) dropFinalizers(ctx context.Context, job *batch.Job, pods []*v1.Pod) (map[types.UID]bool, error) {
	if len(pods) == 0 {
		return map[types.UID]bool{}, nil
	}
	dropped, err := dropFinalizers(ctx, a.pods, pods)
	uids := make(map[types.UID]bool, len(dropped))
	for _, p := range dropped {
		uids[p.UID] = true
		a.writes.Wrote(job.UID, "pod finalizers", p)
	}
	recordFailurePolicy(job, pods, uids)
	return uids, err
}
