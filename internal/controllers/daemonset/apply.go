package daemonset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

// applier makes a sync's writes.
type applier struct {
	// client makes the revision and status writes; pods, the pod writes.
	client kubernetes.Interface
	pods   kit.PodWriter
	// writes remembers, for each set, the pod and status writes the
	// informer caches may not show yet.
	writes *kit.OwnWrites
}

// patchPod patches a pod, for adoption and release.
func (a *applier) patchPod(ctx context.Context, pod *corev1.Pod, patch []byte) (*corev1.Pod, error) {
	return a.pods.PatchPod(ctx, pod.Namespace, pod.Name, types.StrategicMergePatchType, patch)
}

// patchRevision patches a revision, for adoption and release.
func (a *applier) patchRevision(ctx context.Context, rev *appsv1.ControllerRevision, patch []byte) (*appsv1.ControllerRevision, error) {
	return a.client.AppsV1().ControllerRevisions(rev.Namespace).Patch(ctx, rev.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
}

// applyRevisions writes a revision plan and returns the current hash. pods
// carrying a duplicate revision's hash are relabelled in the API and in the
// pods slice, so that the rest of this sync sees them as current.
func (a *applier) applyRevisions(ctx context.Context, set *appsv1.DaemonSet, rp *revisionPlan, pods []*corev1.Pod) (string, error) {
	for _, rev := range rp.labelled {
		if _, err := a.client.AppsV1().ControllerRevisions(rev.Namespace).Update(ctx, rev, metav1.UpdateOptions{}); err != nil {
			return "", err
		}
	}
	if rp.create != nil {
		created, err := a.createRevision(ctx, set, rp.create)
		if err != nil {
			return "", err
		}
		return created.Labels[appsv1.ControllerRevisionHashLabelKey], nil
	}
	hash := rp.current.Labels[appsv1.ControllerRevisionHashLabelKey]
	if len(rp.duplicates) > 0 {
		dupHashes := map[string]bool{}
		for _, d := range rp.duplicates {
			dupHashes[d.Labels[appsv1.ControllerRevisionHashLabelKey]] = true
		}
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, appsv1.ControllerRevisionHashLabelKey, hash)
		for i, pod := range pods {
			if !dupHashes[pod.Labels[appsv1.ControllerRevisionHashLabelKey]] {
				continue
			}
			if _, err := a.pods.PatchPod(ctx, pod.Namespace, pod.Name, types.MergePatchType, patch); err != nil {
				return "", err
			}
			relabelled := pod.DeepCopy()
			relabelled.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
			pods[i] = relabelled
		}
		for _, d := range rp.duplicates {
			if err := a.client.AppsV1().ControllerRevisions(d.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return "", err
			}
		}
	}
	if rp.renumber != nil {
		if _, err := a.client.AppsV1().ControllerRevisions(rp.renumber.Namespace).Update(ctx, rp.renumber, metav1.UpdateOptions{}); err != nil {
			return "", err
		}
	}
	return hash, nil
}

// createRevision creates the revision of the current template. A revision
// of that name holding another template is a hash collision: the set's
// collisionCount is raised, which changes the name the next sync tries.
func (a *applier) createRevision(ctx context.Context, set *appsv1.DaemonSet, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	created, err := a.client.AppsV1().ControllerRevisions(rev.Namespace).Create(ctx, rev, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return created, err
	}
	existing, getErr := a.client.AppsV1().ControllerRevisions(rev.Namespace).Get(ctx, rev.Name, metav1.GetOptions{})
	if getErr != nil {
		return nil, getErr
	}
	if string(existing.Data.Raw) == string(rev.Data.Raw) {
		return existing, nil
	}
	fresh, getErr := a.client.AppsV1().DaemonSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	if getErr != nil {
		return nil, getErr
	}
	if !reflect.DeepEqual(fresh.Status.CollisionCount, set.Status.CollisionCount) {
		return nil, fmt.Errorf("found a stale collision count (%v, expected %v) of DaemonSet %q while processing; will retry until it is updated",
			ptr.Deref(set.Status.CollisionCount, 0), ptr.Deref(fresh.Status.CollisionCount, 0), set.Name)
	}
	next := ptr.Deref(fresh.Status.CollisionCount, 0) + 1
	fresh.Status.CollisionCount = &next
	if _, err := a.client.AppsV1().DaemonSets(fresh.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Hash collision among revisions, raising collisionCount", "collisionCount", next)
	return nil, err
}

// cleanupRevisions deletes the old revisions beyond the set's
// revisionHistoryLimit, oldest first, skipping any revision a pod still
// carries: those are kept however many there are.
func (a *applier) cleanupRevisions(ctx context.Context, set *appsv1.DaemonSet, old []*appsv1.ControllerRevision, pods []*corev1.Pod) error {
	excess := len(old) - int(ptr.Deref(set.Spec.RevisionHistoryLimit, defaultRevisionHistoryLimit))
	if excess <= 0 {
		return nil
	}
	liveHashes := map[string]bool{}
	for _, pod := range pods {
		if h := pod.Labels[appsv1.ControllerRevisionHashLabelKey]; h != "" {
			liveHashes[h] = true
		}
	}
	byAge := slices.Clone(old)
	slices.SortStableFunc(byAge, func(a, b *appsv1.ControllerRevision) int { return cmp.Compare(a.Revision, b.Revision) })
	for _, rev := range byAge {
		if excess == 0 {
			break
		}
		if liveHashes[rev.Labels[appsv1.ControllerRevisionHashLabelKey]] {
			continue
		}
		if err := a.client.AppsV1().ControllerRevisions(rev.Namespace).Delete(ctx, rev.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting old ControllerRevision %s: %w", rev.Name, err)
		}
		excess--
	}
	return nil
}

// writePods sends the decision's creates and deletes, each recorded in
// writes so that no sync acts again before the cache shows them. Creates go
// through kit.SlowStart: when one fails the rest are not sent, so a set that
// cannot create pods (a quota, an admission webhook) costs a few failed
// requests, not hundreds. It returns the nodes that got their pod.
func (a *applier) writePods(ctx context.Context, set *appsv1.DaemonSet, d *decision, hash string) ([]string, error) {
	logger := klog.FromContext(ctx)
	generation := templateGeneration(set)
	// errs holds each write's failure: the creates', then the deletes'.
	errs := make([]error, len(d.createOn)+len(d.remove))
	var mu sync.Mutex
	var createdOn []string
	sent, _, _ := kit.SlowStart(len(d.createOn), 1, burstReplicas, func(i int) error {
		created, err := a.pods.CreatePod(ctx, set, newDaemonPod(set, d.createOn[i], hash, generation))
		switch {
		case err == nil:
			a.writes.Wrote(set.UID, "pods", created)
			mu.Lock()
			createdOn = append(createdOn, d.createOn[i])
			mu.Unlock()
		case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		default:
			logger.V(2).Info("Failed to create daemon pod", "node", d.createOn[i], "err", err)
			errs[i] = err
		}
		return err
	})
	if skipped := len(d.createOn) - sent; skipped > 0 {
		logger.V(2).Info("Slow-start failure, skipping the remaining creates", "skipped", skipped)
	}
	var wg sync.WaitGroup
	for i, pod := range d.remove {
		wg.Go(func() {
			err := a.pods.DeletePod(ctx, set, set.Namespace, pod.Name, "")
			if err == nil {
				a.writes.Deleted(set.UID, "pods", set.Namespace, pod.Name, pod.UID)
				return
			}
			if !apierrors.IsNotFound(err) {
				logger.V(2).Info("Failed to delete daemon pod", "pod", klog.KObj(pod), "err", err)
				errs[len(d.createOn)+i] = err
			}
		})
	}
	wg.Wait()
	return createdOn, errors.Join(errs...)
}

// writeStatus writes the status, with observedGeneration raised, once, when
// it changed. The sync waits until the cache shows this controller's
// previous status write, so the cached set is the base; a conflict with
// someone else's write is retried once on a fresh copy.
func (a *applier) writeStatus(ctx context.Context, set *appsv1.DaemonSet, n counts) error {
	apply := func(s *appsv1.DaemonSetStatus) {
		s.ObservedGeneration = set.Generation
		s.DesiredNumberScheduled = n.desired
		s.CurrentNumberScheduled = n.current
		s.NumberMisscheduled = n.misscheduled
		s.NumberReady = n.ready
		s.UpdatedNumberScheduled = n.updated
		s.NumberAvailable = n.available
		s.NumberUnavailable = n.unavailable
	}
	toUpdate := set.DeepCopy()
	apply(&toUpdate.Status)
	if reflect.DeepEqual(toUpdate.Status, set.Status) {
		return nil
	}
	written, err := a.client.AppsV1().DaemonSets(toUpdate.Namespace).UpdateStatus(ctx, toUpdate, metav1.UpdateOptions{})
	if err != nil {
		fresh, getErr := a.client.AppsV1().DaemonSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		if getErr != nil {
			return fmt.Errorf("updating status of DaemonSet %s/%s: %w", set.Namespace, set.Name, getErr)
		}
		apply(&fresh.Status)
		if written, err = a.client.AppsV1().DaemonSets(fresh.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating status of DaemonSet %s/%s: %w", set.Namespace, set.Name, err)
		}
	}
	a.writes.Wrote(set.UID, "daemonsets", written)
	return nil
}
