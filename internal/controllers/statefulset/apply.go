package statefulset

import (
	"context"
	"fmt"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/controllers/kit"
)

// maxInFlight caps how many creations or deletions one batch of a Parallel
// set sends at once.
const maxInFlight = 500

// applier carries out decisions.
type applier struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	// cachedPod and cachedSet read the informer's copy of a pod or a set, to
	// retry a write (of a pod, of a set's status) that lost a conflict.
	cachedPod func(namespace, name string) (*v1.Pod, error)
	cachedSet func(namespace, name string) (*appsv1.StatefulSet, error)
	// writes remembers what is written for a set, so that the next sync
	// waits for the caches to show it.
	writes *kit.OwnWrites
}

// apply runs d's stages for set, each with kit.SlowStart as stage says, and
// returns how many rolling-update deletions succeeded.
func (a *applier) apply(ctx context.Context, set *appsv1.StatefulSet, d *decision) (int, error) {
	kit.Record(a.recorder, set, d.events...)
	var rolledOut atomic.Int32
	run := func(unit []podTask) error {
		for i := range unit {
			if err := a.runTask(ctx, set, &unit[i]); err != nil {
				return err
			}
			if unit[i].rollout {
				rolledOut.Add(1)
			}
		}
		return nil
	}
	for _, s := range d.stages {
		inFlight := 1
		if s.batched {
			inFlight = maxInFlight
		}
		if _, _, err := kit.SlowStart(len(s.units), 1, inFlight, func(i int) error { return run(s.units[i]) }); err != nil {
			klog.FromContext(ctx).V(4).Info("StatefulSet sync stopped", "statefulSet", klog.KObj(set), "stage", s.name, "err", err)
			return int(rolledOut.Load()), err
		}
	}
	return int(rolledOut.Load()), nil
}

func (a *applier) runTask(ctx context.Context, set *appsv1.StatefulSet, t *podTask) error {
	if t.note != nil {
		kit.Record(a.recorder, set, *t.note)
	}
	switch t.kind {
	case taskCreate:
		return a.create(ctx, set, t)
	case taskClaims:
		err := a.createClaims(ctx, set, t)
		if err == nil {
			if err = a.writeOwners(ctx, set, t.pod, t.owners); err != nil {
				podEvent(a.recorder, set, verbUpdate, t.pod.Name, err)
			}
		}
		return err
	case taskConform:
		return a.conform(ctx, set, t)
	case taskOwners:
		return a.writeOwners(ctx, set, t.pod, t.owners)
	case taskDelete:
		err := a.client.CoreV1().Pods(t.pod.Namespace).Delete(ctx, t.pod.Name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			err = nil
		}
		if err == nil && t.note != nil && t.note.Reason == reasonReplacingUnreadyPod {
			unreadyReplacements.WithLabelValues(set.Namespace).Inc() // a replace-unready-after deletion
		}
		podEvent(a.recorder, set, verbDelete, t.pod.Name, err)
		return err
	}
	return fmt.Errorf("unknown task %q", t.kind)
}

// create makes a pod's claims, then the pod, then sets the owner references
// of its claims that already existed.
func (a *applier) create(ctx context.Context, set *appsv1.StatefulSet, t *podTask) error {
	if err := a.createClaims(ctx, set, t); err != nil {
		podEvent(a.recorder, set, verbCreate, t.pod.Name, err)
		return err
	}
	created, err := a.client.CoreV1().Pods(t.pod.Namespace).Create(ctx, t.pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// The cache is behind; the next sync sees the pod.
		return err
	}
	if err == nil {
		a.writes.Wrote(set.UID, "pods", created)
	}
	if ownerErr := a.writeOwners(ctx, set, t.pod, t.owners); ownerErr != nil {
		podEvent(a.recorder, set, verbUpdate, t.pod.Name, ownerErr)
		return ownerErr
	}
	podEvent(a.recorder, set, verbCreate, t.pod.Name, err)
	return err
}

// createClaims creates t's new claims, recording an event for each, and
// fails when any could not be created or an existing one is being deleted.
func (a *applier) createClaims(ctx context.Context, set *appsv1.StatefulSet, t *podTask) error {
	var errs []error
	for _, claim := range t.newClaims {
		created, err := a.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(ctx, claim, metav1.CreateOptions{})
		if err == nil {
			a.writes.Wrote(set.UID, "persistentvolumeclaims", created)
		} else {
			errs = append(errs, fmt.Errorf("failed to create PVC %s: %w", claim.Name, err))
		}
		if !apierrors.IsAlreadyExists(err) {
			claimEvent(a.recorder, set, verbCreate, claim.Name, t.pod.Name, err)
		}
	}
	for _, name := range t.deletingClaims {
		errs = append(errs, fmt.Errorf("pvc %s is being deleted", name))
	}
	return utilerrors.NewAggregate(errs)
}

// writeOwners writes the owner-reference changes of a pod's claims, in
// template order, warning about each claim another controller owns. A claim
// changed since the cache saw it (the volume binder annotates and binds
// claims) is read again and its owners recomputed, rather than failing the
// sync over a conflict.
func (a *applier) writeOwners(ctx context.Context, set *appsv1.StatefulSet, pod *v1.Pod, changes []ownerChange) error {
	for _, c := range changes {
		if c.foreign {
			// Upstream's message, spelling included.
			a.recorder.Eventf(set, v1.EventTypeWarning, reasonConflictingController,
				"PersistentVolumeClaim %s has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim", c.claim)
		}
		if c.update == nil {
			continue
		}
		claim := c.update
		err := retryConflicts(retry.DefaultBackoff, func(again bool) error {
			if again {
				fresh, err := a.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					return nil // gone: nothing left to own
				case err != nil || claimOwnersCurrent(fresh, set, pod):
					return err
				}
				claim = withPolicyOwners(fresh, set, pod)
			}
			updated, err := a.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
			if err == nil {
				a.writes.Wrote(set.UID, "persistentvolumeclaims", updated)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("could not update claim %s for delete policy ownerRefs: %w", c.claim, err)
		}
	}
	return nil
}

// conform restores a pod's identity and volumes and its claims' owners, and
// records the pod's update, or the first failure. The pod write is retried on
// conflict against the cache's newer copy.
func (a *applier) conform(ctx context.Context, set *appsv1.StatefulSet, t *podTask) error {
	err := a.createClaims(ctx, set, t)
	if err == nil {
		err = a.writeOwners(ctx, set, t.pod, t.owners)
	}
	// Upstream writes the pod even when it is unchanged, and reports the
	// update; that write changes nothing, so quartet only reports it.
	if err == nil && t.writePod {
		pod := t.pod
		err = retryConflicts(retry.DefaultBackoff, func(again bool) error {
			if again {
				if fresh, err := a.cachedPod(pod.Namespace, pod.Name); err == nil {
					pod = fresh.DeepCopy()
					if !hasIdentity(set, pod) {
						setIdentity(set, pod)
					}
					if !hasStorage(set, pod) {
						setStorage(set, pod)
					}
				}
			}
			updated, err := a.client.CoreV1().Pods(pod.Namespace).Update(ctx, pod, metav1.UpdateOptions{})
			if err == nil {
				a.writes.Wrote(set.UID, "pods", updated)
			}
			return err
		})
	}
	podEvent(a.recorder, set, verbUpdate, t.pod.Name, err)
	return err
}

// writeStatus writes status to set unless set already has it, retrying
// conflicts against the cache's newer copy of the set. Like upstream, a lower
// observedGeneration or a new collisionCount alone does not cause a write:
// status is compared with set's after taking set's collisionCount, and set's
// observedGeneration when that is higher.
func (a *applier) writeStatus(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) error {
	same := *status
	same.ObservedGeneration = max(same.ObservedGeneration, set.Status.ObservedGeneration)
	same.CollisionCount = set.Status.CollisionCount
	if equality.Semantic.DeepEqual(&same, &set.Status) {
		return nil
	}
	target := set.DeepCopy()
	return retryConflicts(retry.DefaultRetry, func(again bool) error {
		if again {
			if fresh, err := a.cachedSet(set.Namespace, set.Name); err == nil {
				target = fresh.DeepCopy()
			}
		}
		target.Status = *status
		updated, err := a.client.AppsV1().StatefulSets(target.Namespace).UpdateStatus(ctx, target, metav1.UpdateOptions{})
		if err == nil {
			a.writes.Wrote(set.UID, "statefulsets", updated)
		}
		return err
	})
}

// retryConflicts calls write until it succeeds, fails with anything but a
// conflict, or has used backoff's steps. A retry reads the object again
// first (again is true): after the backoff's pause, not at the conflict, as
// whoever wrote it often writes again at once (the volume binder annotates,
// binds and updates a new claim).
func retryConflicts(backoff wait.Backoff, write func(again bool) error) error {
	calls := 0
	return retry.RetryOnConflict(backoff, func() error {
		calls++
		return write(calls > 1)
	})
}

// patchPod patches a pod for set, for adoption and release.
func (a *applier) patchPod(set *appsv1.StatefulSet) func(ctx context.Context, pod *v1.Pod, patch []byte) (*v1.Pod, error) {
	return func(ctx context.Context, pod *v1.Pod, patch []byte) (*v1.Pod, error) {
		patched, err := a.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			a.writes.Wrote(set.UID, "pods", patched)
		}
		return patched, err
	}
}
