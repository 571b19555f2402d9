package daemonset

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/controllers"
)

// controllerKind is the kind in the controller references the set writes.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// eventComponent is the source of the Events this controller records, the
// same as Kubernetes' DaemonSet controller's.
const eventComponent = "daemonset-controller"

// Pod informer indexes this controller adds. Only pods controlled by a
// DaemonSet, and orphans, are indexed.
const (
	// ownerIndex maps a DaemonSet's UID to its pods, and "orphan/<namespace>"
	// to the pods of that namespace that have no controller.
	ownerIndex = "quartet.dev/daemonset-owner"
	// nodeIndex maps a node name to the DaemonSet pods that target it.
	nodeIndex = "quartet.dev/daemonset-node"
)

var _ controllers.Controller = (*Controller)(nil)

// Controller is quartet's DaemonSet controller.
type Controller struct {
	clock       clock.WithTicker
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	client      kubernetes.Interface

	pods      podControl
	revisions revisionControl
	sets      setControl

	setLister      appslisters.DaemonSetLister
	revisionLister appslisters.ControllerRevisionLister
	nodeLister     corelisters.NodeLister
	podIndexer     cache.Indexer
	synced         []cache.InformerSynced

	queue        workqueue.TypedRateLimitingInterface[string]
	expectations *expectations
	// backoff spaces out the deletion of failed pods, per node.
	backoff *flowcontrol.Backoff

	// announced remembers the once-only events already recorded, per set UID.
	announcedMu sync.Mutex
	announced   map[string]map[string]bool

	// written is each set as returned by this controller's last status
	// write, until the informer catches up with it.
	writtenMu sync.Mutex
	written   map[types.UID]*appsv1.DaemonSet
}

// New builds the controller and registers its informers (DaemonSets, pods,
// nodes, ControllerRevisions) on cfg.Informers.
func New(cfg controllers.Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, fmt.Errorf("daemonset controller: Config.Client and Config.Informers are required")
	}
	clk := controllers.RealClock(cfg.Clock)
	broadcaster := record.NewBroadcaster()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: eventComponent})
	c := &Controller{
		clock:        clk,
		broadcaster:  broadcaster,
		recorder:     recorder,
		client:       cfg.Client,
		pods:         &realPodControl{client: cfg.Client, recorder: recorder},
		revisions:    &realRevisionControl{client: cfg.Client},
		sets:         &realSetControl{client: cfg.Client},
		expectations: newExpectations(clk),
		backoff:      flowcontrol.NewFakeBackOff(failedPodBackoffInitial, failedPodBackoffMax, clk),
		announced:    map[string]map[string]bool{},
		written:      map[types.UID]*appsv1.DaemonSet{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset", Clock: clk},
		),
	}

	setInformer := cfg.Informers.Apps().V1().DaemonSets()
	revisionInformer := cfg.Informers.Apps().V1().ControllerRevisions()
	podInformer := cfg.Informers.Core().V1().Pods()
	nodeInformer := cfg.Informers.Core().V1().Nodes()

	if err := podInformer.Informer().AddIndexers(cache.Indexers{
		ownerIndex: indexByOwner,
		nodeIndex:  indexByNode,
	}); err != nil {
		return nil, fmt.Errorf("daemonset controller: adding pod indexes: %w", err)
	}

	handlers := []struct {
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		{setInformer.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addSet, UpdateFunc: c.updateSet, DeleteFunc: c.deleteSet}},
		{revisionInformer.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addRevision, UpdateFunc: c.updateRevision, DeleteFunc: c.deleteRevision}},
		{podInformer.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addPod, UpdateFunc: c.updatePod, DeleteFunc: c.deletePod}},
		{nodeInformer.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addNode, UpdateFunc: c.updateNode, DeleteFunc: c.deleteNode}},
	}
	for _, h := range handlers {
		reg, err := h.informer.AddEventHandler(h.handler)
		if err != nil {
			return nil, fmt.Errorf("daemonset controller: adding event handler: %w", err)
		}
		c.synced = append(c.synced, reg.HasSynced)
	}
	c.setLister = setInformer.Lister()
	c.revisionLister = revisionInformer.Lister()
	c.nodeLister = nodeInformer.Lister()
	c.podIndexer = podInformer.Informer().GetIndexer()
	return c, nil
}

// Run starts the event recorder, waits for the caches and runs workers
// until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx)

	c.broadcaster.StartStructuredLogging(3)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()

	logger.Info("Starting quartet daemonset controller")
	var wg sync.WaitGroup
	defer func() {
		logger.Info("Shutting down quartet daemonset controller")
		c.queue.ShutDown()
		wg.Wait()
	}()
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return
	}
	for range max(workers, 1) {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runWorker, time.Second) })
	}
	wg.Go(func() { wait.UntilWithContext(ctx, func(context.Context) { c.backoff.GC() }, time.Minute) })
	<-ctx.Done()
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	requeueAfter, err := c.sync(ctx, key)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Syncing DaemonSet failed", "daemonset", key)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	if requeueAfter > 0 {
		c.queue.AddAfter(key, requeueAfter)
	}
	return true
}

// indexByOwner indexes a pod under its DaemonSet's UID, or as an orphan of
// its namespace.
func indexByOwner(obj interface{}) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	switch {
	case ref == nil:
		return []string{"orphan/" + pod.Namespace}, nil
	case ref.Kind == controllerKind.Kind:
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// indexByNode indexes a DaemonSet pod under the node it targets.
func indexByNode(obj interface{}) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil, nil
	}
	node, err := targetNodeName(pod)
	if err != nil {
		return nil, nil
	}
	return []string{node}, nil
}

func (c *Controller) enqueue(set *appsv1.DaemonSet) {
	c.queue.Add(cache.MetaObjectToName(set).String())
}

// resolve returns the set a controller reference points to, or nil.
func (c *Controller) resolve(namespace string, ref *metav1.OwnerReference) *appsv1.DaemonSet {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	set, err := c.setLister.DaemonSets(namespace).Get(ref.Name)
	if err != nil || set.UID != ref.UID {
		return nil
	}
	return set
}

// selecting returns the sets in namespace whose selector matches objLabels;
// they are the candidates to adopt an orphan.
func (c *Controller) selecting(namespace string, objLabels map[string]string) []*appsv1.DaemonSet {
	sets, err := c.setLister.DaemonSets(namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.DaemonSet
	for _, s := range sets {
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(objLabels)) {
			out = append(out, s)
		}
	}
	return out
}

func (c *Controller) addSet(obj interface{}) {
	if set, ok := obj.(*appsv1.DaemonSet); ok {
		c.enqueue(set)
	}
}

func (c *Controller) updateSet(oldObj, newObj interface{}) {
	old, ok1 := oldObj.(*appsv1.DaemonSet)
	cur, ok2 := newObj.(*appsv1.DaemonSet)
	if !ok1 || !ok2 {
		return
	}
	if old.UID != cur.UID {
		// Deleted and re-created between two events.
		c.forgetSet(old)
	}
	c.enqueue(cur)
}

func (c *Controller) deleteSet(obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	set, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return
	}
	c.forgetSet(set)
	c.enqueue(set)
}

func (c *Controller) forgetSet(set *appsv1.DaemonSet) {
	c.expectations.forget(cache.MetaObjectToName(set).String())
	c.announcedMu.Lock()
	delete(c.announced, string(set.UID))
	c.announcedMu.Unlock()
	c.writtenMu.Lock()
	delete(c.written, set.UID)
	c.writtenMu.Unlock()
}

func (c *Controller) addPod(obj interface{}) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already going away (after a restart).
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if set := c.resolve(pod.Namespace, ref); set != nil {
			c.expectations.created(cache.MetaObjectToName(set).String(), 1)
			c.enqueue(set)
		}
		return
	}
	for _, set := range c.selecting(pod.Namespace, pod.Labels) {
		c.enqueue(set)
	}
}

func (c *Controller) updatePod(oldObj, newObj interface{}) {
	old, ok1 := oldObj.(*corev1.Pod)
	cur, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if cur.DeletionTimestamp != nil {
		// A graceful delete: act now rather than when the kubelet is done.
		c.deletePod(cur)
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	refChanged := !reflect.DeepEqual(oldRef, curRef)
	if refChanged && oldRef != nil {
		if set := c.resolve(old.Namespace, oldRef); set != nil {
			c.enqueue(set)
		}
	}
	if curRef != nil {
		if set := c.resolve(cur.Namespace, curRef); set != nil {
			c.enqueue(set)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(old.Labels, cur.Labels) {
		for _, set := range c.selecting(cur.Namespace, cur.Labels) {
			c.enqueue(set)
		}
	}
}

func (c *Controller) deletePod(obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	set := c.resolve(pod.Namespace, metav1.GetControllerOfNoCopy(pod))
	if set == nil {
		return
	}
	c.expectations.deleted(cache.MetaObjectToName(set).String(), cache.MetaObjectToName(pod).String())
	c.enqueue(set)
}

func (c *Controller) addRevision(obj interface{}) {
	rev, ok := obj.(*appsv1.ControllerRevision)
	if !ok {
		return
	}
	if rev.DeletionTimestamp != nil {
		c.deleteRevision(rev)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rev); ref != nil {
		// Our own writes need no sync; a foreign owner is not ours.
		return
	}
	for _, set := range c.selecting(rev.Namespace, rev.Labels) {
		c.enqueue(set)
	}
}

func (c *Controller) updateRevision(oldObj, newObj interface{}) {
	old, ok1 := oldObj.(*appsv1.ControllerRevision)
	cur, ok2 := newObj.(*appsv1.ControllerRevision)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	refChanged := !reflect.DeepEqual(oldRef, curRef)
	if refChanged && oldRef != nil {
		if set := c.resolve(old.Namespace, oldRef); set != nil {
			c.enqueue(set)
		}
	}
	if curRef != nil {
		if set := c.resolve(cur.Namespace, curRef); set != nil {
			c.enqueue(set)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(old.Labels, cur.Labels) {
		for _, set := range c.selecting(cur.Namespace, cur.Labels) {
			c.enqueue(set)
		}
	}
}

func (c *Controller) deleteRevision(obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rev, ok := obj.(*appsv1.ControllerRevision)
	if !ok {
		return
	}
	if set := c.resolve(rev.Namespace, metav1.GetControllerOfNoCopy(rev)); set != nil {
		c.enqueue(set)
	}
}

// daemonPodsOn returns, by set UID, how many DaemonSet pods target node.
func (c *Controller) daemonPodsOn(node string) map[string]int {
	objs, err := c.podIndexer.ByIndex(nodeIndex, node)
	if err != nil || len(objs) == 0 {
		return nil
	}
	out := make(map[string]int, len(objs))
	for _, o := range objs {
		if ref := metav1.GetControllerOfNoCopy(o.(*corev1.Pod)); ref != nil {
			out[string(ref.UID)]++
		}
	}
	return out
}

// addNode enqueues, straight from the event, every set that wants a pod on
// the new node: the time from a node joining to its daemon pods existing is
// this controller's part of node start-up.
func (c *Controller) addNode(obj interface{}) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	c.enqueueForNode(nil, node)
}

// updateNode looks only at labels and taints, the node fields a set's
// placement depends on.
func (c *Controller) updateNode(oldObj, newObj interface{}) {
	old, ok1 := oldObj.(*corev1.Node)
	cur, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	if equality.Semantic.DeepEqual(old.Labels, cur.Labels) && equality.Semantic.DeepEqual(old.Spec.Taints, cur.Spec.Taints) {
		return
	}
	c.enqueueForNode(old, cur)
}

// deleteNode enqueues the sets that counted the node, so that the desired
// number drops at once; their pods there are left to the pod garbage
// collector, as in Kubernetes.
func (c *Controller) deleteNode(obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	c.enqueueForNode(node, nil)
}

// enqueueForNode enqueues the sets whose decision or status for the node
// changes between old and cur (nil: the node did not exist / no longer
// exists).
func (c *Controller) enqueueForNode(old, cur *corev1.Node) {
	sets, err := c.setLister.List(labels.Everything())
	if err != nil || len(sets) == 0 {
		return
	}
	name := ""
	if cur != nil {
		name = cur.Name
	} else {
		name = old.Name
	}
	podsOn := c.daemonPodsOn(name)
	logger := klog.Background()
	for _, set := range sets {
		checker := newFitChecker(logger, set)
		var before, after nodeFit
		if old != nil {
			before = checker.fit(old)
		}
		if cur != nil {
			after = checker.fit(cur)
		}
		has := podsOn[string(set.UID)] > 0
		switch {
		case before != after,
			after.shouldRun && !has,
			!after.shouldContinueRunning && has,
			has && set.Status.NumberMisscheduled > 0:
			c.enqueue(set)
		}
	}
}
