package ttlafterfinished

import (
	"context"
	"time"

	batch "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/controllers/kit"
)

// Controller deletes finished Jobs whose ttlSecondsAfterFinished has run out.
type Controller struct {
	*kit.Base
	queue *kit.Queue[string]
	jobs  cache.Store
	apply *applier
}

// New builds the controller and registers its Job informer on
// cfg.Informers. Like upstream's, it records no events: a deleted Job is its
// own record.
func New(cfg kit.Config) (*Controller, error) {
	base, err := kit.NewBase(cfg, "ttl-after-finished", "")
	if err != nil {
		return nil, err
	}
	c := &Controller{Base: base, apply: &applier{client: cfg.Client, now: base.Clock.Now}}
	c.queue = kit.NewQueue(base, "ttl_jobs_to_delete", nil, c.sync)
	informer := cfg.Informers.Batch().V1().Jobs().Informer()
	c.jobs = informer.GetStore()
	return c, base.Watch(informer, cache.ResourceEventHandlerFuncs{
		AddFunc:    c.jobChanged,
		UpdateFunc: func(_, cur any) { c.jobChanged(cur) },
	})
}

func (c *Controller) jobChanged(obj any) {
	if job, ok := obj.(*batch.Job); ok && needsCleanup(job) {
		c.queue.Add(job.Namespace + "/" + job.Name)
	}
}

// sync deletes the Job if its TTL has run out, reading it once more from
// the apiserver first so that a TTL the user just extended is honoured. It
// returns when to look again.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	cached, ok, err := kit.Cached[*batch.Job](c.jobs, key)
	if !ok {
		return 0, err
	}
	now := c.Clock.Now()
	if d := c.decide(ctx, cached, now); !d.expire {
		return d.after, nil
	}
	fresh, err := c.Client.BatchV1().Jobs(cached.Namespace).Get(ctx, cached.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	d := c.decide(ctx, fresh, now)
	return d.after, c.apply.apply(ctx, fresh, d)
}

// decide is the plan for job, with what cannot be acted on logged.
func (c *Controller) decide(ctx context.Context, job *batch.Job, now time.Time) decision {
	logger := klog.FromContext(ctx)
	d, err := decide(observed{job: job, now: now})
	switch {
	case err != nil:
		// Only an update of the Job can fix it, and that brings it back.
		logger.Info("Cannot tell when the Job finished; not cleaning it up", "job", klog.KObj(job), "err", err)
	case !d.expire && d.finishedAt.After(now):
		logger.Info("Warning: Found Job finished in the future. This is likely due to time skew in the cluster. Job cleanup will be deferred.", "job", klog.KObj(job))
	}
	return d
}
