package cronjob

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/controllers/kit"
)

// applier makes a sync's writes through the controller's client, whose
// cronjob-controller role allows creating, getting and deleting Jobs and
// updating CronJobs' status.
type applier struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	// writes remembers every Job this controller deleted, filed under
	// "jobs", so that a later sync racing the informer cache does not
	// mistake it for a Job it never saw, and every status it wrote, filed
	// under "cronjobs", so that a sync that sees its new Job before that
	// status waits for the status instead of reading the CronJob again.
	writes *kit.OwnWrites

	// owed holds the status each CronJob is owed by a sync that created a
	// Job and left the status write to the CronJob's next sync (see apply).
	owedMu sync.Mutex
	owed   map[types.UID]owedStatus
}

// owedStatus is a status to write, computed from the CronJob at
// resourceVersion, whose status was base.
type owedStatus struct {
	resourceVersion string
	base, status    batchv1.CronJobStatus
}

// apply carries out d, made for cj (which it does not modify), then writes
// the resulting status if it changed; errors come back joined after the
// status write, so that what did happen is recorded.
//
// A sync that created a Job does not write the status itself: it returns
// owed, the status is remembered, and the CronJob's next sync, which the
// caller queues behind every CronJob already waiting, writes it. When many
// CronJobs fire in the same second, their Jobs are all created before any
// status is written, instead of each worker alternating a create and a
// status write. The Job's name is the lock that keeps a crash in between
// from running it twice; the next sync after a restart finds it and records
// it, as when a status write fails.
func (a *applier) apply(ctx context.Context, cj *batchv1.CronJob, d Decision) (owed bool, err error) {
	status := d.Status.DeepCopy()
	for _, j := range d.Prune {
		// A Job that cannot be pruned now is pruned by a later sync; as in
		// Kubernetes that does not fail this one.
		_ = a.deleteJob(ctx, cj, j.Namespace, j.Name, j.UID)
	}
	kit.Record(a.recorder, cj, d.Events...)

	var errs []error
	create := d.Create
	for _, ref := range d.Replace {
		if err := a.deleteJob(ctx, cj, ref.Namespace, ref.Name, ref.UID); err != nil {
			errs = append(errs, fmt.Errorf("could not replace job %s/%s: %w", ref.Namespace, ref.Name, err))
			create = nil
			break
		}
		status.Active = withoutUID(status.Active, ref.UID)
	}
	if create != nil {
		ref, err := a.createJob(ctx, cj, create, d.ScheduledTime)
		if err != nil {
			errs = append(errs, err)
		} else if ref != nil && !hasUID(status.Active, ref.UID) {
			status.Active = append(status.Active, *ref)
			status.LastScheduleTime = &metav1.Time{Time: d.ScheduledTime}
			if len(errs) == 0 {
				a.owedMu.Lock()
				a.owed[cj.UID] = owedStatus{resourceVersion: cj.ResourceVersion, base: cj.Status, status: *status}
				a.owedMu.Unlock()
				return true, nil
			}
		}
	}

	if !equality.Semantic.DeepEqual(*status, cj.Status) {
		updated := cj.DeepCopy()
		updated.Status = *status
		written, err := a.client.BatchV1().CronJobs(cj.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("updating status: %w", err))
		} else {
			a.writes.Wrote(cj.UID, "cronjobs", written)
		}
	}
	return false, errors.Join(errs...)
}

// takeOwed returns cj with the status a sync left it owing, if any, and
// forgets that status. The status counts while the cache holds the CronJob
// it was computed from, or one whose status is still the one it was computed
// from (an edit of the spec, such as suspending the CronJob, keeps the
// status); after another status write the sync decides from the CronJob as
// it is, and finds its Job again by name.
func (a *applier) takeOwed(cj *batchv1.CronJob) *batchv1.CronJob {
	a.owedMu.Lock()
	o, ok := a.owed[cj.UID]
	delete(a.owed, cj.UID)
	a.owedMu.Unlock()
	if !ok || (o.resourceVersion != cj.ResourceVersion && !equality.Semantic.DeepEqual(o.base, cj.Status)) {
		return cj
	}
	owing := cj.DeepCopy()
	owing.Status = o.status
	return owing
}

// deleteJob deletes one Job of cj, only if it still has uid, leaving its
// pods to the garbage collector (background propagation), and records the
// outcome. A Job that is already gone counts as deleted, silently.
func (a *applier) deleteJob(ctx context.Context, cj *batchv1.CronJob, namespace, name string, uid types.UID) error {
	logger := klog.FromContext(ctx)
	background := metav1.DeletePropagationBackground
	err := a.client.BatchV1().Jobs(namespace).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &background,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	switch {
	case err == nil:
		a.recorder.Eventf(cj, corev1.EventTypeNormal, kit.ReasonSuccessfulDelete, "Deleted job %v", name)
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// NotFound: gone already. Conflict: the UID precondition failed, so
		// the Job this CronJob knew is gone and another took its name.
		logger.V(4).Info("Job already gone", "cronjob", klog.KObj(cj), "job", klog.KRef(namespace, name))
	default:
		logger.Error(err, "Deleting job", "cronjob", klog.KObj(cj), "job", klog.KRef(namespace, name))
		a.recorder.Eventf(cj, corev1.EventTypeWarning, kit.ReasonFailedDelete, "Error deleting job %s: %v", name, err)
		return err
	}
	a.writes.Deleted(cj.UID, "jobs", namespace, name, uid)
	return nil
}

// createJob creates job for cj and returns the reference status.active
// should hold, or nil when status should not change.
func (a *applier) createJob(ctx context.Context, cj *batchv1.CronJob, job *batchv1.Job, scheduled time.Time) (*corev1.ObjectReference, error) {
	logger := klog.FromContext(ctx)
	created, err := a.client.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
	switch {
	case err == nil:
		creationSkew.Observe(created.CreationTimestamp.Sub(scheduled).Seconds())
		logger.V(4).Info("Created job", "cronjob", klog.KObj(cj), "job", klog.KObj(created))
		a.recorder.Eventf(cj, corev1.EventTypeNormal, kit.ReasonSuccessfulCreate, "Created job %v", created.Name)
		return jobRef(created), nil
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// Every create fails until the namespace and the CronJob are gone.
		return nil, err
	case apierrors.IsAlreadyExists(err):
		// The name is the lock: this scheduled time already has its Job.
		existing, getErr := a.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if getErr != nil {
			a.recorder.Eventf(cj, corev1.EventTypeWarning, reasonFailedGet, "Error getting job %s: %v", job.Name, getErr)
			return nil, getErr
		}
		if !metav1.IsControlledBy(existing, cj) {
			// Someone else's Job has the name; leave it and its owner be.
			logger.Info("A job not controlled by this CronJob has the scheduled job's name", "cronjob", klog.KObj(cj), "job", klog.KObj(existing))
			return nil, nil
		}
		// Created by an earlier sync whose status write was lost.
		logger.Info("Job already exists", "cronjob", klog.KObj(cj), "job", klog.KObj(existing))
		return jobRef(existing), nil
	default:
		a.recorder.Eventf(cj, corev1.EventTypeWarning, kit.ReasonFailedCreate, "Error creating job: %v", err)
		return nil, err
	}
}
