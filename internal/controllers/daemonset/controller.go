package daemonset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller"

	"quartet.dev/quartet/internal/controllers/kit"
)

// controllerKind is the kind in the controller references the set writes.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// AnnotationRolloutNodeSelector opts a DaemonSet into quartet's canary by
// node: its value is a label selector, and a RollingUpdate replaces pods only
// on nodes that match it until the annotation is removed.
const AnnotationRolloutNodeSelector = "quartet.dev/rollout-node-selector"

// nodeIndex indexes DaemonSet pods by target node and set (nodeKey).
const nodeIndex = "quartet.dev/daemonset-node"

// Controller is quartet's DaemonSet controller.
type Controller struct {
	*kit.Base
	queue *kit.Queue[string]
	apply *applier

	sets           cache.Store
	revisionLister appslisters.ControllerRevisionLister
	nodeLister     corelisters.NodeLister
	podIndexer     cache.Indexer
	// podEvents routes the pod informer's events to the sets.
	podEvents *kit.Router[*appsv1.DaemonSet, *corev1.Pod]

	// backoff spaces out the deletion of failed pods, per node.
	backoff *flowcontrol.Backoff
	// once records the once-only events (an invalid canary selector, a
	// rollout held by the canary) per set.
	once kit.Once
}

// New builds the controller and registers its informers (DaemonSets, pods,
// nodes, ControllerRevisions) on cfg.Informers.
func New(cfg kit.Config) (*Controller, error) {
	base, err := kit.NewBase(cfg, "daemonset", "daemonset-controller") // Kubernetes' event source
	if err != nil {
		return nil, err
	}
	setInformer := cfg.Informers.Apps().V1().DaemonSets()
	revisionInformer := cfg.Informers.Apps().V1().ControllerRevisions()
	podInformer := cfg.Informers.Core().V1().Pods()
	nodeInformer := cfg.Informers.Core().V1().Nodes()
	if err := errors.Join(controller.AddPodControllerIndexer(podInformer.Informer()),
		podInformer.Informer().AddIndexers(cache.Indexers{nodeIndex: indexByNode})); err != nil {
		return nil, fmt.Errorf("daemonset controller: adding pod indexes: %w", err)
	}
	c := &Controller{
		Base: base,
		apply: &applier{
			client: cfg.Client,
			pods:   &kit.ClientPodWriter{Client: cfg.Client, Recorder: base.Recorder},
			writes: kit.NewOwnWrites(base.Clock, map[string]kit.Store{
				"pods":       podInformer.Informer().GetStore(),
				"daemonsets": setInformer.Informer().GetStore(),
			}),
		},
		sets:           setInformer.Informer().GetStore(),
		revisionLister: revisionInformer.Lister(),
		nodeLister:     nodeInformer.Lister(),
		podIndexer:     podInformer.Informer().GetIndexer(),
		backoff:        flowcontrol.NewFakeBackOff(failedPodBackoffInitial, failedPodBackoffMax, base.Clock),
	}
	c.queue = kit.NewQueue(base, "daemonset", nil, c.sync)
	base.Every(time.Minute, func(context.Context) { c.backoff.GC() })
	owners := kit.NewOwners(controllerKind.Kind, setInformer.Informer().GetIndexer(), func(s *appsv1.DaemonSet) *metav1.LabelSelector { return s.Spec.Selector })
	c.podEvents = &kit.Router[*appsv1.DaemonSet, *corev1.Pod]{Owners: owners, Route: func(set *appsv1.DaemonSet, _ kit.ChildEvent[*corev1.Pod]) { c.enqueue(set) }}
	return c, errors.Join(
		base.Watch(setInformer.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.enqueue, UpdateFunc: c.updateSet, DeleteFunc: c.deleteSet}),
		base.Watch(revisionInformer.Informer(), &kit.Router[*appsv1.DaemonSet, *appsv1.ControllerRevision]{Owners: owners, Route: c.revisionChanged}),
		base.Watch(podInformer.Informer(), c.podEvents),
		base.Watch(nodeInformer.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addNode, UpdateFunc: c.updateNode, DeleteFunc: c.deleteNode}))
}

// indexByNode is nodeIndex's function.
func indexByNode(obj any) ([]string, error) {
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
	return []string{nodeKey(node, ref.UID)}, nil
}

// nodeKey is nodeIndex's key for the pods of set on node.
func nodeKey(node string, set types.UID) string { return node + "/" + string(set) }

func (c *Controller) enqueue(obj any) {
	if set, ok := kit.Unwrap[*appsv1.DaemonSet](obj); ok {
		c.queue.Add(cache.MetaObjectToName(set).String())
	}
}

func (c *Controller) updateSet(oldObj, newObj any) {
	old, _ := oldObj.(*appsv1.DaemonSet)
	if cur, ok := newObj.(*appsv1.DaemonSet); ok && old != nil && old.UID != cur.UID {
		// Deleted and re-created between two events.
		c.forgetSet(old)
	}
	c.enqueue(newObj)
}

func (c *Controller) deleteSet(obj any) {
	if set, ok := kit.Unwrap[*appsv1.DaemonSet](obj); ok {
		c.forgetSet(set)
		c.enqueue(set)
	}
}

func (c *Controller) forgetSet(set *appsv1.DaemonSet) {
	c.apply.writes.Forget(set.UID)
	c.once.Forget(set.UID)
}

// revisionChanged syncs the set a revision event concerns, except for the
// creation of a revision it owns: that is the set's own write.
func (c *Controller) revisionChanged(set *appsv1.DaemonSet, ev kit.ChildEvent[*appsv1.ControllerRevision]) {
	if ev.Op == kit.Added && !ev.Orphan && ev.Cur.DeletionTimestamp == nil {
		return
	}
	c.enqueue(set)
}

// addNode enqueues, straight from the event, every set that wants a pod on
// the new node: the time from a node joining to its daemon pods existing is
// this controller's part of node start-up.
func (c *Controller) addNode(obj any) {
	if node, ok := obj.(*corev1.Node); ok {
		c.enqueueForNode(nil, node)
	}
}

// updateNode looks only at labels and taints, the node fields a set's
// placement depends on.
func (c *Controller) updateNode(oldObj, newObj any) {
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
func (c *Controller) deleteNode(obj any) {
	if node, ok := kit.Unwrap[*corev1.Node](obj); ok {
		c.enqueueForNode(node, nil)
	}
}

// enqueueForNode enqueues the sets whose decision or status for the node
// changes from old to cur (nil where the node does not exist).
func (c *Controller) enqueueForNode(old, cur *corev1.Node) {
	name := cmp.Or(cur, old).Name
	for _, obj := range c.sets.List() {
		set := obj.(*appsv1.DaemonSet)
		fit := fitFor(klog.Background(), set)
		before, after := fit(old), fit(cur)
		pods, _ := c.podIndexer.ByIndex(nodeIndex, nodeKey(name, set.UID))
		has := len(pods) > 0
		switch {
		case before != after,
			after.shouldRun && !has,
			!after.shouldContinueRunning && has,
			has && set.Status.NumberMisscheduled > 0:
			c.enqueue(set)
		}
	}
}

// sync brings one DaemonSet, by key, towards its spec and writes its status.
// It reads the clock once.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	now := c.Clock.Now()
	logger := klog.FromContext(ctx).WithValues("daemonset", key)
	ctx = klog.NewContext(ctx, logger)
	defer func() {
		logger.V(4).Info("Finished syncing DaemonSet", "duration", c.Clock.Since(now))
	}()
	set, ok, err := kit.Cached[*appsv1.DaemonSet](c.sets, key)
	if err != nil {
		return 0, fmt.Errorf("getting DaemonSet %s from the cache: %w", key, err)
	}
	if !ok {
		logger.V(3).Info("DaemonSet has been deleted")
		namespace, name, _ := cache.SplitMetaNamespaceKey(key)
		canaryHeld.DeleteLabelValues(namespace, name)
		return 0, nil
	}
	if set.Spec.Selector != nil && len(set.Spec.Selector.MatchLabels) == 0 && len(set.Spec.Selector.MatchExpressions) == 0 {
		c.Recorder.Eventf(set, corev1.EventTypeWarning, reasonSelectingAll, "This daemon set is selecting all pods. A non-empty selector is required.")
		return 0, nil
	}
	if set.DeletionTimestamp != nil {
		// Being deleted: what it owns may already be gone, so neither act nor
		// report.
		return 0, nil
	}
	if !c.apply.writes.Seen(set.UID, "daemonsets") {
		// Upstream also skips for its pod writes; quartet's then writes the
		// status and waits to act. The write's update event syncs the set
		// again.
		staleSkips.WithLabelValues("apps", "daemonsets").Inc()
		logger.V(4).Info("The cache does not show this controller's status write yet, waiting for its event")
		return kit.OwnWritesTimeout, nil
	}
	in, revs, err := c.observe(ctx, set, now)
	if err != nil {
		return 0, err
	}
	d, err := decide(in)
	if err != nil {
		// The status is still worth writing; the error requeues the set.
		err = fmt.Errorf("planning DaemonSet %s: %w", key, err)
	}
	if !in.act {
		// The pod cache misses this controller's last creates or deletes, so
		// its counts are behind what the status already says: the event
		// that shows them syncs the set again.
		return d.requeueAfter, err
	}
	if err == nil {
		err = c.act(ctx, in, d, revs)
	}
	if err := errors.Join(err, c.apply.writeStatus(ctx, set, d.status)); err != nil {
		return 0, err
	}
	return d.requeueAfter, nil
}

// observe claims the set's pods and revisions, brings its revisions in line
// with its template, and returns what the decision is made from.
func (c *Controller) observe(ctx context.Context, set *appsv1.DaemonSet, now time.Time) (*observed, *revisionPlan, error) {
	logger := klog.FromContext(ctx)
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil, nil, fmt.Errorf("DaemonSet %s/%s has an invalid selector: %w", set.Namespace, set.Name, err)
	}
	pods, revs, err := c.claim(ctx, set, selector)
	if err != nil {
		return nil, nil, err
	}
	rp, err := planRevisions(set, revs)
	if err != nil {
		return nil, nil, err
	}
	hash, err := c.apply.applyRevisions(ctx, set, rp, pods)
	if err != nil {
		return nil, nil, fmt.Errorf("constructing the revisions of DaemonSet %s/%s: %w", set.Namespace, set.Name, err)
	}
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return nil, nil, err
	}
	in := &observed{logger: logger, set: set, nodes: nodes, pods: pods, hash: hash, now: now,
		act: c.apply.writes.Seen(set.UID, "pods"), backoff: c.backoff, canary: c.canarySelector(set),
		podsByNode: make(map[string][]*corev1.Pod, len(nodes))}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil && (pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded) {
			// Finished and on its way out: nothing left to decide about it.
			continue
		}
		node, err := targetNodeName(pod)
		if err != nil {
			logger.V(4).Info("Ignoring daemon pod without a target node", "pod", klog.KObj(pod), "err", err)
			continue
		}
		in.podsByNode[node] = append(in.podsByNode[node], pod)
	}
	return in, rp, nil
}

// claim returns the set's pods and revisions, adopting matching orphans and
// releasing those it owns that no longer match.
func (c *Controller) claim(ctx context.Context, set *appsv1.DaemonSet, selector labels.Selector) ([]*corev1.Pod, []*appsv1.ControllerRevision, error) {
	canAdopt := kit.CanAdopt(ctx, set, func(ctx context.Context) (metav1.Object, error) {
		return c.Client.AppsV1().DaemonSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	})
	candidates, err := controller.FilterPodsByOwner(c.podIndexer, &set.ObjectMeta, controllerKind.Kind, true)
	if err != nil {
		return nil, nil, err
	}
	podClaims := kit.SortClaims(set, candidates, func(p *corev1.Pod) bool { return selector.Matches(labels.Set(p.Labels)) })
	pods, err := kit.Claim(ctx, podClaims, set, controllerKind, canAdopt, c.apply.patchPod)
	if err != nil {
		return nil, nil, err
	}
	revisions, err := c.revisionLister.ControllerRevisions(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, nil, err
	}
	revClaims := kit.SortClaims(set, revisions, func(r *appsv1.ControllerRevision) bool { return selector.Matches(labels.Set(r.Labels)) })
	revs, err := kit.Claim(ctx, revClaims, set, controllerKind, canAdopt, c.apply.patchRevision)
	return pods, revs, err
}

// act makes the decision's writes: its events, the failed-pod back-off, the
// canary gauge, the pods (counting those created in the status), and the
// revisions beyond the history limit.
func (c *Controller) act(ctx context.Context, in *observed, d *decision, rp *revisionPlan) error {
	set := in.set
	kit.Record(c.Recorder, set, d.events...)
	for _, k := range d.backoffSteps {
		c.backoff.Next(k, in.now)
	}
	// The gauge has a series only for a set with a (valid) rollout node selector.
	if in.canary == nil {
		canaryHeld.DeleteLabelValues(set.Namespace, set.Name)
	} else {
		canaryHeld.WithLabelValues(set.Namespace, set.Name).Set(float64(d.heldByCanary))
	}
	if d.heldByCanary > 0 && c.once.First(set.UID, "held", in.hash) {
		c.Recorder.Eventf(set, corev1.EventTypeNormal, reasonRolloutPausedOutsideCanary,
			"Rolling update to revision %s is limited to nodes matching %q: %d pod(s) on other nodes keep the old revision until annotation %s is removed",
			in.hash, set.Annotations[AnnotationRolloutNodeSelector], d.heldByCanary, AnnotationRolloutNodeSelector)
	}
	createdOn, err := c.apply.writePods(ctx, set, d, in.hash)
	d.status.addCreated(in, createdOn)
	if err != nil {
		return err
	}
	return c.apply.cleanupRevisions(ctx, set, rp.old, in.pods)
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
		if c.once.First(set.UID, "invalid-selector", value) {
			c.Recorder.Eventf(set, corev1.EventTypeWarning, reasonInvalidRolloutNodeSelector,
				"Ignoring annotation %s: %q is not a valid label selector: %v", AnnotationRolloutNodeSelector, value, err)
		}
		return nil
	}
	return sel
}
