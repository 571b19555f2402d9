package ui

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// store is the UI's view of the cluster: one informer per kind the views
// draw, and a change signal that every open stream waits on.
type store struct {
	factory informers.SharedInformerFactory

	pods         cache.SharedIndexInformer
	nodes        cache.SharedIndexInformer
	claims       cache.SharedIndexInformer
	volumes      cache.SharedIndexInformer
	events       cache.SharedIndexInformer
	statefulSets cache.SharedIndexInformer
	daemonSets   cache.SharedIndexInformer
	revisions    cache.SharedIndexInformer
	jobs         cache.SharedIndexInformer
	cronJobs     cache.SharedIndexInformer

	mu sync.Mutex
	// changed is closed (and replaced) on every change the informers see.
	changed chan struct{}
	// lastEvent is when the latest change arrived.
	lastEvent time.Time
	// gone remembers the last state of Jobs deleted while the UI watched,
	// so the CronJob view can tell a Job Replace deleted while it ran from
	// one the history limit removed after it finished.
	gone map[string]goneJob
}

// goneJob is what the store remembers of a deleted Job.
type goneJob struct {
	Namespace, Name string
	Owner           string // the owning CronJob's name, "" when none
	Active          bool   // it had not finished when it was deleted
	Deleted         time.Time
}

const maxGoneJobs = 5000

// newStore builds the informers; start runs them.
func newStore(client kubernetes.Interface) *store {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(dropManagedFields))
	s := &store{
		factory:      f,
		pods:         f.Core().V1().Pods().Informer(),
		nodes:        f.Core().V1().Nodes().Informer(),
		claims:       f.Core().V1().PersistentVolumeClaims().Informer(),
		volumes:      f.Core().V1().PersistentVolumes().Informer(),
		events:       f.Core().V1().Events().Informer(),
		statefulSets: f.Apps().V1().StatefulSets().Informer(),
		daemonSets:   f.Apps().V1().DaemonSets().Informer(),
		revisions:    f.Apps().V1().ControllerRevisions().Informer(),
		jobs:         f.Batch().V1().Jobs().Informer(),
		cronJobs:     f.Batch().V1().CronJobs().Informer(),
		changed:      make(chan struct{}),
		gone:         map[string]goneJob{},
	}
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.signal() },
		UpdateFunc: func(any, any) { s.signal() },
		DeleteFunc: func(any) { s.signal() },
	}
	for _, inf := range []cache.SharedIndexInformer{s.pods, s.nodes, s.claims, s.volumes, s.events, s.statefulSets, s.daemonSets, s.revisions, s.cronJobs} {
		_, _ = inf.AddEventHandler(notify) // the handle is only needed to remove the handler
	}
	_, _ = s.jobs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.signal() },
		UpdateFunc: func(any, any) { s.signal() },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if job, ok := obj.(*batchv1.Job); ok {
				s.rememberGone(job)
			}
			s.signal()
		},
	})
	return s
}

// start runs the informers until ctx is done and waits (at most until
// syncCtx is done) for their first list.
func (s *store) start(ctx, syncCtx context.Context) error {
	s.factory.Start(ctx.Done())
	for typ, ok := range s.factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("listing %v: %w", typ, context.Cause(syncCtx))
		}
	}
	return nil
}

func (s *store) shutdown() { s.factory.Shutdown() }

func (s *store) signal() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.lastEvent = time.Now()
	s.mu.Unlock()
}

// wait returns a channel closed at the next change.
func (s *store) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *store) rememberGone(job *batchv1.Job) {
	g := goneJob{Namespace: job.Namespace, Name: job.Name, Active: !jobFinished(job), Deleted: time.Now()}
	if ref := metaControllerOf(job.OwnerReferences); ref != nil && ref.Kind == "CronJob" {
		g.Owner = ref.Name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.gone) >= maxGoneJobs {
		for k := range s.gone { // drop an arbitrary one: a bounded memory, not a history
			delete(s.gone, k)
			break
		}
	}
	s.gone[job.Namespace+"/"+job.Name] = g
}

func (s *store) goneJobs() []goneJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]goneJob, 0, len(s.gone))
	for _, g := range s.gone {
		out = append(out, g)
	}
	return out
}

// snapshot is the cluster as the views see it at one moment.
type snapshot struct {
	Now          time.Time
	Pods         []*corev1.Pod
	Nodes        []*corev1.Node
	Claims       []*corev1.PersistentVolumeClaim
	Volumes      []*corev1.PersistentVolume
	Events       []*corev1.Event
	StatefulSets []*appsv1.StatefulSet
	DaemonSets   []*appsv1.DaemonSet
	Revisions    []*appsv1.ControllerRevision
	Jobs         []*batchv1.Job
	CronJobs     []*batchv1.CronJob
	GoneJobs     []goneJob
}

// snapshot lists the informers' caches. The objects are shared with the
// caches: view code reads them and never changes them.
func (s *store) snapshot(now time.Time) *snapshot {
	return &snapshot{
		Now:          now,
		Pods:         list[*corev1.Pod](s.pods),
		Nodes:        list[*corev1.Node](s.nodes),
		Claims:       list[*corev1.PersistentVolumeClaim](s.claims),
		Volumes:      list[*corev1.PersistentVolume](s.volumes),
		Events:       list[*corev1.Event](s.events),
		StatefulSets: list[*appsv1.StatefulSet](s.statefulSets),
		DaemonSets:   list[*appsv1.DaemonSet](s.daemonSets),
		Revisions:    list[*appsv1.ControllerRevision](s.revisions),
		Jobs:         list[*batchv1.Job](s.jobs),
		CronJobs:     list[*batchv1.CronJob](s.cronJobs),
		GoneJobs:     s.goneJobs(),
	}
}

func list[T any](inf cache.SharedIndexInformer) []T {
	var out []T
	_ = cache.ListAll(inf.GetIndexer(), labels.Everything(), func(obj any) { // ListAll fails only on a bad selector
		if t, ok := obj.(T); ok {
			out = append(out, t)
		}
	})
	return out
}

// dropManagedFields keeps the caches small and the YAML readable.
func dropManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil && a.GetManagedFields() != nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}
