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
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"

	"quartet.dev/quartet/internal/controllers/kit"
)

// writeConcurrency bounds the pod writes in flight for one Job.
const writeConcurrency = 100

// applier makes the writes of a Job's sync, and remembers them in writes:
// pod creates and deletes under "pods", finalizer removals under "pod
// finalizers", status writes (through client) under "jobs". Every pod write
// goes through pods: the job-controller role allows create, delete and patch
// on pods, and no get.
type applier struct {
	pods   kit.PodWriter
	client kubernetes.Interface
	writes *kit.OwnWrites
}

// dropFinalizer removes pod's tracking finalizer by a strategic merge patch
// of metadata only, which never races with the kubelet's status writes.
func (a *applier) dropFinalizer(ctx context.Context, pod *v1.Pod) (*v1.Pod, error) {
	patch := `{"metadata":{"$deleteFromPrimitiveList/finalizers":["` + batch.JobTrackingFinalizer + `"]}}`
	return a.pods.PatchPod(ctx, pod.Namespace, pod.Name, types.StrategicMergePatchType, []byte(patch))
}

// writePods carries out the decision's deletions and creations, the
// creations in a slow start from a window of firstBatch. It returns where
// the next creations' slow start may begin (0 when none were made).
func (a *applier) writePods(ctx context.Context, job *batch.Job, d *decision, firstBatch int) (outcome, int, error) {
	var out outcome
	err := a.deletePods(ctx, job, d, &out)
	switch {
	case len(d.creates) == 0:
		return out, 0, err
	case len(job.Spec.Template.Labels) == 0:
		// A pod without labels could never be matched to its Job again.
		out.createsFailed = int32(len(d.creates))
		return out, 0, errors.Join(err, errors.New("unable to create pods, no labels"))
	}
	nextBatch, createErr := a.createPods(ctx, job, d, firstBatch, &out)
	return out, nextBatch, errors.Join(err, createErr)
}

// deletePods deletes the decision's pods in parallel, each only if it still
// has its UID; pods whose finalizer must go first lose it before the delete
// call. Only deletions made to resize the Job are waited for, as upstream
// does; a finishing Job deletes without waiting.
func (a *applier) deletePods(ctx context.Context, job *batch.Job, d *decision, out *outcome) error {
	var mu sync.Mutex
	var errs []error
	// Every write is made, even when the sync's context is done (it then fails).
	workqueue.ParallelizeUntil(context.Background(), writeConcurrency, len(d.deletes), func(i int) {
		del := d.deletes[i]
		err := func() error {
			if del.dropFinalizer && hasTrackingFinalizer(del.pod) {
				if _, err := a.dropFinalizer(ctx, del.pod); err != nil {
					return fmt.Errorf("removing tracking finalizer: %w", err)
				}
			}
			return a.pods.DeletePod(ctx, job, del.pod.Namespace, del.pod.Name, del.pod.UID)
		}()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil && !apierrors.IsNotFound(err):
			out.deletesFailed++
			if kit.IsReady(del.pod) {
				out.readyDeletesFailed++
			}
			errs = append(errs, err)
		case d.finishing == nil:
			a.writes.Deleted(job.UID, "pods", del.pod.Namespace, del.pod.Name, del.pod.UID)
		}
	})
	return errors.Join(errs...)
}

// createPods creates the decision's pods with kit.SlowStart, from a window of
// first: a Job whose pods are refused (a quota, an admission webhook) costs a
// few calls and events per sync instead of hundreds. Upstream starts every
// sync at a batch of 1; quartet starts where the Job's last creations left off
// while they keep succeeding, and at 1 after a failure: the window it returns.
func (a *applier) createPods(ctx context.Context, job *batch.Job, d *decision, first int, out *outcome) (int, error) {
	var mu sync.Mutex
	var errs []error
	var created int32
	started, window, _ := kit.SlowStart(len(d.creates), first, writeConcurrency, func(i int) error {
		pod, err := a.pods.CreatePod(ctx, job, d.creates[i])
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			created++
			a.writes.Wrote(job.UID, "pods", pod)
		case !apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause):
			errs = append(errs, err)
		}
		return err
	})
	recordCreations(job, d, created, int32(started)-created)
	out.createsFailed = int32(len(d.creates)) - created
	return window, errors.Join(errs...)
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

// dropFinalizers removes the pods' tracking finalizer in parallel and
// returns the UIDs of those without it now: patched, or already gone.
func (a *applier) dropFinalizers(ctx context.Context, job *batch.Job, pods []*v1.Pod) (sets.Set[types.UID], error) {
	dropped := make(sets.Set[types.UID], len(pods))
	var mu sync.Mutex
	var errs []error
	// Every write is made, even when the sync's context is done (it then fails).
	workqueue.ParallelizeUntil(context.Background(), writeConcurrency, len(pods), func(i int) {
		patched, err := a.dropFinalizer(ctx, pods[i])
		if apierrors.IsNotFound(err) {
			patched, err = pods[i], nil
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("removing tracking finalizer from pod %s: %w", pods[i].Name, err))
			return
		}
		dropped.Insert(patched.UID)
		a.writes.Wrote(job.UID, "pod finalizers", patched)
	})
	recordFailurePolicy(job, pods, dropped)
	return dropped, errors.Join(errs...)
}
