package cronjob

import (
	"context"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers"
	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
)

// jobsByControllerUID indexes the shared Job informer by the UID of each
// Job's controller, so a sync finds a CronJob's Jobs without a LIST. The name
// is the controller's own so that other controllers sharing the informer
// cannot collide with it.
const jobsByControllerUID = "quartet.dev/cronjob-controller-uid"

// deletionMemory is how long a Job this controller deleted is ignored while
// the informer cache may still hold it.
const deletionMemory = 5 * time.Minute

// Controller runs CronJobs.
type Controller struct {
	client   kubernetes.Interface
	clock    clock.WithTicker
	local    *time.Location
	cronJobs batchlisters.CronJobLister
	jobs     cache.Indexer
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	jobControl  jobControl
	cjControl   cronJobControl

	// deleting holds the Jobs this controller deleted and when, until the
	// Job informer reports them gone.
	deletingMu sync.Mutex
	deleting   map[types.UID]time.Time
}

var _ controllers.Controller = (*Controller)(nil)

// New builds the CronJob controller on cfg's informers (CronJobs, and Jobs
// indexed by controller UID). Events go to the API as component
// "cronjob-controller" once Run starts.
func New(cfg controllers.Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, fmt.Errorf("cronjob controller: Client and Informers are required")
	}
	clk := controllers.RealClock(cfg.Clock)
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client: cfg.Client,
		clock:  clk,
		local:  time.Local,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob", Clock: clk},
		),
		broadcaster: broadcaster,
		recorder:    broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "cronjob-controller"}),
		jobControl:  &clientJobControl{client: cfg.Client},
		cjControl:   &clientCronJobControl{client: cfg.Client},
		deleting:    make(map[types.UID]time.Time),
	}

	cronJobInformer := cfg.Informers.Batch().V1().CronJobs()
	jobInformer := cfg.Informers.Batch().V1().Jobs()
	c.cronJobs = cronJobInformer.Lister()
	c.jobs = jobInformer.Informer().GetIndexer()
	c.synced = []cache.InformerSynced{cronJobInformer.Informer().HasSynced, jobInformer.Informer().HasSynced}

	if err := jobInformer.Informer().AddIndexers(cache.Indexers{jobsByControllerUID: indexByControllerUID}); err != nil {
		return nil, fmt.Errorf("cronjob controller: indexing jobs: %w", err)
	}
	if _, err := cronJobInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: c.updateCronJob,
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("cronjob controller: watching cronjobs: %w", err)
	}
	if _, err := jobInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addJob,
		UpdateFunc: c.updateJob,
		DeleteFunc: c.deleteJob,
	}); err != nil {
		return nil, fmt.Errorf("cronjob controller: watching jobs: %w", err)
	}
	return c, nil
}

func indexByControllerUID(obj any) ([]string, error) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(job); ref != nil && ref.Kind == controllerKind.Kind {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// Run records events to the API, waits for the caches, and syncs CronJobs
// with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx)

	c.broadcaster.StartStructuredLogging(3)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()

	logger.Info("Starting cronjob controller", "workers", workers)
	var wg sync.WaitGroup
	defer func() {
		logger.Info("Shutting down cronjob controller")
		c.queue.ShutDown()
		wg.Wait()
	}()
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return
	}
	for range max(workers, 1) {
		wg.Go(func() { wait.UntilWithContext(ctx, c.worker, time.Second) })
	}
	<-ctx.Done()
}

func (c *Controller) worker(ctx context.Context) {
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
	switch {
	case err != nil:
		utilruntime.HandleErrorWithContext(ctx, err, "Syncing CronJob, retrying", "key", key)
		c.queue.AddRateLimited(key)
	case requeueAfter > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, requeueAfter)
	default:
		c.queue.Forget(key)
	}
	return true
}

// sync reconciles one CronJob. It returns how long to wait before syncing it
// again when nothing changes (0: until something changes).
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, err
	}
	cj, err := c.cronJobs.CronJobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	now := c.clock.Now()
	jobs, err := c.jobsOf(cj, now)
	if err != nil {
		return 0, err
	}

	// A running Job that status.active does not list is either unexpected or
	// one this controller created whose status write the cache has not
	// caught up with. Reading the CronJob from the API tells them apart.
	if hasUnlistedRunningJob(cj, jobs) {
		fresh, err := c.cjControl.GetCronJob(ctx, namespace, name)
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		if fresh.UID != cj.UID {
			return 0, nil // recreated; the new object has its own sync coming
		}
		cj = fresh
	}
	gone, err := c.goneActiveJobs(ctx, cj, jobs)
	if err != nil {
		return 0, err
	}

	p := makePlan(observed{cronJob: cj, jobs: jobs, gone: gone, now: now, local: c.local})
	a := applier{jobs: c.jobControl, cronJobs: c.cjControl, recorder: c.recorder, deleted: c.rememberDeleted}
	if err := a.apply(ctx, cj, p); err != nil {
		return 0, err
	}
	if p.requeueAfter > 0 {
		logger.V(4).Info("Requeuing cronjob", "cronjob", klog.KObj(cj), "after", p.requeueAfter)
	}
	return p.requeueAfter, nil
}

// jobsOf returns the Jobs cj controls according to the cache, minus those
// this controller deleted that the cache has not dropped yet.
func (c *Controller) jobsOf(cj *batchv1.CronJob, now time.Time) ([]*batchv1.Job, error) {
	objs, err := c.jobs.ByIndex(jobsByControllerUID, string(cj.UID))
	if err != nil {
		return nil, err
	}
	c.deletingMu.Lock()
	defer c.deletingMu.Unlock()
	jobs := make([]*batchv1.Job, 0, len(objs))
	for _, obj := range objs {
		job, ok := obj.(*batchv1.Job)
		if !ok {
			continue
		}
		if at, ok := c.deleting[job.UID]; ok {
			if now.Sub(at) < deletionMemory {
				continue
			}
			delete(c.deleting, job.UID)
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

func (c *Controller) rememberDeleted(uid types.UID) {
	c.deletingMu.Lock()
	defer c.deletingMu.Unlock()
	c.deleting[uid] = c.clock.Now()
}

func (c *Controller) forgetDeleted(uid types.UID) {
	c.deletingMu.Lock()
	defer c.deletingMu.Unlock()
	delete(c.deleting, uid)
}

func hasUnlistedRunningJob(cj *batchv1.CronJob, jobs []*batchv1.Job) bool {
	for _, j := range jobs {
		if finished, _ := finishedCondition(j); !finished && !hasUID(cj.Status.Active, j.UID) {
			return true
		}
	}
	return false
}

// goneActiveJobs asks the API server about the status.active entries the
// cache does not hold: a slow watch must not make a running Job look lost.
func (c *Controller) goneActiveJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) (map[types.UID]bool, error) {
	var gone map[types.UID]bool
	for _, ref := range cj.Status.Active {
		if containsJob(jobs, ref.UID) {
			continue
		}
		job, err := c.jobControl.GetJob(ctx, ref.Namespace, ref.Name)
		switch {
		case apierrors.IsNotFound(err) || (err == nil && job.UID != ref.UID):
			if gone == nil {
				gone = make(map[types.UID]bool)
			}
			gone[ref.UID] = true
		case err != nil:
			c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonFailedGet, "Error getting job %s: %v", ref.Name, err)
			return nil, err
		}
	}
	return gone, nil
}

func containsJob(jobs []*batchv1.Job, uid types.UID) bool {
	for _, j := range jobs {
		if j.UID == uid {
			return true
		}
	}
	return false
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("cronjob controller: no key for %T: %w", obj, err))
		return
	}
	c.queue.Add(key)
}

// updateCronJob syncs an edited CronJob now, except when the edit changed
// when it runs: then it wakes at the new schedule's next time, so that an
// edit never starts a Job for a time that passed before it (as in
// Kubernetes).
func (c *Controller) updateCronJob(oldObj, newObj any) {
	old, okOld := oldObj.(*batchv1.CronJob)
	cur, okCur := newObj.(*batchv1.CronJob)
	if !okOld || !okCur {
		return
	}
	if old.Spec.Schedule == cur.Spec.Schedule && ptr.Equal(old.Spec.TimeZone, cur.Spec.TimeZone) {
		c.enqueue(cur)
		return
	}
	loc, err := schedule.Location(cur.Spec.TimeZone, c.local)
	if err != nil {
		c.enqueue(cur) // the sync reports UnknownTimeZone
		return
	}
	sched, err := schedule.Parse(cur.Spec.Schedule, loc)
	if err != nil {
		c.recorder.Eventf(cur, corev1.EventTypeWarning, reasonUnparseableOnUpdate, "unparseable schedule for cronjob: %s", cur.Spec.Schedule)
		return
	}
	now := c.clock.Now()
	next := sched.NextAfter(scheduleAnchor(cur, cur.Status), now)
	if next.IsZero() {
		c.enqueue(cur) // the sync reports InvalidSchedule
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(cur)
	if err != nil {
		return
	}
	c.queue.AddAfter(key, next.Sub(now)+requeueDelay)
}

// cronJobFor returns the CronJob a controller reference points to, if it
// still exists with that UID.
func (c *Controller) cronJobFor(namespace string, ref *metav1.OwnerReference) *batchv1.CronJob {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	cj, err := c.cronJobs.CronJobs(namespace).Get(ref.Name)
	if err != nil || cj.UID != ref.UID {
		return nil
	}
	return cj
}

func (c *Controller) addJob(obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	if cj := c.cronJobFor(job.Namespace, metav1.GetControllerOf(job)); cj != nil {
		c.enqueue(cj)
	}
}

func (c *Controller) updateJob(oldObj, newObj any) {
	old, okOld := oldObj.(*batchv1.Job)
	cur, okCur := newObj.(*batchv1.Job)
	if !okOld || !okCur || old.ResourceVersion == cur.ResourceVersion {
		return // a resync, not a change
	}
	oldRef, curRef := metav1.GetControllerOf(old), metav1.GetControllerOf(cur)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if cj := c.cronJobFor(old.Namespace, oldRef); cj != nil {
			c.enqueue(cj)
		}
	}
	if cj := c.cronJobFor(cur.Namespace, curRef); cj != nil {
		c.enqueue(cj)
	}
}

func (c *Controller) deleteJob(obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		tombstone, isTombstone := obj.(cache.DeletedFinalStateUnknown)
		if !isTombstone {
			return
		}
		if job, ok = tombstone.Obj.(*batchv1.Job); !ok {
			return
		}
	}
	c.forgetDeleted(job.UID)
	if cj := c.cronJobFor(job.Namespace, metav1.GetControllerOf(job)); cj != nil {
		c.enqueue(cj)
	}
}
