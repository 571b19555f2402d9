package statefulset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/history"
)

// maxInFlight caps how many creations or deletions one batch of a Parallel
// set sends at once.
const maxInFlight = 500

// podWriter is every write the controller makes to pods.
type podWriter interface {
	CreatePod(ctx context.Context, pod *v1.Pod) (*v1.Pod, error)
	UpdatePod(ctx context.Context, pod *v1.Pod) (*v1.Pod, error)
	DeletePod(ctx context.Context, namespace, name string) error
	PatchPod(ctx context.Context, namespace, name string, patch []byte) (*v1.Pod, error)
}

// claimWriter is every write the controller makes to PersistentVolumeClaims.
type claimWriter interface {
	CreateClaim(ctx context.Context, claim *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error)
	UpdateClaim(ctx context.Context, claim *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error)
	// GetClaim reads a claim past the cache, after a conflict.
	GetClaim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error)
}

// setWriter reads a set past the cache, before adopting, and writes status.
type setWriter interface {
	GetSet(ctx context.Context, namespace, name string) (*appsv1.StatefulSet, error)
	UpdateSetStatus(ctx context.Context, set *appsv1.StatefulSet) (*appsv1.StatefulSet, error)
}

// revisionWriter is every write the controller makes to ControllerRevisions.
type revisionWriter interface {
	// CreateRevision creates rev, renaming it with a higher collisionCount
	// while its name is taken by a revision with other data.
	CreateRevision(ctx context.Context, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, collisionCount *int32) (*appsv1.ControllerRevision, error)
	RenumberRevision(ctx context.Context, rev *appsv1.ControllerRevision, number int64) (*appsv1.ControllerRevision, error)
	DeleteRevision(ctx context.Context, rev *appsv1.ControllerRevision) error
	AdoptRevision(ctx context.Context, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error)
}

var (
	_ podWriter      = (*clientWriter)(nil)
	_ claimWriter    = (*clientWriter)(nil)
	_ setWriter      = (*clientWriter)(nil)
	_ revisionWriter = (*historyWriter)(nil)
)

// clientWriter writes through the controller's client.
type clientWriter struct {
	client kubernetes.Interface
}

func (w *clientWriter) CreatePod(ctx context.Context, pod *v1.Pod) (*v1.Pod, error) {
	return w.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
}

func (w *clientWriter) UpdatePod(ctx context.Context, pod *v1.Pod) (*v1.Pod, error) {
	return w.client.CoreV1().Pods(pod.Namespace).Update(ctx, pod, metav1.UpdateOptions{})
}

func (w *clientWriter) DeletePod(ctx context.Context, namespace, name string) error {
	return w.client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{})
}

func (w *clientWriter) PatchPod(ctx context.Context, namespace, name string, patch []byte) (*v1.Pod, error) {
	return w.client.CoreV1().Pods(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
}

func (w *clientWriter) CreateClaim(ctx context.Context, claim *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error) {
	return w.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(ctx, claim, metav1.CreateOptions{})
}

func (w *clientWriter) UpdateClaim(ctx context.Context, claim *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error) {
	return w.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
}

func (w *clientWriter) GetClaim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error) {
	return w.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (w *clientWriter) GetSet(ctx context.Context, namespace, name string) (*appsv1.StatefulSet, error) {
	return w.client.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (w *clientWriter) UpdateSetStatus(ctx context.Context, set *appsv1.StatefulSet) (*appsv1.StatefulSet, error) {
	return w.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{})
}

// historyWriter writes revisions through upstream's generic
// controller-history library, which handles name collisions.
type historyWriter struct {
	history history.Interface
}

func (w *historyWriter) CreateRevision(_ context.Context, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	return w.history.CreateControllerRevision(set, rev, collisionCount)
}

func (w *historyWriter) RenumberRevision(_ context.Context, rev *appsv1.ControllerRevision, number int64) (*appsv1.ControllerRevision, error) {
	return w.history.UpdateControllerRevision(rev, number)
}

func (w *historyWriter) DeleteRevision(_ context.Context, rev *appsv1.ControllerRevision) error {
	return w.history.DeleteControllerRevision(rev)
}

func (w *historyWriter) AdoptRevision(_ context.Context, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	return w.history.AdoptControllerRevision(set, setKind, rev)
}

// applier carries out sync plans.
type applier struct {
	pods     podWriter
	claims   claimWriter
	sets     setWriter
	recorder record.EventRecorder
	// cachedPod reads the informer's copy of a pod, to retry a write that
	// lost a conflict.
	cachedPod func(namespace, name string) (*v1.Pod, error)
	// cachedSet reads the informer's copy of a set, to retry a status
	// write that lost a conflict.
	cachedSet func(namespace, name string) (*appsv1.StatefulSet, error)
	// wrote is told the resource version of every object written on behalf
	// of a set, so that the next sync waits for the caches to catch up.
	wrote func(set *appsv1.StatefulSet, resource string, resourceVersion string)
}

// execute runs p's tasks for set and returns how many rolling-update
// deletions succeeded. It stops at the end of the first stage in which a task
// failed, or, when a stage runs one unit at a time, at the failure.
func (a *applier) execute(ctx context.Context, set *appsv1.StatefulSet, p *syncPlan) (int, error) {
	for _, e := range p.events {
		a.recorder.Event(set, e.eventType, e.reason, e.message)
	}
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
	for _, s := range p.stages {
		var err error
		if s.batched {
			err = slowStart(s.units, run)
		} else {
			for _, unit := range s.units {
				if err = run(unit); err != nil {
					break
				}
			}
		}
		if err != nil {
			klog.FromContext(ctx).V(4).Info("StatefulSet sync stopped", "statefulSet", klog.KObj(set), "stage", s.name, "err", err)
			return int(rolledOut.Load()), err
		}
	}
	return int(rolledOut.Load()), nil
}

// slowStart runs fn over units concurrently with a window that starts at
// one call and grows by one with every success (so it doubles each round
// trip), up to maxInFlight, and starts nothing more once a call has failed.
// Like upstream's slow-start batches, a failing apiserver or an exhausted
// quota costs at most about twice the successful calls; unlike fixed batches,
// one slow request does not hold back the calls after it.
func slowStart(units [][]podTask, fn func([]podTask) error) error {
	var (
		mu       sync.Mutex
		changed  = sync.NewCond(&mu)
		inFlight int
		window   = 1
		errs     []error
		wg       sync.WaitGroup
	)
	for _, unit := range units {
		mu.Lock()
		for inFlight >= window && len(errs) == 0 {
			changed.Wait()
		}
		if len(errs) > 0 {
			mu.Unlock()
			break
		}
		inFlight++
		mu.Unlock()
		wg.Go(func() {
			err := fn(unit)
			mu.Lock()
			inFlight--
			if err != nil {
				errs = append(errs, err)
			} else if window < maxInFlight {
				window++
			}
			mu.Unlock()
			changed.Broadcast()
		})
	}
	wg.Wait()
	return utilerrors.NewAggregate(errs)
}

func (a *applier) runTask(ctx context.Context, set *appsv1.StatefulSet, t *podTask) error {
	if t.note != nil {
		a.recorder.Event(set, t.note.eventType, t.note.reason, t.note.message)
	}
	switch t.kind {
	case taskCreate:
		return a.create(ctx, set, t)
	case taskClaims:
		if err := a.createClaims(ctx, set, t); err != nil {
			return err
		}
		if err := a.writeOwners(ctx, set, t.pod, t.owners); err != nil {
			podEvent(a.recorder, set, verbUpdate, t.pod.Name, err)
			return err
		}
		return nil
	case taskConform:
		return a.conform(ctx, set, t)
	case taskOwners:
		return a.writeOwners(ctx, set, t.pod, t.owners)
	case taskDelete:
		err := a.pods.DeletePod(ctx, t.pod.Namespace, t.pod.Name)
		if apierrors.IsNotFound(err) {
			err = nil
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
	created, err := a.pods.CreatePod(ctx, t.pod)
	if apierrors.IsAlreadyExists(err) {
		// The cache is behind; the next sync sees the pod.
		return err
	}
	if err == nil {
		a.wrote(set, "pods", created.ResourceVersion)
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
		created, err := a.claims.CreateClaim(ctx, claim)
		if err == nil {
			a.wrote(set, "persistentvolumeclaims", created.ResourceVersion)
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
			a.recorder.Event(set, v1.EventTypeWarning, reasonConflictingController, conflictingControllerMessage(c.claim))
		}
		if c.update == nil {
			continue
		}
		claim := c.update
		err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			updated, err := a.claims.UpdateClaim(ctx, claim)
			if err == nil {
				a.wrote(set, "persistentvolumeclaims", updated.ResourceVersion)
				return nil
			}
			if !apierrors.IsConflict(err) {
				return err
			}
			fresh, getErr := a.claims.GetClaim(ctx, claim.Namespace, claim.Name)
			switch {
			case apierrors.IsNotFound(getErr):
				return nil // gone: nothing left to own
			case getErr != nil:
				return getErr
			}
			if claimOwnersCurrent(fresh, set, pod) {
				claim = nil
				return nil
			}
			claim = withPolicyOwners(fresh, set, pod)
			return err
		})
		if err != nil {
			return fmt.Errorf("could not update claim %s for delete policy ownerRefs: %w", c.claim, err)
		}
	}
	return nil
}

// conform restores a pod's identity and volumes and its claims' owners. The
// pod write is retried on conflict against the cache's newer copy.
func (a *applier) conform(ctx context.Context, set *appsv1.StatefulSet, t *podTask) error {
	if len(t.newClaims) > 0 || len(t.deletingClaims) > 0 {
		if err := a.createClaims(ctx, set, t); err != nil {
			podEvent(a.recorder, set, verbUpdate, t.pod.Name, err)
			return err
		}
	}
	if err := a.writeOwners(ctx, set, t.pod, t.owners); err != nil {
		podEvent(a.recorder, set, verbUpdate, t.pod.Name, err)
		return err
	}
	if !t.writePod {
		// Upstream writes the unchanged pod here and reports the update; the
		// write changes nothing, so quartet only reports it.
		podEvent(a.recorder, set, verbUpdate, t.pod.Name, nil)
		return nil
	}
	pod := t.pod
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		updated, err := a.pods.UpdatePod(ctx, pod)
		if err == nil {
			a.wrote(set, "pods", updated.ResourceVersion)
			return nil
		}
		if fresh, getErr := a.cachedPod(pod.Namespace, pod.Name); getErr == nil {
			pod = fresh.DeepCopy()
			if !hasIdentity(set, pod) {
				setIdentity(set, pod)
			}
			if !hasStorage(set, pod) {
				setStorage(set, pod)
			}
		}
		return err
	})
	podEvent(a.recorder, set, verbUpdate, t.pod.Name, err)
	return err
}

// writeStatus writes status to set unless set already has it, retrying
// conflicts against the cache's newer copy of the set.
func (a *applier) writeStatus(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) error {
	if !statusDiffers(&set.Status, status) {
		return nil
	}
	target := set.DeepCopy()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		target.Status = *status
		updated, err := a.sets.UpdateSetStatus(ctx, target)
		if err == nil {
			a.wrote(set, "statefulsets", updated.ResourceVersion)
			return nil
		}
		if fresh, getErr := a.cachedSet(set.Namespace, set.Name); getErr == nil {
			target = fresh.DeepCopy()
		}
		return err
	})
}

// adoptionPatch makes set the controller of the object with uid.
func adoptionPatch(set *appsv1.StatefulSet, uid types.UID) []byte {
	patch, _ := json.Marshal(map[string]interface{}{
		"metadata": map[string]interface{}{
			"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(set, setKind)},
			"uid":             uid,
		},
	})
	return patch
}

// releasePatch removes set's owner reference from the object with uid.
func releasePatch(set *appsv1.StatefulSet, uid types.UID) []byte {
	patch, _ := json.Marshal(map[string]interface{}{
		"metadata": map[string]interface{}{
			"ownerReferences": []map[string]interface{}{{"$patch": "delete", "uid": set.UID}},
			"uid":             uid,
		},
	})
	return patch
}

// errSetGone is returned when adoption finds the set deleted or replaced.
var errSetGone = errors.New("StatefulSet is gone or being deleted")

// canAdopt reads set past the cache and fails if it is being deleted or was
// replaced by a set of the same name: a deleted set must not adopt.
func (a *applier) canAdopt(ctx context.Context, set *appsv1.StatefulSet) error {
	fresh, err := a.sets.GetSet(ctx, set.Namespace, set.Name)
	if err != nil {
		return fmt.Errorf("can't recheck DeletionTimestamp: %w", err)
	}
	if fresh.UID != set.UID {
		return fmt.Errorf("%w: original StatefulSet %s/%s is gone: got uid %s, wanted %s", errSetGone, set.Namespace, set.Name, fresh.UID, set.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("%w: %s/%s has just been deleted at %s", errSetGone, set.Namespace, set.Name, fresh.DeletionTimestamp)
	}
	return nil
}

// adoptAndRelease patches the pods the ownership step decided on. Adopted
// pods that have vanished are dropped from the set's pods.
func (a *applier) adoptAndRelease(ctx context.Context, set *appsv1.StatefulSet, o podOwnership, adoptOK func() error) ([]*v1.Pod, error) {
	var errs []error
	gone := map[types.UID]bool{}
	adopted := map[types.UID]*v1.Pod{}
	for _, pod := range o.adopt {
		if err := adoptOK(); err != nil {
			errs = append(errs, err)
			continue
		}
		patched, err := a.pods.PatchPod(ctx, pod.Namespace, pod.Name, adoptionPatch(set, pod.UID))
		switch {
		case apierrors.IsNotFound(err):
			gone[pod.UID] = true
		case err != nil:
			errs = append(errs, err)
		default:
			a.wrote(set, "pods", patched.ResourceVersion)
			adopted[pod.UID] = patched
		}
	}
	for _, pod := range o.release {
		patched, err := a.pods.PatchPod(ctx, pod.Namespace, pod.Name, releasePatch(set, pod.UID))
		switch {
		case apierrors.IsNotFound(err), apierrors.IsInvalid(err):
		case err != nil:
			errs = append(errs, err)
		default:
			a.wrote(set, "pods", patched.ResourceVersion)
		}
	}
	if len(errs) > 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	pods := make([]*v1.Pod, 0, len(o.owned))
	for _, pod := range o.owned {
		switch {
		case gone[pod.UID]:
		case adopted[pod.UID] != nil:
			// The patched pod, so that a write later in this sync does not
			// start from the copy without the owner reference.
			pods = append(pods, adopted[pod.UID])
		default:
			pods = append(pods, pod)
		}
	}
	return pods, nil
}
