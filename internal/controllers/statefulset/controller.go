package statefulset

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller"
	"k8s.io/kubernetes/pkg/controller/history"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"

	"quartet.dev/quartet/internal/controllers"
)

// componentName is the event source, the same as upstream's controller.
const componentName = "statefulset-controller"

// cacheLagRetry is when a sync that found the caches behind its own writes
// looks again. The informer event for the write normally triggers it sooner.
const cacheLagRetry = 100 * time.Millisecond

// Controller reconciles StatefulSets.
type Controller struct {
	client kubernetes.Interface
	clock  clock.WithTicker
	queue  workqueue.TypedRateLimitingInterface[string]

	sets        appslisters.StatefulSetLister
	pods        corelisters.PodLister
	podIndex    cache.Indexer
	claims      corelisters.PersistentVolumeClaimLister
	revLister   appslisters.ControllerRevisionLister
	history     history.Interface
	cachesReady []cache.InformerSynced

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	apply       *applier
	revisions   revisionWriter
	fresh       *freshness
	memo        *lru.Cache

	// gates are the feature gates of the binary, read once.
	maxUnavailable, semanticRevisions, recreate bool

	// warned is the invalid replace-unready-after value last reported per
	// set, so that each is reported once rather than every sync.
	warnedMu sync.Mutex
	warned   map[types.NamespacedName]string
	// noticed are the keys of the notices recorded per set.
	noticed map[types.NamespacedName]map[string]bool
}

var _ controllers.Controller = (*Controller)(nil)

// New builds the controller and registers its informers (StatefulSets, Pods,
// PersistentVolumeClaims, ControllerRevisions) and indexes on cfg.Informers.
func New(cfg controllers.Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, fmt.Errorf("statefulset controller needs a client and an informer factory")
	}
	clk := controllers.RealClock(cfg.Clock)
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

	broadcaster := record.NewBroadcaster()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: componentName})
	hist := history.NewHistory(cfg.Client, revInformer.Lister(), revInformer.Informer().GetIndexer())
	c := &Controller{
		client: cfg.Client,
		clock:  clk,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset", Clock: clk}),
		sets:      setInformer.Lister(),
		pods:      podInformer.Lister(),
		podIndex:  podInformer.Informer().GetIndexer(),
		claims:    claimInformer.Lister(),
		revLister: revInformer.Lister(),
		history:   hist,
		cachesReady: []cache.InformerSynced{
			setInformer.Informer().HasSynced, podInformer.Informer().HasSynced,
			claimInformer.Informer().HasSynced, revInformer.Informer().HasSynced,
		},
		broadcaster: broadcaster,
		recorder:    recorder,
		revisions:   &historyWriter{history: hist},
		fresh: newFreshness(map[string]storeVersion{
			"statefulsets":           setInformer.Informer().GetStore(),
			"pods":                   podInformer.Informer().GetStore(),
			"persistentvolumeclaims": claimInformer.Informer().GetStore(),
		}),
		memo:              lru.New(1024),
		maxUnavailable:    utilfeature.DefaultFeatureGate.Enabled(features.MaxUnavailableStatefulSet),
		semanticRevisions: utilfeature.DefaultFeatureGate.Enabled(features.StatefulSetSemanticRevisionComparison),
		recreate:          utilfeature.DefaultFeatureGate.Enabled(features.StatefulSetRecreateStrategy),
		warned:            map[types.NamespacedName]string{},
		noticed:           map[types.NamespacedName]map[string]bool{},
	}
	writer := &clientWriter{client: cfg.Client}
	c.apply = &applier{
		pods:     writer,
		claims:   writer,
		sets:     writer,
		recorder: recorder,
		cachedPod: func(ns, name string) (*v1.Pod, error) {
			return c.pods.Pods(ns).Get(name)
		},
		cachedSet: func(ns, name string) (*appsv1.StatefulSet, error) {
			return c.sets.StatefulSets(ns).Get(name)
		},
		wrote: func(set *appsv1.StatefulSet, resource, version string) {
			c.fresh.wrote(types.NamespacedName{Namespace: set.Namespace, Name: set.Name}, set.UID, resource, version)
		},
	}

	if _, err := setInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur interface{}) { c.enqueue(cur) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podAdded,
		UpdateFunc: c.podUpdated,
		DeleteFunc: c.podDeleted,
	}); err != nil {
		return nil, err
	}
	if _, err := claimInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.claimDeleted,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run starts recording events, waits for the caches and runs workers until
// ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx)

	c.broadcaster.StartStructuredLogging(3)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()

	logger.Info("Starting quartet StatefulSet controller")
	var wg sync.WaitGroup
	defer func() {
		logger.Info("Shutting down quartet StatefulSet controller")
		c.queue.ShutDown()
		wg.Wait()
	}()
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.cachesReady...) {
		return
	}
	for range max(workers, 1) {
		wg.Go(func() { wait.UntilWithContext(ctx, c.work, time.Second) })
	}
	<-ctx.Done()
}

func (c *Controller) work(ctx context.Context) {
	for c.next(ctx) {
	}
}

// next processes one key: a failed sync is retried with rate-limited backoff,
// a successful one forgets the backoff and may ask to be looked at again.
func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	requeueAfter, err := c.sync(ctx, key)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Error syncing StatefulSet, requeuing", "key", key)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	if requeueAfter > 0 {
		c.queue.AddAfter(key, requeueAfter)
	}
	return true
}

func (c *Controller) enqueue(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

func setKey(set *appsv1.StatefulSet) string { return set.Namespace + "/" + set.Name }

// ownerOf returns the set a controller reference points to, if it still
// exists with that UID.
func (c *Controller) ownerOf(namespace string, ref *metav1.OwnerReference) *appsv1.StatefulSet {
	if ref == nil || ref.Kind != setKind.Kind {
		return nil
	}
	set, err := c.sets.StatefulSets(namespace).Get(ref.Name)
	if err != nil || set.UID != ref.UID {
		return nil
	}
	return set
}

// setsSelecting returns the sets in namespace whose selector selects
// objLabels; a set with an empty or invalid selector selects nothing.
func (c *Controller) setsSelecting(namespace string, objLabels map[string]string) []*appsv1.StatefulSet {
	if len(objLabels) == 0 {
		return nil
	}
	all, err := c.sets.StatefulSets(namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var matching []*appsv1.StatefulSet
	for _, set := range all {
		sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(objLabels)) {
			continue
		}
		matching = append(matching, set)
	}
	return matching
}

func (c *Controller) podAdded(obj interface{}) {
	pod := obj.(*v1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (a restart): treat it
		// as a deletion, not as a creation.
		c.podDeleted(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if set := c.ownerOf(pod.Namespace, ref); set != nil {
			c.queue.Add(setKey(set))
		}
		return
	}
	for _, set := range c.setsSelecting(pod.Namespace, pod.Labels) {
		c.queue.Add(setKey(set))
	}
}

func (c *Controller) podUpdated(oldObj, curObj interface{}) {
	old, cur := oldObj.(*v1.Pod), curObj.(*v1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	refChanged := !reflect.DeepEqual(oldRef, curRef)
	if refChanged && oldRef != nil {
		if set := c.ownerOf(old.Namespace, oldRef); set != nil {
			c.queue.Add(setKey(set))
		}
	}
	if curRef != nil {
		set := c.ownerOf(cur.Namespace, curRef)
		if set == nil {
			return
		}
		c.queue.Add(setKey(set))
		if set.Spec.MinReadySeconds > 0 && !isReady(old) && isReady(cur) {
			c.queue.AddAfter(setKey(set), time.Duration(set.Spec.MinReadySeconds)*time.Second)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(old.Labels, cur.Labels) {
		for _, set := range c.setsSelecting(cur.Namespace, cur.Labels) {
			c.queue.Add(setKey(set))
		}
	}
}

func (c *Controller) podDeleted(obj interface{}) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		tombstone, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tombstone.Obj.(*v1.Pod); !ok {
			return
		}
	}
	if set := c.ownerOf(pod.Namespace, metav1.GetControllerOfNoCopy(pod)); set != nil {
		c.queue.Add(setKey(set))
	}
}

// claimDeleted wakes the sets that may have been waiting for the claim to go:
// a pod whose claim still referred to its previous incarnation, or a claim
// that was being deleted when its pod was due.
func (c *Controller) claimDeleted(obj interface{}) {
	claim, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok {
		tombstone, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if claim, ok = tombstone.Obj.(*v1.PersistentVolumeClaim); !ok {
			return
		}
	}
	for _, set := range c.setsSelecting(claim.Namespace, claim.Labels) {
		c.queue.Add(setKey(set))
	}
}

// sync reconciles the set named by key once. It returns how soon the set
// wants another look, or an error to retry with backoff.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	started := c.clock.Now()
	defer func() {
		logger.V(4).Info("Finished syncing StatefulSet", "key", key, "duration", c.clock.Since(started))
	}()
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, err
	}
	nn := types.NamespacedName{Namespace: namespace, Name: name}
	cached, err := c.sets.StatefulSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		logger.V(2).Info("StatefulSet has been deleted", "key", key)
		c.fresh.forget(nn)
		c.forgetWarning(nn)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !c.fresh.caughtUp(nn) {
		logger.V(4).Info("Caches are behind this controller's writes, waiting", "statefulSet", klog.KObj(cached))
		return cacheLagRetry, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(cached.Spec.Selector)
	if err != nil {
		// The apiserver validates selectors; nothing a retry would fix.
		utilruntime.HandleErrorWithContext(ctx, err, "Invalid StatefulSet selector", "key", key)
		return 0, nil
	}
	set := cached.DeepCopy()
	now := c.clock.Now()

	canAdopt := sync.OnceValue(func() error { return c.apply.canAdopt(ctx, set) })
	if err := c.adoptRevisions(ctx, set, selector, canAdopt); err != nil {
		return 0, err
	}
	candidates, err := controller.FilterPodsByOwner(c.podIndex, &set.ObjectMeta, setKind.Kind, true)
	if err != nil {
		return 0, err
	}
	pods, err := c.apply.adoptAndRelease(ctx, set, sortOutPods(set, selector, candidates), canAdopt)
	if err != nil {
		return 0, err
	}

	revisions, err := c.history.ListControllerRevisions(set, setKind, selector)
	if err != nil {
		return 0, err
	}
	sortRevisions(revisions)
	current, update, collisionCount, err := c.settleRevisions(ctx, set, revisions)
	if err != nil {
		return 0, utilerrors.NewAggregate([]error{err, c.prune(ctx, set, pods, revisions, current, update)})
	}

	p, err := plan(planInput{
		set:            set,
		pods:           pods,
		claims:         c.claimsOf(set, pods),
		current:        current,
		update:         update,
		collisionCount: collisionCount,
		now:            now,
		maxUnavailable: c.maxUnavailable,
		recreate:       c.recreate,
	})
	if err != nil {
		return 0, utilerrors.NewAggregate([]error{err, c.prune(ctx, set, pods, revisions, current, update)})
	}
	c.warnInvalidAnnotation(set, nn, p.invalidReplaceAfter)
	c.recordNotices(set, nn, p.notices)

	rolledOut, execErr := c.apply.execute(ctx, set, p)
	var statusErr error
	if p.status != nil {
		final := finishStatus(set, *p.status, rolledOut)
		statusErr = c.apply.writeStatus(ctx, set, &final)
		logger.V(4).Info("StatefulSet status", "statefulSet", klog.KObj(set),
			"replicas", final.Replicas, "readyReplicas", final.ReadyReplicas,
			"currentReplicas", final.CurrentReplicas, "updatedReplicas", final.UpdatedReplicas,
			"currentRevision", final.CurrentRevision, "updateRevision", final.UpdateRevision)
	}
	pruneErr := c.prune(ctx, set, pods, revisions, current, update)
	if err := utilerrors.NewAggregate([]error{execErr, statusErr, p.err, pruneErr}); err != nil {
		return 0, err
	}
	return p.requeueAfter, nil
}

// adoptRevisions takes ownership of orphaned revisions that set's selector
// matches.
func (c *Controller) adoptRevisions(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector, canAdopt func() error) error {
	revisions, err := c.history.ListControllerRevisions(set, setKind, selector)
	if err != nil {
		return err
	}
	orphans := orphanRevisions(revisions)
	if len(orphans) == 0 {
		return nil
	}
	if err := canAdopt(); err != nil {
		return fmt.Errorf("can't adopt ControllerRevisions: %w", err)
	}
	for _, rev := range orphans {
		if _, err := c.revisions.AdoptRevision(ctx, set, rev); err != nil {
			return err
		}
	}
	return nil
}

// settleRevisions makes sure the set's update revision exists, creating it or
// renumbering an older equal one, and returns the current and update
// revisions and the collision count.
func (c *Controller) settleRevisions(ctx context.Context, set *appsv1.StatefulSet, revisions []*appsv1.ControllerRevision) (current, update *appsv1.ControllerRevision, collisionCount int32, err error) {
	choice, err := chooseRevisions(set, revisions, c.semanticRevisions, c.memo)
	if err != nil {
		return nil, nil, 0, err
	}
	collisionCount = choice.collisionCount
	switch {
	case choice.update != nil:
		update = choice.update
	case choice.renumber != nil:
		update, err = c.revisions.RenumberRevision(ctx, choice.renumber, choice.renumberTo)
	default:
		update, err = c.revisions.CreateRevision(ctx, set, choice.create, &collisionCount)
	}
	if err != nil {
		return nil, nil, collisionCount, err
	}
	current = findRevision(revisions, set.Status.CurrentRevision)
	if current == nil {
		current = update
	}
	return current, update, collisionCount, nil
}

// prune deletes the revisions beyond the set's revisionHistoryLimit.
func (c *Controller) prune(ctx context.Context, set *appsv1.StatefulSet, pods []*v1.Pod, revisions []*appsv1.ControllerRevision, current, update *appsv1.ControllerRevision) error {
	var live []string
	for _, rev := range []*appsv1.ControllerRevision{current, update} {
		if rev != nil {
			live = append(live, rev.Name)
		}
	}
	for _, rev := range revisionsToPrune(set, pods, revisions, live...) {
		if err := c.revisions.DeleteRevision(ctx, rev); err != nil {
			return err
		}
	}
	return nil
}

// claimsOf reads from the cache the claims the set's templates name for its
// wanted ordinals and for the pods it has.
func (c *Controller) claimsOf(set *appsv1.StatefulSet, pods []*v1.Pod) map[string]*v1.PersistentVolumeClaim {
	claims := map[string]*v1.PersistentVolumeClaim{}
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return claims
	}
	lister := c.claims.PersistentVolumeClaims(set.Namespace)
	look := func(ordinal int) {
		for _, tmpl := range set.Spec.VolumeClaimTemplates {
			name := claimNameFor(set, tmpl.Name, ordinal)
			if _, seen := claims[name]; seen {
				continue
			}
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
		if ord := ordinalOf(pod); ord >= 0 {
			look(ord)
		}
	}
	return claims
}

// warnInvalidAnnotation records a warning the first time a set carries a
// given unparsable replace-unready-after value.
func (c *Controller) warnInvalidAnnotation(set *appsv1.StatefulSet, nn types.NamespacedName, value string) {
	c.warnedMu.Lock()
	defer c.warnedMu.Unlock()
	if value == "" {
		delete(c.warned, nn)
		return
	}
	if c.warned[nn] == value {
		return
	}
	c.warned[nn] = value
	c.recorder.Eventf(set, v1.EventTypeWarning, reasonInvalidReplaceUnreadyAfter,
		"annotation %s=%q is not a positive duration such as \"2m\"; unready pods are not replaced", ReplaceUnreadyAfterAnnotation, value)
}

// recordNotices records each notice the first time its key comes up for the
// set.
func (c *Controller) recordNotices(set *appsv1.StatefulSet, nn types.NamespacedName, notices []notice) {
	c.warnedMu.Lock()
	defer c.warnedMu.Unlock()
	for _, n := range notices {
		if c.noticed[nn] == nil {
			c.noticed[nn] = map[string]bool{}
		}
		if !c.noticed[nn][n.key] {
			c.noticed[nn][n.key] = true
			c.recorder.Event(set, n.eventType, n.reason, n.message)
		}
	}
}

func (c *Controller) forgetWarning(nn types.NamespacedName) {
	c.warnedMu.Lock()
	defer c.warnedMu.Unlock()
	delete(c.warned, nn)
	delete(c.noticed, nn)
}
