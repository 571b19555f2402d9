package ttlafterfinished

import (
	"context"
	"time"

	batch "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// applier makes the controller's one write, the delete (the
// ttl-after-finished-controller role allows get and delete on Jobs).
type applier struct {
	client kubernetes.Interface
	now    func() time.Time
}

// apply deletes the Job once d says its TTL has run out. It deletes in the
// foreground, as upstream does: the garbage collector removes the pods, then
// the Job. The UID precondition keeps a new Job of the same name safe; a Job
// already gone or replaced is no error.
func (a *applier) apply(ctx context.Context, job *batch.Job, d decision) error {
	if !d.expire {
		return nil
	}
	klog.FromContext(ctx).V(4).Info("Cleaning up Job", "job", klog.KObj(job), "finishedAt", d.finishedAt)
	policy := metav1.DeletePropagationForeground
	err := a.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &job.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err == nil { // d.expire: the Job has a TTL
		ttl := time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second
		deletionDuration.Observe(a.now().Sub(d.finishedAt.Add(ttl)).Seconds())
	}
	return err
}
