package statefulset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller"
	"k8s.io/kubernetes/pkg/controller/history"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/utils/lru"

	"quartet.dev/quartet/internal/controllers/kit"
)

// componentName is the event source, the same as upstream's controller.
const componentName = "statefulset-controller"

// Controller reconciles StatefulSets.
type Controller struct {
	*kit.Base
	queue *kit.Queue[string]

	sets     appslisters.StatefulSetLister
	pods     corelisters.PodLister
	podIndex cache.Indexer
	claims   corelisters.PersistentVolumeClaimLister
	history  history.Interface
	owners   *kit.Owners[*appsv1.StatefulSet]
	// podEvents routes the pod informer's events to the sets.
	podEvents *kit.Router[*appsv1.StatefulSet, *v1.Pod]

	apply *applier
	memo  *lru.Cache
	// once reports lasting conditions (an invalid annotation, a replacement
	// held back) once per set.
	once kit.Once

	// gates are the feature gates of the binary, read once.
	maxUnavailable, semanticRevisions, recreate bool
}

// New builds the controller and registers its informers (StatefulSets, Pods,
// PersistentVolumeClaims, ControllerRevisions) and indexes on cfg.Informers.
func New(cfg kit.Config) (*Controller, error) {
	base, err := kit.NewBase(cfg, "statefulset", componentName)
	if err != nil {
		return nil, err
	}
	setInformer := cfg.Informers.Apps().V1().StatefulSets()
	podInformer := cfg.Informers.Core().V1().Pods()
	claimInformer := cfg.Informers.Core().V1().PersistentVolumeClaims()
	revInformer := cfg.Informers.Apps().V1().ControllerRevisions()
	if err := controller.AddPodControllerIndexer(podInformer.Informer()); err != nil {
		return nil, fmt.Errorf("adding pod controller index: %w", err)
	}
	if err := history.AddControllerRevisionControllerIndexer(revInformer.Informer()); err != nil {
		return nil, fmt.Errorf("adding revision controller index: %w", err)
	}
	c := &Controller{
		Base:              base,
		sets:              setInformer.Lister(),
		pods:              podInformer.Lister(),
		podIndex:          podInformer.Informer().GetIndexer(),
		claims:            claimInformer.Lister(),
		history:           history.NewHistory(cfg.Client, revInformer.Lister(), revInformer.Informer().GetIndexer()),
		owners:            kit.NewOwners(setKind.Kind, setInformer.Informer().GetIndexer(), func(s *appsv1.StatefulSet) *metav1.LabelSelector { return s.Spec.Selector }),
		memo:              lru.New(1024),
		maxUnavailable:    utilfeature.DefaultFeatureGate.Enabled(features.MaxUnavailableStatefulSet),
		semanticRevisions: utilfeature.DefaultFeatureGate.Enabled(features.StatefulSetSemanticRevisionComparison),
		recreate:          utilfeature.DefaultFeatureGate.Enabled(features.StatefulSetRecreateStrategy),
	}
	c.queue = kit.NewQueue(base, "statefulset", nil, c.sync)
	c.apply = &applier{
		client: cfg.Client, recorder: base.Recorder,
		cachedPod: func(ns, name string) (*v1.Pod, error) { return c.pods.Pods(ns).Get(name) },
		cachedSet: func(ns, name string) (*appsv1.StatefulSet, error) { return c.sets.StatefulSets(ns).Get(name) },
		writes: kit.NewOwnWrites(base.Clock, map[string]kit.Store{
			"statefulsets":           setInformer.Informer().GetStore(),
			"pods":                   podInformer.Informer().GetStore(),
			"persistentvolumeclaims": claimInformer.Informer().GetStore(),
		}),
	}
	c.podEvents = &kit.Router[*appsv1.StatefulSet, *v1.Pod]{Owners: c.owners, Route: c.podChanged}
	// Besides a set's own events and its pods' (through the router), a
	// claim's: its deletion may free a pod that waited for it (a claim still
	// owned by an earlier pod, or being deleted).
	base.WaitFor(revInformer.Informer().HasSynced)
	return c, errors.Join(
		base.Watch(setInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, cur any) { c.enqueue(cur) },
			DeleteFunc: c.setDeleted,
		}),
		base.Watch(podInformer.Informer(), c.podEvents),
		base.Watch(claimInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.claimWritten,
			UpdateFunc: func(_, cur any) { c.claimWritten(cur) },
			DeleteFunc: c.claimDeleted,
		}))
}

func (c *Controller) claimDeleted(obj any) {
	if claim, ok := kit.Unwrap[*v1.PersistentVolumeClaim](obj); ok {
		for _, set := range c.owners.Selecting(claim.Namespace, claim.Labels) {
			c.enqueue(set)
		}
	}
}

// claimWritten syncs a set whose sync waits for its own writes when this
// claim's event was the last of them to reach the caches. Every set of the
// namespace is asked, not only those whose selector matches the claim's
// labels: a claim carries only the selector's matchLabels, none for a set
// selecting by matchExpressions alone.
func (c *Controller) claimWritten(obj any) {
	claim, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok {
		return
	}
	sets, err := c.sets.StatefulSets(claim.Namespace).List(labels.Everything())
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	for _, set := range sets {
		if c.apply.writes.CaughtUp(set.UID) {
			c.enqueue(set)
		}
	}
}

func (c *Controller) enqueue(obj any) {
	if set, ok := kit.Unwrap[*appsv1.StatefulSet](obj); ok {
		c.queue.Add(cache.MetaObjectToName(set).String())
	}
}

// setDeleted drops what is remembered of a deleted set.
func (c *Controller) setDeleted(obj any) {
	if set, ok := kit.Unwrap[*appsv1.StatefulSet](obj); ok {
		c.apply.writes.Forget(set.UID)
		c.once.Forget(set.UID)
	}
	c.enqueue(obj)
}

// podChanged syncs the set a pod event concerns, and once more
// minReadySeconds after a pod of its becomes Ready.
func (c *Controller) podChanged(set *appsv1.StatefulSet, ev kit.ChildEvent[*v1.Pod]) {
	c.enqueue(set)
	if ev.Op == kit.Updated && !ev.Released && set.Spec.MinReadySeconds > 0 && !kit.IsReady(ev.Old) && kit.IsReady(ev.Cur) {
		c.queue.AddAfter(set.Namespace+"/"+set.Name, time.Duration(set.Spec.MinReadySeconds)*time.Second)
	}
}

// sync reconciles the set named by key once. It returns how soon the set
// wants another look, or an error to retry with backoff.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	started := c.Clock.Now()
	defer func() {
		logger.V(4).Info("Finished syncing StatefulSet", "key", key, "duration", c.Clock.Since(started))
	}()
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, err
	}
	cached, err := c.sets.StatefulSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		logger.V(2).Info("StatefulSet has been deleted", "key", key)
		forgetSet(namespace, name)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !c.apply.writes.Seen(cached.UID) {
		recordStaleSkip(c.apply.writes, cached.UID)
		// The event of the write brings the set back: a pod's or the set's
		// own event syncs it, a claim's once every write is seen.
		logger.V(4).Info("Caches are behind this controller's writes, waiting for their events", "statefulSet", klog.KObj(cached))
		return kit.OwnWritesTimeout, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(cached.Spec.Selector)
	if err != nil {
		// The apiserver validates selectors; nothing a retry would fix.
		utilruntime.HandleErrorWithContext(ctx, err, "Invalid StatefulSet selector", "key", key)
		return 0, nil
	}
	return c.reconcile(ctx, cached.DeepCopy(), selector)
}

// reconcile is one sync of set: ownership, revisions, the decision, its
// writes, the status and the revision history.
func (c *Controller) reconcile(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) (time.Duration, error) {
	canAdopt := kit.CanAdopt(ctx, set, func(ctx context.Context) (metav1.Object, error) {
		return c.Client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	})
	revisions, err := c.history.ListControllerRevisions(set, setKind, selector)
	if err != nil {
		return 0, err
	}
	if err := c.adoptRevisions(set, revisions, canAdopt); err != nil {
		return 0, err
	}
	candidates, err := controller.FilterPodsByOwner(c.podIndex, &set.ObjectMeta, setKind.Kind, true)
	if err != nil {
		return 0, err
	}
	// The set's pods are those it controls that still match and the orphans
	// it adopts; those it controls that no longer match are released.
	pods, err := kit.Claim(ctx, kit.SortClaims(set, candidates, matchesSet(set, selector)), set, setKind, canAdopt, c.apply.patchPod(set))
	if err != nil {
		return 0, err
	}
	history.SortControllerRevisions(revisions)
	in := observed{set: set, pods: pods, now: c.Clock.Now(), maxUnavailable: c.maxUnavailable, recreate: c.recreate}
	in.current, in.update, in.collisionCount, err = c.settleRevisions(set, revisions)
	var d *decision
	if err == nil {
		in.claims = c.claimsOf(set, pods)
		d, err = decide(in)
	}
	if err != nil {
		return 0, errors.Join(err, c.prune(set, pods, revisions, in.current, in.update))
	}
	c.announce(set, d)
	rolledOut, applyErr := c.apply.apply(ctx, set, d)
	var statusErr error
	if d.status != nil {
		final := finishStatus(set, *d.status, rolledOut)
		statusErr = c.apply.writeStatus(ctx, set, &final)
		recordStatus(set, &final, c.maxUnavailable)
		klog.FromContext(ctx).V(4).Info("StatefulSet status", "statefulSet", klog.KObj(set),
			"replicas", final.Replicas, "readyReplicas", final.ReadyReplicas,
			"currentReplicas", final.CurrentReplicas, "updatedReplicas", final.UpdatedReplicas,
			"currentRevision", final.CurrentRevision, "updateRevision", final.UpdateRevision)
	}
	pruneErr := c.prune(set, pods, revisions, in.current, in.update)
	if err := errors.Join(applyErr, statusErr, d.err, pruneErr); err != nil {
		return 0, err
	}
	return d.requeueAfter, nil
}

// adoptRevisions takes ownership of the orphans among revisions, which
// set's selector matches, and puts the adopted copies in their place.
func (c *Controller) adoptRevisions(set *appsv1.StatefulSet, revisions []*appsv1.ControllerRevision, canAdopt func() error) (err error) {
	for i, rev := range revisions {
		if metav1.GetControllerOfNoCopy(rev) != nil {
			continue
		}
		if err := canAdopt(); err != nil {
			return fmt.Errorf("can't adopt ControllerRevisions: %w", err)
		}
		if revisions[i], err = c.history.AdoptControllerRevision(set, setKind, rev); err != nil {
			return err
		}
	}
	return nil
}

// settleRevisions makes sure the set's update revision exists, creating it or
// renumbering an older equal one, and returns the current and update
// revisions and the collision count.
func (c *Controller) settleRevisions(set *appsv1.StatefulSet, revisions []*appsv1.ControllerRevision) (current, update *appsv1.ControllerRevision, collisionCount int32, err error) {
	choice, err := chooseRevisions(set, revisions, c.semanticRevisions, c.memo)
	if err != nil {
		return nil, nil, 0, err
	}
	collisionCount = choice.collisionCount
	switch {
	case choice.update != nil:
		update = choice.update
	case choice.renumber != nil:
		update, err = c.history.UpdateControllerRevision(choice.renumber, choice.renumberTo)
	default:
		update, err = c.history.CreateControllerRevision(set, choice.create, &collisionCount)
	}
	if err != nil {
		return nil, nil, collisionCount, err
	}
	current = update
	if i := slices.IndexFunc(revisions, func(r *appsv1.ControllerRevision) bool { return r.Name == set.Status.CurrentRevision }); i >= 0 {
		current = revisions[i]
	}
	return current, update, collisionCount, nil
}

// prune deletes the revisions beyond the set's revisionHistoryLimit.
func (c *Controller) prune(set *appsv1.StatefulSet, pods []*v1.Pod, revisions []*appsv1.ControllerRevision, current, update *appsv1.ControllerRevision) error {
	for _, rev := range revisionsToPrune(set, pods, revisions, current, update) {
		if err := c.history.DeleteControllerRevision(rev); err != nil {
			return err
		}
	}
	return nil
}

// claimsOf reads from the cache the claims the set's templates name for its
// wanted ordinals and for its pods of other ordinals.
func (c *Controller) claimsOf(set *appsv1.StatefulSet, pods []*v1.Pod) map[string]*v1.PersistentVolumeClaim {
	claims := map[string]*v1.PersistentVolumeClaim{}
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return claims
	}
	lister := c.claims.PersistentVolumeClaims(set.Namespace)
	look := func(ordinal int) {
		for _, tmpl := range set.Spec.VolumeClaimTemplates {
			name := claimNameFor(set, tmpl.Name, ordinal)
			if claim, err := lister.Get(name); err == nil {
				claims[name] = claim
			}
		}
	}
	start := firstOrdinal(set)
	for ord := start; ord < start+replicaCount(set); ord++ {
		look(ord)
	}
	for _, pod := range pods {
		if ord := ordinalOf(pod); ord >= 0 && !inOrdinalRange(set, pod) {
			look(ord)
		}
	}
	return claims
}

// announce records, once each, the decision's lasting conditions: an
// unparsable replace-unready-after value (again if it changes, and if it
// comes back after a valid one), and its notices.
func (c *Controller) announce(set *appsv1.StatefulSet, d *decision) {
	if d.invalidReplaceAfter == "" {
		c.once.Clear(set.UID, ReplaceUnreadyAfterAnnotation)
	} else if c.once.First(set.UID, ReplaceUnreadyAfterAnnotation, d.invalidReplaceAfter) {
		c.Recorder.Eventf(set, v1.EventTypeWarning, reasonInvalidReplaceUnreadyAfter,
			"annotation %s=%q is not a positive duration such as \"2m\"; unready pods are not replaced", ReplaceUnreadyAfterAnnotation, d.invalidReplaceAfter)
	}
	for _, n := range d.notices {
		if c.once.First(set.UID, n.key, "") {
			kit.Record(c.Recorder, set, n.Event)
		}
	}
}
