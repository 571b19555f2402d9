package job

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	batch "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers"
)

// ComponentName is the event source, the same as upstream's.
const ComponentName = "job-controller"

const (
	// batchPeriod gathers the pod events of a Job into one sync, as
	// upstream does.
	batchPeriod = time.Second
	// minRequeue keeps a retry delay that is about to expire from turning
	// into a busy loop.
	minRequeue = 10 * time.Millisecond
	// apiRetryBase and apiRetryMax bound the back-off after a failed sync.
	apiRetryBase = time.Second
	apiRetryMax  = time.Minute

	// podIndexName indexes pods by the Job that controls them, and orphans
	// by namespace.
	podIndexName = "quartet.dev/job-controller"
)

// Controller runs Jobs: it creates their pods, counts them as they finish
// and marks each Job Complete or Failed.
type Controller struct {
	client      kubernetes.Interface
	pods        podWriter
	jobs        jobWriter
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	clock       clock.WithTicker

	jobLister  batchlisters.JobLister
	podLister  corelisters.PodLister
	podIndexer cache.Indexer
	synced     []cache.InformerSynced

	queue   workqueue.TypedRateLimitingInterface[string]
	orphans workqueue.TypedRateLimitingInterface[orphanKey]
	memory  *memory
}

var _ controllers.Controller = (*Controller)(nil)

// orphanKey names either one pod or every pod matching a selector in a
// namespace whose tracking finalizer may need removing.
type orphanKey struct {
	namespace string
	pod       string
	selector  string
}

// New builds the controller and registers its Job and Pod informers on
// cfg.Informers.
func New(cfg controllers.Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("job controller: Client and Informers are required")
	}
	clk := controllers.RealClock(cfg.Clock)
	broadcaster := record.NewBroadcaster()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: ComponentName})
	c := &Controller{
		client:      cfg.Client,
		pods:        &realPodWriter{client: cfg.Client, recorder: recorder},
		jobs:        &realJobWriter{client: cfg.Client},
		broadcaster: broadcaster,
		recorder:    recorder,
		clock:       clk,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](apiRetryBase, apiRetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job", Clock: clk}),
		orphans: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[orphanKey](apiRetryBase, apiRetryMax),
			workqueue.TypedRateLimitingQueueConfig[orphanKey]{Name: "job_orphan_pod", Clock: clk}),
		memory: newMemory(),
	}

	jobInformer := cfg.Informers.Batch().V1().Jobs()
	podInformer := cfg.Informers.Core().V1().Pods()
	if _, err := jobInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addJob,
		UpdateFunc: c.updateJob,
		DeleteFunc: c.deleteJob,
	}); err != nil {
		return nil, fmt.Errorf("job controller: adding Job handler: %w", err)
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("job controller: adding Pod handler: %w", err)
	}
	if _, exists := podInformer.Informer().GetIndexer().GetIndexers()[podIndexName]; !exists {
		if err := podInformer.Informer().AddIndexers(cache.Indexers{podIndexName: indexPodByJob}); err != nil {
			return nil, fmt.Errorf("job controller: adding Pod index: %w", err)
		}
	}
	c.jobLister = jobInformer.Lister()
	c.podLister = podInformer.Lister()
	c.podIndexer = podInformer.Informer().GetIndexer()
	c.synced = []cache.InformerSynced{jobInformer.Informer().HasSynced, podInformer.Informer().HasSynced}
	return c, nil
}

// jobRef returns the pod's controller reference when it is a batch Job.
func jobRef(p *v1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil || ref.Kind != "Job" {
		return nil
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != batch.GroupName {
		return nil
	}
	return ref
}

func jobIndexKey(uid string) string          { return "job/" + uid }
func orphanIndexKey(namespace string) string { return "orphan/" + namespace }

// indexPodByJob files a pod under the Job that controls it, or under its
// namespace when no controller owns it (a candidate for adoption).
func indexPodByJob(obj any) ([]string, error) {
	p, ok := obj.(*v1.Pod)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if jobRef(p) == nil {
			return nil, nil
		}
		return []string{jobIndexKey(string(ref.UID))}, nil
	}
	return []string{orphanIndexKey(p.Namespace)}, nil
}

// Run waits for the caches, then syncs Jobs with workers goroutines until
// ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx)

	c.broadcaster.StartStructuredLogging(3)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()

	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		c.queue.ShutDown()
		c.orphans.ShutDown()
		return
	}
	logger.Info("Starting job controller", "workers", workers)
	var running sync.WaitGroup
	for range max(workers, 1) {
		running.Go(func() {
			for c.processNextJob(ctx) {
			}
		})
		running.Go(func() {
			for c.processNextOrphan(ctx) {
			}
		})
	}
	<-ctx.Done()
	logger.Info("Shutting down job controller")
	c.queue.ShutDown()
	c.orphans.ShutDown()
	running.Wait()
}

func (c *Controller) processNextJob(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	requeue, err := c.sync(ctx, key)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Syncing Job", "key", key)
		c.queue.AddRateLimited(key)
	} else {
		c.queue.Forget(key)
	}
	if requeue > 0 {
		c.queue.AddAfter(key, max(requeue, minRequeue))
	}
	return true
}

func (c *Controller) processNextOrphan(ctx context.Context) bool {
	key, quit := c.orphans.Get()
	if quit {
		return false
	}
	defer c.orphans.Done(key)
	if err := c.syncOrphans(ctx, key); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Removing tracking finalizers of orphan pods", "namespace", key.namespace, "pod", key.pod, "selector", key.selector)
		c.orphans.AddRateLimited(key)
		return true
	}
	c.orphans.Forget(key)
	return true
}

// managedElsewhere reports whether spec.managedBy hands the Job to another
// controller.
func managedElsewhere(job *batch.Job) bool {
	return job.Spec.ManagedBy != nil && *job.Spec.ManagedBy != batch.JobControllerName
}

func keyOf(job *batch.Job) string {
	return job.Namespace + "/" + job.Name
}

// sync brings one Job one step closer to done: it creates or deletes pods,
// counts finished pods, removes their finalizers and writes the status. It
// returns when the Job must be looked at again regardless of events.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, err
	}
	shared, err := c.jobLister.Jobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.memory.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if managedElsewhere(shared) {
		logger.V(2).Info("Skipping Job managed by another controller", "job", klog.KObj(shared), "managedBy", *shared.Spec.ManagedBy)
		return 0, nil
	}
	if IsFinished(shared) {
		c.memory.forget(key)
		return 0, nil
	}
	if !c.memory.caughtUp(key, shared) {
		logger.V(4).Info("Waiting for the cache to show the Job's latest status", "job", klog.KObj(shared))
		return 0, nil
	}
	if mode := shared.Spec.CompletionMode; mode != nil && *mode != batch.NonIndexedCompletion && *mode != batch.IndexedCompletion {
		c.recorder.Event(shared, v1.EventTypeWarning, ReasonUnknownCompletionMode, "Skipped Job sync because completion mode is unknown")
		return 0, nil
	}

	now := c.clock.Now()
	pods, err := c.claimPods(ctx, shared)
	if err != nil {
		return 0, err
	}
	snap := c.memory.reconcile(key, shared, pods, now)
	retry, problems := retryPolicyFor(shared)
	if text := strings.Join(problems, "; "); text != "" && c.memory.warnBackoffOnce(key, shared.UID, text) {
		c.recorder.Eventf(shared, v1.EventTypeWarning, ReasonInvalidBackoff, "%s; using the default retry delay", text)
	}

	d := decide(&syncInput{
		job:           shared,
		pods:          pods,
		now:           now,
		settled:       snap.settled,
		finalizerGone: snap.finalizerGone,
		backoff:       snap.backoff,
		retry:         retry,
	})
	for _, e := range d.events {
		c.recorder.Event(shared, e.kind, e.reason, e.message)
	}

	out, podErr := c.writePods(ctx, key, shared, d, now)
	t := d.track(out)

	current := shared
	if statusChanged(&current.Status, &t.status) {
		if current, err = c.writeStatus(ctx, key, current, t.status); err != nil {
			return 0, errors.Join(podErr, fmt.Errorf("recording finished pods in status: %w", err))
		}
	}
	c.memory.setBackoff(key, shared.UID, d.backoff)

	dropped, dropErr := dropFinalizers(ctx, c.pods, t.dropFinalizers)
	gone := make([]types.UID, 0, len(dropped))
	for uid := range dropped {
		gone = append(gone, uid)
	}
	c.memory.expectPodWrites(key, shared.UID, nil, nil, gone, now)

	s := t.settle(dropped)
	// Counting the pods whose finalizer just went can wait for the next sync,
	// which their update events bring within the batch period: in a running
	// Job that is one status write per sync instead of two. It cannot wait
	// when the Job ends here, nor when some finalizers stayed (upstream
	// records the partial progress at once too).
	if (s.finished || dropErr != nil) && statusChanged(&current.Status, &s.status) {
		if _, err = c.writeStatus(ctx, key, current, s.status); err != nil {
			return 0, errors.Join(podErr, dropErr, fmt.Errorf("counting finished pods in status: %w", err))
		}
	}
	if s.finished {
		for _, e := range s.events {
			c.recorder.Event(shared, e.kind, e.reason, e.message)
		}
	}
	return d.requeue, errors.Join(podErr, dropErr)
}

// writePods carries out the decision's deletions and creations.
func (c *Controller) writePods(ctx context.Context, key string, job *batch.Job, d *decision, now time.Time) (outcome, error) {
	var out outcome
	var errs []error
	if len(d.deletes) > 0 {
		res := deletePods(ctx, c.pods, job, d.deletes)
		out.deletesFailed, out.readyDeletesFailed = res.failed, res.failedReady
		// Only deletions made to resize the Job are waited for, as upstream
		// does; a finishing Job deletes without waiting.
		var expected []types.UID
		if d.finishing == nil {
			expected = res.deleted
		}
		c.memory.expectPodWrites(key, job.UID, nil, expected, nil, now)
		errs = append(errs, res.err)
	}
	if len(d.creates) > 0 {
		if len(job.Spec.Template.Labels) == 0 {
			// A pod without labels could never be matched to its Job again.
			out.createsFailed = int32(len(d.creates))
			errs = append(errs, errors.New("unable to create pods, no labels"))
		} else {
			res := createPods(ctx, c.pods, job, d.creates, c.memory.createBatch(key, job.UID))
			out.createsFailed = res.notCreated
			c.memory.expectPodWrites(key, job.UID, res.created, nil, nil, now)
			c.memory.setCreateBatch(key, job.UID, res.nextBatch)
			errs = append(errs, res.err)
		}
	}
	return out, errors.Join(errs...)
}

// statusChanged reports whether a status write is needed. Like upstream, a
// Job's start time alone is not worth a write; it goes with the next one.
func statusChanged(old, updated *batch.JobStatus) bool {
	if apiequality.Semantic.DeepEqual(old, updated) {
		return false
	}
	if !reflect.DeepEqual(old.StartTime, updated.StartTime) {
		withOldStart := *updated
		withOldStart.StartTime = old.StartTime
		return !apiequality.Semantic.DeepEqual(old, &withOldStart)
	}
	return true
}

func (c *Controller) writeStatus(ctx context.Context, key string, job *batch.Job, status batch.JobStatus) (*batch.Job, error) {
	next := job.DeepCopy()
	next.Status = status
	written, err := c.jobs.updateStatus(ctx, next)
	if err != nil {
		return nil, err
	}
	c.memory.wrote(key, written)
	return written, nil
}

// claimPods returns the pods the Job controls, adopting orphans that match
// its selector and releasing pods that no longer do.
func (c *Controller) claimPods(ctx context.Context, job *batch.Job) ([]*v1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("job %s has an invalid selector: %w", klog.KObj(job), err)
	}
	owned, err := c.podIndexer.ByIndex(podIndexName, jobIndexKey(string(job.UID)))
	if err != nil {
		return nil, err
	}
	orphans, err := c.podIndexer.ByIndex(podIndexName, orphanIndexKey(job.Namespace))
	if err != nil {
		return nil, err
	}
	claim := decideClaims(job, selector, owned, orphans)
	var errs []error
	for _, p := range claim.release {
		patch, err := releasePatch(job, p)
		if err == nil {
			err = c.pods.patchPod(ctx, p, patch)
		}
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			errs = append(errs, err)
		}
	}
	if len(claim.adopt) > 0 {
		if err := c.canAdopt(ctx, job); err != nil {
			errs = append(errs, fmt.Errorf("can't adopt pods of Job %s: %w", klog.KObj(job), err))
		} else {
			for _, p := range claim.adopt {
				patch, err := adoptPatch(job, p)
				if err == nil {
					err = c.pods.patchPod(ctx, p, patch)
				}
				if apierrors.IsNotFound(err) {
					continue
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				adopted := p.DeepCopy()
				if !hasTrackingFinalizer(adopted) {
					adopted.Finalizers = append(adopted.Finalizers, batch.JobTrackingFinalizer)
				}
				claim.pods = append(claim.pods, adopted)
			}
		}
	}
	return claim.pods, errors.Join(errs...)
}

// canAdopt rereads the Job from the apiserver: a Job being deleted must not
// take pods the garbage collector is about to orphan.
func (c *Controller) canAdopt(ctx context.Context, job *batch.Job) error {
	fresh, err := c.jobs.getFresh(ctx, job.Namespace, job.Name)
	if err != nil {
		return err
	}
	if fresh.UID != job.UID {
		return fmt.Errorf("original Job %s is gone: got uid %v, wanted %v", klog.KObj(job), fresh.UID, job.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("job %s is being deleted", klog.KObj(job))
	}
	return nil
}

// claims is the pure part of claiming: which pods the Job keeps, adopts and
// releases.
type claims struct {
	pods, adopt, release []*v1.Pod
}

func decideClaims(job *batch.Job, selector labels.Selector, owned, orphans []any) claims {
	var out claims
	deleting := job.DeletionTimestamp != nil
	for _, obj := range owned {
		p := obj.(*v1.Pod)
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil || ref.UID != job.UID {
			continue
		}
		switch {
		case selector.Matches(labels.Set(p.Labels)):
			out.pods = append(out.pods, p)
		case !deleting:
			out.release = append(out.release, p)
		}
	}
	if deleting {
		return out
	}
	for _, obj := range orphans {
		p := obj.(*v1.Pod)
		if metav1.GetControllerOfNoCopy(p) != nil || p.DeletionTimestamp != nil || p.Namespace != job.Namespace {
			continue
		}
		if selector.Matches(labels.Set(p.Labels)) {
			out.adopt = append(out.adopt, p)
		}
	}
	return out
}

// Event handlers.

func (c *Controller) enqueueNow(job *batch.Job) {
	c.queue.Add(keyOf(job))
}

func (c *Controller) enqueueBatched(job *batch.Job) {
	c.queue.AddAfter(keyOf(job), batchPeriod)
}

func (c *Controller) addJob(obj any) {
	if job, ok := obj.(*batch.Job); ok {
		c.enqueueNow(job)
	}
}

func (c *Controller) updateJob(oldObj, newObj any) {
	old, okOld := oldObj.(*batch.Job)
	cur, okCur := newObj.(*batch.Job)
	if !okOld || !okCur {
		return
	}
	key := keyOf(cur)
	if IsFinished(cur) {
		// Finalizers are removed before a Job is marked finished; this only
		// sweeps up after an interrupted sync.
		c.enqueueSelectorSweep(cur)
		return
	}
	switch {
	case c.memory.observedJob(key, cur), cur.Generation != old.Generation:
		c.enqueueNow(cur)
	default:
		c.enqueueBatched(cur)
	}
	// A changed deadline needs its own wake-up.
	if cur.Status.StartTime != nil && cur.Spec.ActiveDeadlineSeconds != nil &&
		!ptr.Equal(old.Spec.ActiveDeadlineSeconds, cur.Spec.ActiveDeadlineSeconds) {
		deadline := cur.Status.StartTime.Add(time.Duration(*cur.Spec.ActiveDeadlineSeconds) * time.Second)
		c.queue.AddAfter(key, max(deadline.Sub(c.clock.Now()), 0))
	}
}

func (c *Controller) deleteJob(obj any) {
	job, ok := obj.(*batch.Job)
	if !ok {
		tomb, isTomb := obj.(cache.DeletedFinalStateUnknown)
		if !isTomb {
			return
		}
		if job, ok = tomb.Obj.(*batch.Job); !ok {
			return
		}
	}
	c.memory.forget(keyOf(job))
	c.enqueueNow(job)
	c.enqueueSelectorSweep(job)
}

func (c *Controller) enqueueSelectorSweep(job *batch.Job) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return
	}
	c.orphans.Add(orphanKey{namespace: job.Namespace, selector: selector.String()})
}

func (c *Controller) enqueueOrphan(p *v1.Pod) {
	c.orphans.Add(orphanKey{namespace: p.Namespace, pod: p.Name})
}

// ownerJob returns the Job a controller reference points to, if it still
// exists with that uid.
func (c *Controller) ownerJob(namespace string, ref *metav1.OwnerReference) *batch.Job {
	if ref == nil || ref.Kind != "Job" {
		return nil
	}
	job, err := c.jobLister.Jobs(namespace).Get(ref.Name)
	if err != nil || job.UID != ref.UID {
		return nil
	}
	return job
}

// jobsSelecting lists the Jobs whose selector matches an orphan pod.
func (c *Controller) jobsSelecting(p *v1.Pod) []*batch.Job {
	if len(p.Labels) == 0 {
		return nil
	}
	jobs, err := c.jobLister.Jobs(p.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*batch.Job
	for _, job := range jobs {
		selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
		if err != nil || selector.Empty() || !selector.Matches(labels.Set(p.Labels)) {
			continue
		}
		out = append(out, job)
	}
	return out
}

func (c *Controller) addPod(obj any) {
	p, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		// Seen for the first time while being deleted (after a restart).
		c.podGoing(p)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if job := c.ownerJob(p.Namespace, ref); job != nil {
			c.enqueueBatched(job)
		}
		return
	}
	if hasTrackingFinalizer(p) {
		c.enqueueOrphan(p)
	}
	for _, job := range c.jobsSelecting(p) {
		c.enqueueBatched(job)
	}
}

func (c *Controller) updatePod(oldObj, newObj any) {
	old, okOld := oldObj.(*v1.Pod)
	cur, okCur := newObj.(*v1.Pod)
	if !okOld || !okCur || cur.ResourceVersion == old.ResourceVersion {
		return
	}
	if cur.DeletionTimestamp != nil {
		c.podGoing(cur)
		return
	}
	curRef := metav1.GetControllerOfNoCopy(cur)
	oldRef := metav1.GetControllerOfNoCopy(old)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if job := c.ownerJob(old.Namespace, oldRef); job != nil {
			c.enqueueBatched(job)
		}
	}
	if curRef != nil {
		job := c.ownerJob(cur.Namespace, curRef)
		if job == nil {
			return
		}
		if !isTerminalPhase(old.Status.Phase) && isTerminalPhase(cur.Status.Phase) &&
			c.memory.podFinished(keyOf(job), job.UID, syncThreshold(job)) {
			c.enqueueNow(job)
			return
		}
		c.enqueueBatched(job)
		return
	}
	if hasTrackingFinalizer(cur) {
		c.enqueueOrphan(cur)
	}
	if refChanged || !reflect.DeepEqual(cur.Labels, old.Labels) {
		for _, job := range c.jobsSelecting(cur) {
			c.enqueueBatched(job)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	p, ok := obj.(*v1.Pod)
	if !ok {
		tomb, isTomb := obj.(cache.DeletedFinalStateUnknown)
		if !isTomb {
			return
		}
		if p, ok = tomb.Obj.(*v1.Pod); !ok {
			return
		}
	}
	c.podGoing(p)
}

// podGoing handles a pod being or having been deleted: its Job may need a
// replacement, and a finalizer nobody will remove is swept.
func (c *Controller) podGoing(p *v1.Pod) {
	job := c.ownerJob(p.Namespace, metav1.GetControllerOfNoCopy(p))
	if job == nil || IsFinished(job) {
		if hasTrackingFinalizer(p) {
			c.enqueueOrphan(p)
		}
		return
	}
	c.enqueueBatched(job)
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
		p, err := c.podLister.Pods(key.namespace).Get(key.pod)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return c.releaseOrphan(ctx, p)
	}
	selector, err := labels.Parse(key.selector)
	if err != nil {
		return nil
	}
	pods, err := c.podLister.Pods(key.namespace).List(selector)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pods {
		if err := c.releaseOrphan(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) releaseOrphan(ctx context.Context, p *v1.Pod) error {
	if !hasTrackingFinalizer(p) {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if jobRef(p) == nil || ref.APIVersion != batch.SchemeGroupVersion.String() {
			// Some other kind of owner: not ours to touch.
			return nil
		}
		if job := c.ownerJob(p.Namespace, ref); job != nil && (managedElsewhere(job) || !IsFinished(job)) {
			return nil
		}
	}
	err := c.pods.patchPod(ctx, p, dropFinalizerPatch())
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
