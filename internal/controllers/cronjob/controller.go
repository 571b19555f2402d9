package cronjob

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"quartet.dev/quartet/internal/controllers/cronjob/schedule"
	"quartet.dev/quartet/internal/controllers/kit"
)

// jobsByControllerUID indexes the shared Job informer by the UID of each
// Job's controller, so a sync finds a CronJob's Jobs without a LIST. The name
// is the controller's own so that other controllers sharing the informer
// cannot collide with it.
const jobsByControllerUID = "quartet.dev/cronjob-controller-uid"

// Controller runs CronJobs.
type Controller struct {
	*kit.Base
	queue    *kit.Queue[string]
	local    *time.Location
	cronJobs cache.Store
	jobs     cache.Indexer
	apply    *applier
	// jobEvents routes the Job informer's events to the CronJobs.
	jobEvents *kit.Router[*batchv1.CronJob, *batchv1.Job]
}

// New builds the CronJob controller on cfg's informers (CronJobs, and Jobs
// indexed by controller UID). Events go to the API as component
// "cronjob-controller" once Run starts.
func New(cfg kit.Config) (*Controller, error) {
	base, err := kit.NewBase(cfg, "cronjob", "cronjob-controller")
	if err != nil {
		return nil, err
	}
	cronJobInformer := cfg.Informers.Batch().V1().CronJobs()
	jobInformer := cfg.Informers.Batch().V1().Jobs()
	c := &Controller{
		Base:     base,
		local:    time.Local,
		cronJobs: cronJobInformer.Informer().GetStore(),
		jobs:     jobInformer.Informer().GetIndexer(),
		apply: &applier{
			client:   cfg.Client,
			recorder: base.Recorder,
			owed:     map[types.UID]owedStatus{},
			writes: kit.NewOwnWrites(base.Clock, map[string]kit.Store{
				"jobs":     jobInformer.Informer().GetStore(),
				"cronjobs": cronJobInformer.Informer().GetStore(),
			}),
		},
	}
	c.queue = kit.NewQueue(base, "cronjob", nil, c.sync)
	if err := jobInformer.Informer().AddIndexers(cache.Indexers{jobsByControllerUID: indexByControllerUID}); err != nil {
		return nil, fmt.Errorf("cronjob controller: indexing jobs: %w", err)
	}
	c.jobEvents = &kit.Router[*batchv1.CronJob, *batchv1.Job]{
		Owners: kit.NewOwners[*batchv1.CronJob](controllerKind.Kind, cronJobInformer.Informer().GetIndexer(), nil),
		Route:  func(cj *batchv1.CronJob, _ kit.ChildEvent[*batchv1.Job]) { c.enqueue(cj) },
	}
	return c, errors.Join(
		base.Watch(cronJobInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: c.updateCronJob,
			DeleteFunc: c.deleteCronJob,
		}),
		base.Watch(jobInformer.Informer(), c.jobEvents))
}

func indexByControllerUID(obj any) ([]string, error) {
	if job, ok := obj.(*batchv1.Job); ok {
		if ref := metav1.GetControllerOf(job); ref != nil && ref.Kind == controllerKind.Kind {
			return []string{string(ref.UID)}, nil
		}
	}
	return nil, nil
}

// sync reconciles one CronJob. It returns how long to wait before syncing it
// again when nothing changes (0: until something changes).
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	cached, ok, err := kit.Cached[*batchv1.CronJob](c.cronJobs, key)
	if !ok {
		return 0, err
	}
	// cj is the CronJob with the status an earlier sync owes it, if any;
	// the status write compares with cached's.
	cj := c.apply.takeOwed(cached)
	now := c.Clock.Now()
	jobs, err := c.jobsOf(cj)
	if err != nil {
		return 0, err
	}

	// A running Job that status.active does not list is either unexpected or
	// one this controller created whose status write the cache has not
	// caught up with. When this controller knows its status write is still
	// on its way, the write's update event syncs the CronJob again (the
	// Job's add event usually comes first); otherwise (a write from before
	// a restart) reading the CronJob from the API tells them apart.
	if slices.ContainsFunc(jobs, func(j *batchv1.Job) bool { return finishedCondition(j) == "" && !hasUID(cj.Status.Active, j.UID) }) {
		if len(c.apply.writes.Unseen(cj.UID, "cronjobs")) > 0 {
			klog.FromContext(ctx).V(4).Info("Waiting for the cache to show this controller's status write", "cronjob", klog.KObj(cj))
			return 0, nil
		}
		fresh, err := c.Client.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || (err == nil && fresh.UID != cj.UID):
			return 0, nil // deleted, or recreated: the informer events that follow sync it
		case err != nil:
			return 0, err
		}
		cj, cached = fresh, fresh
	}
	gone, err := c.goneActiveJobs(ctx, cj, jobs)
	if err != nil {
		return 0, err
	}

	d := Decide(Observed{CronJob: cj, Jobs: jobs, Gone: gone, Now: now, Local: c.local})
	owed, err := c.apply.apply(ctx, cached, d)
	if err != nil {
		return 0, err
	}
	if owed {
		c.queue.Add(key) // behind every key already waiting
	}
	if d.RequeueAfter > 0 {
		klog.FromContext(ctx).V(4).Info("Requeuing cronjob", "cronjob", klog.KObj(cj), "after", d.RequeueAfter)
	}
	return d.RequeueAfter, nil
}

// jobsOf returns the Jobs cj controls according to the cache, minus those
// this controller deleted that the cache does not show gone yet.
func (c *Controller) jobsOf(cj *batchv1.CronJob) ([]*batchv1.Job, error) {
	objs, err := c.jobs.ByIndex(jobsByControllerUID, string(cj.UID))
	if err != nil {
		return nil, err
	}
	deleted := c.apply.writes.Unseen(cj.UID, "jobs")
	jobs := make([]*batchv1.Job, 0, len(objs))
	for _, obj := range objs {
		if job, ok := obj.(*batchv1.Job); ok && !deleted[job.UID] {
			jobs = append(jobs, job)
		}
	}
	return jobs, nil
}

// goneActiveJobs asks the API server about the status.active entries the
// cache does not hold: a slow watch must not make a running Job look lost.
func (c *Controller) goneActiveJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) (map[types.UID]bool, error) {
	gone := map[types.UID]bool{}
	for _, ref := range cj.Status.Active {
		if slices.ContainsFunc(jobs, func(j *batchv1.Job) bool { return j.UID == ref.UID }) {
			continue
		}
		job, err := c.Client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || (err == nil && job.UID != ref.UID):
			gone[ref.UID] = true
		case err != nil:
			c.Recorder.Eventf(cj, corev1.EventTypeWarning, reasonFailedGet, "Error getting job %s: %v", ref.Name, err)
			return nil, err
		}
	}
	return gone, nil
}

func (c *Controller) enqueue(obj any) {
	if cj, ok := kit.Unwrap[*batchv1.CronJob](obj); ok {
		c.queue.Add(cache.MetaObjectToName(cj).String())
	}
}

// updateCronJob syncs an edited CronJob now, unless the edit changed when it
// runs: then it wakes at the new schedule's next time, so that an edit never
// starts a Job for a time before it (as in Kubernetes).
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
		c.Recorder.Eventf(cur, corev1.EventTypeWarning, reasonUnparseableOnUpdate, "unparseable schedule for cronjob: %s", cur.Spec.Schedule)
		return
	}
	after := requeueAfter(sched, scheduleAnchor(cur, cur.Status), c.Clock.Now())
	if after == 0 {
		c.enqueue(cur) // the sync reports InvalidSchedule
		return
	}
	c.queue.AddAfter(cache.MetaObjectToName(cur).String(), after)
}

// deleteCronJob drops what is remembered of a deleted CronJob.
func (c *Controller) deleteCronJob(obj any) {
	if cj, ok := kit.Unwrap[*batchv1.CronJob](obj); ok {
		c.apply.writes.Forget(cj.UID)
		c.apply.takeOwed(cj)
	}
	c.enqueue(obj)
}
