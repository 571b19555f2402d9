package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/kubernetes/pkg/controller"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/kit"
)

const (
	// batchPeriod gathers a Job's pod events into one sync, as upstream does.
	batchPeriod = time.Second
	// minRequeue keeps a nearly expired retry delay from making a busy loop.
	minRequeue = 10 * time.Millisecond
	// apiRetryBase and apiRetryMax bound the back-off after a failed sync.
	apiRetryBase = time.Second
	apiRetryMax  = time.Minute
)

// Controller runs Jobs: it creates their pods, counts them as they finish
// and marks each Job Complete or Failed.
type Controller struct {
	*kit.Base
	queue *kit.Queue[string]
	// orphans are the pods whose tracking finalizer may need removing.
	orphans *kit.Queue[orphanKey]
	// going hands the pods being deleted to the selector sweeps under way.
	going goingPods
	// sweepWorkers bounds a selector sweep's finalizer removals in flight.
	sweepWorkers int
	apply        *applier

	jobs       cache.Store
	podLister  corelisters.PodLister
	podIndexer cache.Indexer
	owners     *kit.Owners[*batch.Job]
	podEvents  *kit.Router[*batch.Job, *v1.Pod]

	memory *memory
	// managedBy is kit.Config.ManagedBy: which Jobs are this controller's.
	managedBy string
	// once warns about an unusable quartet.dev/backoff-* annotation once.
	once kit.Once
}

// orphanKey names either one pod or every pod matching a selector in a
// namespace whose tracking finalizer may need removing.
type orphanKey struct {
	namespace string
	pod       string
	selector  string
}

// New builds the controller on cfg.Informers' Job and Pod informers.
func New(cfg kit.Config) (*Controller, error) {
	base, err := kit.NewBase(cfg, "job", "job-controller") // upstream's event source
	if err != nil {
		return nil, err
	}
	jobInformer := cfg.Informers.Batch().V1().Jobs()
	podInformer := cfg.Informers.Core().V1().Pods()
	c := &Controller{
		Base: base,
		apply: &applier{
			pods:   &kit.ClientPodWriter{Client: cfg.Client, Recorder: base.Recorder},
			client: cfg.Client,
			// Pod creates and deletes, finalizer removals and status writes
			// are filed apart: each holds a sync back differently.
			writes: kit.NewOwnWrites(base.Clock, map[string]kit.Store{
				"pods":           podInformer.Informer().GetStore(),
				"pod finalizers": podInformer.Informer().GetStore(),
				"jobs":           jobInformer.Informer().GetStore(),
			}),
		},
		jobs:         jobInformer.Informer().GetStore(),
		podLister:    podInformer.Lister(),
		podIndexer:   podInformer.Informer().GetIndexer(),
		owners:       kit.NewOwners(batch.SchemeGroupVersion.WithKind("Job").Kind, jobInformer.Informer().GetIndexer(), func(j *batch.Job) *metav1.LabelSelector { return j.Spec.Selector }),
		memory:       &memory{jobs: map[types.UID]*jobMemory{}},
		managedBy:    cfg.ManagedBy,
		sweepWorkers: writeConcurrency,
	}
	c.queue = kit.NewQueue(base, "job", workqueue.NewTypedItemExponentialFailureRateLimiter[string](apiRetryBase, apiRetryMax), c.sync)
	c.orphans = kit.NewQueue(base, "job_orphan_pod", workqueue.NewTypedItemExponentialFailureRateLimiter[orphanKey](apiRetryBase, apiRetryMax),
		func(ctx context.Context, key orphanKey) (time.Duration, error) { return 0, c.syncOrphans(ctx, key) })
	c.podEvents = &kit.Router[*batch.Job, *v1.Pod]{Owners: c.owners, Route: c.podChanged}
	if err := controller.AddPodControllerIndexer(podInformer.Informer()); err != nil {
		return nil, fmt.Errorf("job controller: adding Pod index: %w", err)
	}
	return c, errors.Join(
		base.Watch(jobInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				job := obj.(*batch.Job)
				// Counted as the cluster's own Job controller does; beside
				// it (managedBy set), that one counts.
				if c.managedBy == "" && managedElsewhere(job, "") {
					externalJobs.WithLabelValues(*job.Spec.ManagedBy).Inc()
				}
				c.queue.Add(keyOf(job))
			},
			UpdateFunc: c.updateJob,
			DeleteFunc: c.deleteJob,
		}),
		base.Watch(podInformer.Informer(), c.podEvents, cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { c.sweepOrphan(obj, false) },
			UpdateFunc: func(old, cur any) {
				if o, ok := old.(*v1.Pod); ok && o.ResourceVersion != cur.(*v1.Pod).ResourceVersion {
					c.sweepOrphan(cur, false)
				}
			},
			DeleteFunc: func(obj any) { c.sweepOrphan(obj, true) },
		}))
}

// managedElsewhere reports whether spec.managedBy hands the Job to another
// controller: as the cluster's own Job controller (managedBy ""), one
// naming anything but upstream's; beside it, one not naming managedBy.
func managedElsewhere(job *batch.Job, managedBy string) bool {
	if managedBy == "" {
		return job.Spec.ManagedBy != nil && *job.Spec.ManagedBy != batch.JobControllerName
	}
	return job.Spec.ManagedBy == nil || *job.Spec.ManagedBy != managedBy
}

func keyOf(job *batch.Job) string {
	return job.Namespace + "/" + job.Name
}

// sync brings one Job one step closer to done (reconcile) and returns when it
// must be looked at again regardless of events.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	job, ok, err := kit.Cached[*batch.Job](c.jobs, key)
	if !ok {
		return 0, err
	}
	switch {
	case managedElsewhere(job, c.managedBy):
		logger.V(2).Info("Skipping Job managed by another controller", "job", klog.KObj(job), "managedBy", ptr.Deref(job.Spec.ManagedBy, ""))
	case IsFinished(job):
		c.forget(job)
	case !c.apply.writes.Seen(job.UID, "jobs"):
		// The update event that shows it syncs the Job at once (updateJob).
		logger.V(4).Info("Waiting for the cache to show the Job's latest status", "job", klog.KObj(job))
		// Upstream also skips for its pod writes; quartet waits for those per
		// pod instead.
		staleSkips.WithLabelValues("batch", "jobs").Inc()
	case !isIndexed(job) && ptr.Deref(job.Spec.CompletionMode, batch.NonIndexedCompletion) != batch.NonIndexedCompletion:
		c.Recorder.Event(job, v1.EventTypeWarning, ReasonUnknownCompletionMode, "Skipped Job sync because completion mode is unknown")
	default:
		requeue, err := c.reconcile(ctx, job)
		if requeue > 0 {
			requeue = max(requeue, minRequeue)
		}
		return requeue, err
	}
	return 0, nil
}

// reconcile is one sync of a Job that is this controller's to run: claim
// its pods, decide, write pods, status and finalizers in that order.
func (c *Controller) reconcile(ctx context.Context, job *batch.Job) (_ time.Duration, err error) {
	now := c.Clock.Now()
	action := actionReconciling
	defer func() { recordSync(job, now, c.Clock.Now(), action, err) }()
	pods, err := c.claimPods(ctx, job)
	if err != nil {
		return 0, err
	}
	retry, problems := retryPolicyFor(job)
	if text := strings.Join(problems, "; "); text != "" && c.once.First(job.UID, "backoff", text) {
		c.Recorder.Eventf(job, v1.EventTypeWarning, ReasonInvalidBackoff, "%s; using the default retry delay", text)
		invalidBackoff.Inc()
	}
	mem := c.memory.update(job.UID, func(m *jobMemory) { m.finishedSinceSync = 0 })
	d := decide(&observed{
		job:           job,
		pods:          pods,
		now:           now,
		settled:       c.apply.writes.Seen(job.UID, "pods"),
		finalizerGone: c.apply.writes.Unseen(job.UID, "pod finalizers"),
		backoff:       mem.backoff,
		retry:         retry,
	})
	action = syncAction(d)
	recordRetryDelay(d)
	kit.Record(c.Recorder, job, d.events...)
	out, nextBatch, podErr := c.apply.writePods(ctx, job, d, mem.createBatch)
	if nextBatch > 0 {
		c.memory.update(job.UID, func(m *jobMemory) { m.createBatch = nextBatch })
	}
	t := d.track(out)
	current := job
	if statusChanged(&current.Status, &t.status) {
		if current, err = c.apply.writeStatus(ctx, current, t.status); err != nil {
			return 0, errors.Join(podErr, fmt.Errorf("recording finished pods in status: %w", err))
		}
	}
	c.memory.update(job.UID, func(m *jobMemory) { m.backoff = d.backoff })
	dropped, dropErr := c.apply.dropFinalizers(ctx, job, t.dropFinalizers)
	s := t.settle(dropped)
	// Counting the pods whose finalizer just went can wait for the next sync,
	// which their update events bring within the batch period: in a running
	// Job that is one status write per sync instead of two. It cannot wait
	// when the Job ends here, nor when some finalizers stayed (upstream
	// records the partial progress at once too).
	if (s.finished || dropErr != nil) && statusChanged(&current.Status, &s.status) {
		if _, err = c.apply.writeStatus(ctx, current, s.status); err != nil {
			return 0, errors.Join(podErr, dropErr, fmt.Errorf("counting finished pods in status: %w", err))
		}
	}
	kit.Record(c.Recorder, job, s.events...)
	return d.requeue, errors.Join(podErr, dropErr)
}

// claimPods returns the pods the Job controls, adopting orphans that match
// its selector (with the tracking finalizer) and releasing pods that no
// longer do (without it).
func (c *Controller) claimPods(ctx context.Context, job *batch.Job) ([]*v1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("job %s has an invalid selector: %w", klog.KObj(job), err)
	}
	candidates, err := controller.FilterPodsByOwner(c.podIndexer, &job.ObjectMeta, "Job", true)
	if err != nil {
		return nil, err
	}
	claims := kit.SortClaims(job, candidates, func(p *v1.Pod) bool { return selector.Matches(labels.Set(p.Labels)) })
	canAdopt := kit.CanAdopt(ctx, job, func(ctx context.Context) (metav1.Object, error) {
		return c.Client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	})
	return kit.Claim(ctx, claims, job, batch.SchemeGroupVersion.WithKind("Job"), canAdopt,
		func(ctx context.Context, p *v1.Pod, patch []byte) (*v1.Pod, error) {
			return c.apply.pods.PatchPod(ctx, p.Namespace, p.Name, types.StrategicMergePatchType, patch)
		},
		batch.JobTrackingFinalizer)
}

// forget drops what is remembered of a Job that is done or gone.
func (c *Controller) forget(job *batch.Job) {
	c.apply.writes.Forget(job.UID)
	c.memory.forget(job.UID)
	c.once.Forget(job.UID)
}

func (c *Controller) updateJob(oldObj, newObj any) {
	old, okOld := oldObj.(*batch.Job)
	cur, okCur := newObj.(*batch.Job)
	if !okOld || !okCur {
		return
	}
	switch {
	case IsFinished(cur):
		// Finalizers are removed before a Job is marked finished; this only
		// sweeps up after an interrupted sync.
		c.enqueueSelectorSweep(cur)
		return
	case c.apply.writes.CaughtUp(cur.UID, "jobs"), cur.Generation != old.Generation:
		c.queue.Add(keyOf(cur))
	default:
		c.queue.AddAfter(keyOf(cur), batchPeriod)
	}
	// A changed deadline needs its own wake-up.
	if cur.Status.StartTime != nil && cur.Spec.ActiveDeadlineSeconds != nil &&
		!ptr.Equal(old.Spec.ActiveDeadlineSeconds, cur.Spec.ActiveDeadlineSeconds) {
		deadline := cur.Status.StartTime.Add(time.Duration(*cur.Spec.ActiveDeadlineSeconds) * time.Second)
		c.queue.AddAfter(keyOf(cur), max(deadline.Sub(c.Clock.Now()), 0))
	}
}

func (c *Controller) deleteJob(obj any) {
	if job, ok := kit.Unwrap[*batch.Job](obj); ok {
		c.forget(job)
		c.queue.Add(keyOf(job))
		c.enqueueSelectorSweep(job)
	}
}

func (c *Controller) enqueueSelectorSweep(job *batch.Job) {
	if selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil {
		c.orphans.Add(orphanKey{namespace: job.Namespace, selector: selector.String()})
	}
}

// podChanged syncs the Job a pod event concerns: at once when enough of its
// pods have finished since its last sync (half a wave, see syncThreshold),
// otherwise after the batch period, which gathers a Job's pod events into
// one sync. A finished Job is not synced for its pods going away.
func (c *Controller) podChanged(job *batch.Job, ev kit.ChildEvent[*v1.Pod]) {
	recordTrackingFinalizer(ev)
	going := ev.Op == kit.Deleted || (ev.Cur.DeletionTimestamp != nil && !ev.Released)
	switch {
	case going && IsFinished(job):
	case ev.Op == kit.Updated && !going && !ev.Released && !ev.Orphan &&
		!podutil.IsPodPhaseTerminal(ev.Old.Status.Phase) && podutil.IsPodPhaseTerminal(ev.Cur.Status.Phase) &&
		c.memory.update(job.UID, func(m *jobMemory) { m.finishedSinceSync++ }).finishedSinceSync == syncThreshold(job):
		c.queue.Add(keyOf(job))
	default:
		c.queue.AddAfter(keyOf(job), batchPeriod)
	}
}

// sweepOrphan queues the removal of a tracking finalizer nobody else will
// remove: on an orphan, or on a pod going away (gone, or being deleted)
// whose Job is gone or finished.
func (c *Controller) sweepOrphan(obj any, gone bool) {
	p, ok := kit.Unwrap[*v1.Pod](obj)
	if !ok || !hasTrackingFinalizer(p) {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if !gone && p.DeletionTimestamp == nil {
			return
		}
		if job, ok := c.owners.Of(p.Namespace, ref); ok && !IsFinished(job) {
			return
		}
	}
	key := orphanKey{namespace: p.Namespace, pod: p.Name}
	if !c.going.offer(key) {
		c.orphans.Add(key)
	}
}

// syncThreshold is how many of a Job's pods must finish to sync at once
// instead of waiting for the batch period: half a wave of parallel pods,
// so a fast Job is not held back by the batching meant to save writes.
func syncThreshold(job *batch.Job) int32 {
	return max(1, ptr.Deref(job.Spec.Parallelism, 1)/2)
}

// syncOrphans removes the tracking finalizer from pods no running Job
// counts: orphans, and pods of Jobs that are gone or finished.
func (c *Controller) syncOrphans(ctx context.Context, key orphanKey) error {
	if key.pod != "" {
		return c.releaseOrphan(ctx, key, &sync.Map{})
	}
	selector, err := labels.Parse(key.selector)
	if err != nil {
		return nil
	}
	pods, err := c.podLister.Pods(key.namespace).List(selector)
	if err != nil {
		return err
	}
	return c.sweep(ctx, pods)
}

// sweep removes the tracking finalizer of pods in parallel, at the
// apiserver's pace rather than one round trip at a time, the pods being
// deleted meanwhile first (the garbage collector deletes a deleted Job's pods
// in an order of its own): such a pod is gone as soon as its finalizer is,
// one not yet deleted stays until the collector reaches it. In the list's
// order alone, a 100,000-pod Job's pods went at 27 a second at first and 385
// at the end, with the same CPU (docs/getting-started.md, Memory).
func (c *Controller) sweep(ctx context.Context, pods []*v1.Pod) error {
	c.going.add(1)
	defer func() {
		for _, key := range c.going.add(-1) {
			c.orphans.Add(key)
		}
	}()
	var (
		mu       sync.Mutex
		errs     []error
		next     atomic.Int64
		released sync.Map // the UIDs of the pods this sweep released
	)
	// take returns the next pod to release: one being deleted if any
	// (going), otherwise the next of the list.
	take := func() (key orphanKey, going, ok bool) {
		if key, ok := c.going.take(); ok {
			return key, true, true
		}
		if i := int(next.Add(1)) - 1; i < len(pods) {
			return orphanKey{namespace: pods[i].Namespace, pod: pods[i].Name}, false, true
		}
		return orphanKey{}, false, false
	}
	var wg sync.WaitGroup
	for range min(len(pods), c.sweepWorkers) {
		wg.Go(func() {
			for key, going, ok := take(); ok; key, going, ok = take() {
				switch err := c.releaseOrphan(ctx, key, &released); {
				case err != nil && going:
					// Perhaps another Job's pod: retried on its own.
					c.orphans.AddRateLimited(key)
				case err != nil:
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// goingPods holds the pod keys the informer's events queue while a
// selector sweep is under way, for the sweep to take ahead of its list.
type goingPods struct {
	mu     sync.Mutex
	sweeps int
	keys   []orphanKey
}

// offer hands key to the sweeps under way; false when there is none.
func (g *goingPods) offer(key orphanKey) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sweeps > 0 {
		g.keys = append(g.keys, key)
	}
	return g.sweeps > 0
}

func (g *goingPods) take() (key orphanKey, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ok = len(g.keys) > 0; ok {
		key, g.keys = g.keys[0], g.keys[1:]
	}
	return key, ok
}

// add counts a sweep beginning (1) or ending (-1), and returns, when the
// last sweep ends, the keys no sweep took.
func (g *goingPods) add(sweeps int) []orphanKey {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweeps += sweeps
	var left []orphanKey
	if g.sweeps == 0 {
		left, g.keys = g.keys, nil
	}
	return left
}

// releaseOrphan removes the tracking finalizer of the pod key names, as the
// cache shows it, if no running Job counts the pod, and unless released (the
// UIDs a sweep has released) holds it.
func (c *Controller) releaseOrphan(ctx context.Context, key orphanKey, released *sync.Map) error {
	p, err := c.podLister.Pods(key.namespace).Get(key.pod)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !hasTrackingFinalizer(p) {
		return err
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if ref.Kind != "Job" || ref.APIVersion != batch.SchemeGroupVersion.String() {
			// Some other kind of owner: not ours to touch.
			return nil
		}
		if job, ok := c.owners.Of(p.Namespace, ref); ok && (managedElsewhere(job, c.managedBy) || !IsFinished(job)) {
			return nil
		}
		if c.apply.writes.Unseen(ref.UID, "pod finalizers")[p.UID] {
			// This controller removed it (a finishing sync does, just before the
			// Job's finished status that wakes the sweep); the cache lags behind.
			return nil
		}
	}
	if _, done := released.LoadOrStore(p.UID, true); done {
		return nil
	}
	if _, err := c.apply.dropFinalizer(ctx, p); err != nil && !apierrors.IsNotFound(err) {
		released.Delete(p.UID)
		return err
	}
	return nil
}
