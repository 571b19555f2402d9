package daemonset

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// AnnotationRolloutNodeSelector opts a DaemonSet into quartet's canary by
// node: its value is a label selector, and a RollingUpdate replaces pods only
// on nodes that match it until the annotation is removed.
const AnnotationRolloutNodeSelector = "quartet.dev/rollout-node-selector"

// sync brings one DaemonSet, by key, towards its spec and writes its status.
// It reads the clock once.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	now := c.clock.Now()
	logger := klog.FromContext(ctx).WithValues("daemonset", key)
	ctx = klog.NewContext(ctx, logger)
	defer func() {
		logger.V(4).Info("Finished syncing DaemonSet", "duration", c.clock.Since(now))
	}()

	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, err
	}
	set, err := c.setLister.DaemonSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		logger.V(3).Info("DaemonSet has been deleted")
		c.expectations.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting DaemonSet %s from the cache: %w", key, err)
	}
	if set.Spec.Selector != nil && len(set.Spec.Selector.MatchLabels) == 0 && len(set.Spec.Selector.MatchExpressions) == 0 {
		c.recorder.Eventf(set, corev1.EventTypeWarning, reasonSelectingAll, "This daemon set is selecting all pods. A non-empty selector is required.")
		return 0, nil
	}
	if set.DeletionTimestamp != nil {
		// Being deleted: what it owns may already be gone, so neither act nor
		// report.
		return 0, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return 0, fmt.Errorf("DaemonSet %s has an invalid selector: %w", key, err)
	}

	adopter := &adopter{c: c, set: set}
	pods, err := c.claimPods(ctx, adopter, selector)
	if err != nil {
		return 0, err
	}
	revs, err := c.claimRevisions(ctx, adopter, selector)
	if err != nil {
		return 0, err
	}
	rp, err := planRevisions(set, revs)
	if err != nil {
		return 0, err
	}
	hash, err := c.applyRevisions(ctx, set, rp, pods)
	if err != nil {
		return 0, fmt.Errorf("constructing the revisions of DaemonSet %s: %w", key, err)
	}

	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return 0, err
	}
	podsByNode := make(map[string][]*corev1.Pod, len(nodes))
	liveHashes := map[string]bool{}
	for _, pod := range pods {
		if h := pod.Labels[appsv1.ControllerRevisionHashLabelKey]; h != "" {
			liveHashes[h] = true
		}
		if pod.DeletionTimestamp != nil && (pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded) {
			// Finished and on its way out: nothing left to decide about it.
			continue
		}
		node, err := targetNodeName(pod)
		if err != nil {
			logger.V(4).Info("Ignoring daemon pod without a target node", "pod", klog.KObj(pod), "err", err)
			continue
		}
		podsByNode[node] = append(podsByNode[node], pod)
	}

	act := c.expectations.satisfied(key)
	p, planErr := plan(&planInput{
		logger:     logger,
		set:        set,
		nodes:      nodes,
		podsByNode: podsByNode,
		hash:       hash,
		now:        now,
		act:        act,
		backoff:    c.backoff,
		canary:     c.canarySelector(set),
	})
	if planErr != nil {
		// The status is still worth writing; the error requeues the set.
		planErr = fmt.Errorf("planning DaemonSet %s: %w", key, planErr)
	}

	var writeErr error
	if act && planErr == nil {
		for _, e := range p.events {
			c.recorder.Event(set, e.eventType, e.reason, e.message)
		}
		for _, k := range p.backoffSteps {
			c.backoff.Next(k, now)
		}
		if p.rollout && p.heldByCanary > 0 {
			c.announce(set, "held/"+hash, corev1.EventTypeNormal, reasonRolloutPausedOutsideCanary, fmt.Sprintf(
				"Rolling update to revision %s is limited to nodes matching %q: %d pod(s) on other nodes keep the old revision until annotation %s is removed",
				hash, set.Annotations[AnnotationRolloutNodeSelector], p.heldByCanary, AnnotationRolloutNodeSelector))
		}
		writeErr = c.writePods(ctx, set, key, p, hash)
		if writeErr == nil {
			writeErr = c.cleanupRevisions(ctx, set, rp.old, liveHashes)
		}
	}
	statusErr := c.writeStatus(ctx, set, p.status, act)
	if err := errors.Join(planErr, writeErr, statusErr); err != nil {
		return 0, err
	}
	return p.requeueAfter, nil
}

// canarySelector parses the set's rollout node selector annotation: nil
// when the set does not opt in, or when the value does not parse (that is
// reported once per value as a Warning event and otherwise ignored).
func (c *Controller) canarySelector(set *appsv1.DaemonSet) labels.Selector {
	value, ok := set.Annotations[AnnotationRolloutNodeSelector]
	if !ok {
		return nil
	}
	sel, err := labels.Parse(value)
	if err != nil {
		c.announce(set, "invalid/"+value, corev1.EventTypeWarning, reasonInvalidRolloutNodeSelector,
			fmt.Sprintf("Ignoring annotation %s: %q is not a valid label selector: %v", AnnotationRolloutNodeSelector, value, err))
		return nil
	}
	return sel
}

// announce records an event on set once per what, per set.
func (c *Controller) announce(set *appsv1.DaemonSet, what, eventType, reason, message string) {
	c.announcedMu.Lock()
	seen := c.announced[string(set.UID)]
	if seen == nil {
		seen = map[string]bool{}
		c.announced[string(set.UID)] = seen
	}
	already := seen[what]
	seen[what] = true
	c.announcedMu.Unlock()
	if !already {
		c.recorder.Event(set, eventType, reason, message)
	}
}

// adopter checks, at most once per sync and only when something is to be
// adopted, that the set is not being deleted: the cache may not know yet.
type adopter struct {
	c    *Controller
	set  *appsv1.DaemonSet
	once sync.Once
	err  error
}

func (a *adopter) canAdopt(ctx context.Context) error {
	a.once.Do(func() {
		fresh, err := a.c.sets.getSet(ctx, a.set.Namespace, a.set.Name)
		switch {
		case err != nil:
			a.err = fmt.Errorf("can't recheck DeletionTimestamp: %w", err)
		case fresh.UID != a.set.UID:
			a.err = fmt.Errorf("original DaemonSet %s/%s is gone: got uid %v, wanted %v", a.set.Namespace, a.set.Name, fresh.UID, a.set.UID)
		case fresh.DeletionTimestamp != nil:
			a.err = fmt.Errorf("%s/%s has just been deleted at %v", a.set.Namespace, a.set.Name, fresh.DeletionTimestamp)
		}
	})
	return a.err
}

// claimPods returns the set's pods, adopting matching orphans and releasing
// owned pods that no longer match.
func (c *Controller) claimPods(ctx context.Context, a *adopter, selector labels.Selector) ([]*corev1.Pod, error) {
	set := a.set
	var candidates []*corev1.Pod
	for _, key := range []string{string(set.UID), "orphan/" + set.Namespace} {
		objs, err := c.podIndexer.ByIndex(ownerIndex, key)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			candidates = append(candidates, o.(*corev1.Pod))
		}
	}
	cl := classify(set, selector, candidates)
	var errs []error
	for _, pod := range cl.adopt {
		err := a.canAdopt(ctx)
		if err == nil {
			err = c.pods.patchPod(ctx, pod.Namespace, pod.Name, types.StrategicMergePatchType, adoptPatch(set, pod.UID))
		}
		switch {
		case err == nil:
			cl.owned = append(cl.owned, pod)
		case !apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("adopting pod %s/%s: %w", pod.Namespace, pod.Name, err))
		}
	}
	for _, pod := range cl.release {
		err := c.pods.patchPod(ctx, pod.Namespace, pod.Name, types.StrategicMergePatchType, releasePatch(set, pod.UID))
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			errs = append(errs, fmt.Errorf("releasing pod %s/%s: %w", pod.Namespace, pod.Name, err))
		}
	}
	return cl.owned, errors.Join(errs...)
}

// claimRevisions is claimPods for ControllerRevisions.
func (c *Controller) claimRevisions(ctx context.Context, a *adopter, selector labels.Selector) ([]*appsv1.ControllerRevision, error) {
	set := a.set
	all, err := c.revisionLister.ControllerRevisions(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	cl := classify(set, selector, all)
	var errs []error
	for _, rev := range cl.adopt {
		err := a.canAdopt(ctx)
		if err == nil {
			err = c.revisions.patchRevision(ctx, rev.Namespace, rev.Name, adoptPatch(set, rev.UID))
		}
		switch {
		case err == nil:
			cl.owned = append(cl.owned, rev)
		case !apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("adopting ControllerRevision %s/%s: %w", rev.Namespace, rev.Name, err))
		}
	}
	for _, rev := range cl.release {
		err := c.revisions.patchRevision(ctx, rev.Namespace, rev.Name, releasePatch(set, rev.UID))
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			errs = append(errs, fmt.Errorf("releasing ControllerRevision %s/%s: %w", rev.Namespace, rev.Name, err))
		}
	}
	return cl.owned, errors.Join(errs...)
}

// applyRevisions writes a revision plan and returns the current hash. pods
// carrying a duplicate revision's hash are relabelled in the API and in the
// pods slice, so that the rest of this sync sees them as current.
func (c *Controller) applyRevisions(ctx context.Context, set *appsv1.DaemonSet, rp *revisionPlan, pods []*corev1.Pod) (string, error) {
	for _, rev := range rp.labelled {
		updated, err := c.revisions.updateRevision(ctx, rev)
		if err != nil {
			return "", err
		}
		if rp.current != nil && rp.current.Name == updated.Name {
			rp.current = updated
		}
	}
	if rp.create != nil {
		created, err := c.createRevision(ctx, set, rp.create)
		if err != nil {
			return "", err
		}
		return created.Labels[appsv1.ControllerRevisionHashLabelKey], nil
	}
	hash := rp.currentHash()
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
			if err := c.pods.patchPod(ctx, pod.Namespace, pod.Name, types.MergePatchType, patch); err != nil {
				return "", err
			}
			relabelled := pod.DeepCopy()
			relabelled.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
			pods[i] = relabelled
		}
		for _, d := range rp.duplicates {
			if err := c.revisions.deleteRevision(ctx, d.Namespace, d.Name); err != nil && !apierrors.IsNotFound(err) {
				return "", err
			}
		}
	}
	if rp.renumber != nil {
		if _, err := c.revisions.updateRevision(ctx, rp.renumber); err != nil {
			return "", err
		}
	}
	return hash, nil
}

// createRevision creates the revision of the current template. A revision
// of that name holding another template is a hash collision: the set's
// collisionCount is raised, which changes the name the next sync tries.
func (c *Controller) createRevision(ctx context.Context, set *appsv1.DaemonSet, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	created, err := c.revisions.createRevision(ctx, rev)
	if !apierrors.IsAlreadyExists(err) {
		return created, err
	}
	existing, getErr := c.revisions.getRevision(ctx, rev.Namespace, rev.Name)
	if getErr != nil {
		return nil, getErr
	}
	if string(existing.Data.Raw) == string(rev.Data.Raw) {
		return existing, nil
	}
	fresh, getErr := c.sets.getSet(ctx, set.Namespace, set.Name)
	if getErr != nil {
		return nil, getErr
	}
	if !reflect.DeepEqual(fresh.Status.CollisionCount, set.Status.CollisionCount) {
		return nil, fmt.Errorf("found a stale collision count (%v, expected %v) of DaemonSet %q while processing; will retry until it is updated",
			derefInt32(set.Status.CollisionCount), derefInt32(fresh.Status.CollisionCount), set.Name)
	}
	next := derefInt32(fresh.Status.CollisionCount) + 1
	fresh.Status.CollisionCount = &next
	if _, err := c.sets.updateStatus(ctx, fresh); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Hash collision among revisions, raising collisionCount", "collisionCount", next)
	return nil, err
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// cleanupRevisions deletes the old revisions beyond the history limit.
func (c *Controller) cleanupRevisions(ctx context.Context, set *appsv1.DaemonSet, old []*appsv1.ControllerRevision, liveHashes map[string]bool) error {
	for _, rev := range expiredRevisions(set, old, liveHashes) {
		if err := c.revisions.deleteRevision(ctx, rev.Namespace, rev.Name); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting old ControllerRevision %s: %w", rev.Name, err)
		}
	}
	return nil
}

// writePods sends the plan's creates and deletes. Expectations are set first
// so that the informer events they cause are counted however fast they come.
// Creates go in batches of 1, 2, 4, ...: when a batch has a failure the rest
// are not sent (and no longer expected), so a set that cannot create pods
// (a quota, an admission webhook) costs one failed request, not hundreds.
func (c *Controller) writePods(ctx context.Context, set *appsv1.DaemonSet, key string, p *syncPlan, hash string) error {
	deleteKeys := make([]string, len(p.remove))
	for i, name := range p.remove {
		deleteKeys[i] = set.Namespace + "/" + name
	}
	c.expectations.expect(key, len(p.createOn), deleteKeys)
	logger := klog.FromContext(ctx)

	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}

	generation := templateGeneration(set)
	todo := p.createOn
	for batch := 1; len(todo) > 0; batch *= 2 {
		n := min(batch, len(todo))
		failedBefore := len(errs)
		var wg sync.WaitGroup
		for _, node := range todo[:n] {
			wg.Go(func() {
				_, err := c.pods.createPod(ctx, set, newDaemonPod(set, node, hash, generation))
				if err == nil {
					return
				}
				c.expectations.created(key, 1)
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return
				}
				logger.V(2).Info("Failed to create daemon pod", "node", node, "err", err)
				fail(err)
			})
		}
		wg.Wait()
		todo = todo[n:]
		if len(errs) > failedBefore && len(todo) > 0 {
			logger.V(2).Info("Slow-start failure, skipping the remaining creates", "skipped", len(todo))
			c.expectations.created(key, len(todo))
			break
		}
	}

	var wg sync.WaitGroup
	for i, name := range p.remove {
		wg.Go(func() {
			err := c.pods.deletePod(ctx, set, name)
			if err == nil {
				return
			}
			c.expectations.deleted(key, deleteKeys[i])
			if !apierrors.IsNotFound(err) {
				logger.V(2).Info("Failed to delete daemon pod", "pod", klog.KRef(set.Namespace, name), "err", err)
				fail(err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeStatus writes the status once, when it changed. observed raises
// observedGeneration: only a sync that acted has processed the generation.
//
// The informer often still holds the set as it was before this controller's
// previous status write (the write's own watch event is on its way). Writing
// from that copy would conflict, and comparing against it would write the
// same status twice; so when the set this controller last wrote is newer
// than the cached one, that is the base. A conflict with someone else's
// write is retried once on a fresh copy.
func (c *Controller) writeStatus(ctx context.Context, set *appsv1.DaemonSet, n counts, observed bool) error {
	apply := func(s *appsv1.DaemonSetStatus) {
		if observed {
			s.ObservedGeneration = set.Generation
		}
		s.DesiredNumberScheduled = n.desired
		s.CurrentNumberScheduled = n.current
		s.NumberMisscheduled = n.misscheduled
		s.NumberReady = n.ready
		s.UpdatedNumberScheduled = n.updated
		s.NumberAvailable = n.available
		s.NumberUnavailable = n.unavailable
	}
	base := c.newestWritten(set)
	want := *base.Status.DeepCopy()
	apply(&want)
	if reflect.DeepEqual(want, base.Status) {
		return nil
	}
	toUpdate := base.DeepCopy()
	toUpdate.Status = want
	written, err := c.sets.updateStatus(ctx, toUpdate)
	if err != nil {
		fresh, getErr := c.sets.getSet(ctx, set.Namespace, set.Name)
		if getErr != nil {
			return fmt.Errorf("updating status of DaemonSet %s/%s: %w", set.Namespace, set.Name, getErr)
		}
		apply(&fresh.Status)
		if written, err = c.sets.updateStatus(ctx, fresh); err != nil {
			return fmt.Errorf("updating status of DaemonSet %s/%s: %w", set.Namespace, set.Name, err)
		}
	}
	if written != nil {
		c.writtenMu.Lock()
		c.written[set.UID] = written
		c.writtenMu.Unlock()
	}
	return nil
}

// newestWritten returns the set as this controller last wrote it when that
// is newer than cached, else cached (and forgets the older write).
func (c *Controller) newestWritten(cached *appsv1.DaemonSet) *appsv1.DaemonSet {
	c.writtenMu.Lock()
	defer c.writtenMu.Unlock()
	w := c.written[cached.UID]
	if w == nil {
		return cached
	}
	if cmp, err := resourceversion.CompareResourceVersion(w.ResourceVersion, cached.ResourceVersion); err == nil && cmp > 0 {
		return w
	}
	delete(c.written, cached.UID)
	return cached
}
