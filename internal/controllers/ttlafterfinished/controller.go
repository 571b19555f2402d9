package ttlafterfinished

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	batch "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/controllers"
)

// Controller deletes finished Jobs whose ttlSecondsAfterFinished has run
// out.
type Controller struct {
	jobs      jobDeleter
	clock     clock.WithTicker
	jobLister batchlisters.JobLister
	synced    cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
}

var _ controllers.Controller = (*Controller)(nil)

// New builds the controller and registers its Job informer on
// cfg.Informers.
//
// Like upstream's, this controller records no events: a deleted Job is its
// own record.
func New(cfg controllers.Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("ttl-after-finished controller: Client and Informers are required")
	}
	clk := controllers.RealClock(cfg.Clock)
	c := &Controller{
		jobs:  &realJobDeleter{client: cfg.Client},
		clock: clk,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ttl_jobs_to_delete", Clock: clk}),
	}
	informer := cfg.Informers.Batch().V1().Jobs()
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.jobChanged,
		UpdateFunc: func(_, cur any) { c.jobChanged(cur) },
	}); err != nil {
		return nil, fmt.Errorf("ttl-after-finished controller: adding Job handler: %w", err)
	}
	c.jobLister = informer.Lister()
	c.synced = informer.Informer().HasSynced
	return c, nil
}

func (c *Controller) jobChanged(obj any) {
	job, ok := obj.(*batch.Job)
	if !ok || !needsCleanup(job) {
		return
	}
	c.queue.Add(job.Namespace + "/" + job.Name)
}

// Run waits for the Job cache, then works the queue with workers goroutines
// until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx)
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced) {
		c.queue.ShutDown()
		return
	}
	logger.Info("Starting TTL after finished controller", "workers", workers)
	var running sync.WaitGroup
	for range max(workers, 1) {
		running.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	logger.Info("Shutting down TTL after finished controller")
	c.queue.ShutDown()
	running.Wait()
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	requeue, err := c.sync(ctx, key)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Cleaning up finished Job, will retry", "key", key)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	if requeue > 0 {
		c.queue.AddAfter(key, requeue)
	}
	return true
}

// sync deletes the Job if its TTL has run out, reading it once more from
// the apiserver first so a TTL the user just extended is honoured. It
// returns when to look again.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, err
	}
	cached, err := c.jobLister.Jobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	now := c.clock.Now()
	v, err := decide(cached, now)
	if err != nil {
		// Only an update of the Job can fix it, and that brings it back.
		logger.Info("Cannot tell when the Job finished; not cleaning it up", "job", klog.KObj(cached), "err", err)
		return 0, nil
	}
	if v.action != actExpire {
		return c.report(logger, cached, v, now), nil
	}

	fresh, err := c.jobs.getFresh(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if v, err = decide(fresh, now); err != nil {
		logger.Info("Cannot tell when the Job finished; not cleaning it up", "job", klog.KObj(fresh), "err", err)
		return 0, nil
	}
	if v.action != actExpire {
		return c.report(logger, fresh, v, now), nil
	}
	logger.V(4).Info("Cleaning up Job", "job", klog.KObj(fresh), "finishedAt", v.finishedAt)
	if err := c.jobs.deleteJob(ctx, namespace, name, fresh.UID); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return 0, err
	}
	return 0, nil
}

func (c *Controller) report(logger klog.Logger, job *batch.Job, v verdict, now time.Time) time.Duration {
	if v.action != actWait {
		return 0
	}
	if v.finishedAt.After(now) {
		logger.Info("Warning: Found Job finished in the future. This is likely due to time skew in the cluster. Job cleanup will be deferred.", "job", klog.KObj(job))
	}
	return v.after
}
