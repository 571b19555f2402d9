package kit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Base is the part of a controller that is the same for every kind: its
// client and clock, its event recorder, the caches it waits for and the work
// queues it runs. A controller embeds it and so gets Run.
type Base struct {
	// Name names the controller in logs.
	Name   string
	Client kubernetes.Interface
	Clock  clock.WithTicker
	// Recorder records events on the objects the controller owns, from the
	// source upstream's controller of the same kind uses. Tests may replace
	// it before Run.
	Recorder record.EventRecorder

	broadcaster record.EventBroadcaster
	metrics     workqueue.MetricsProvider
	synced      []cache.InformerSynced
	queues      []interface {
		work(ctx context.Context)
		ShutDown()
	}
	chores []func(context.Context)
}

var _ Controller = (*Base)(nil)

// NewBase checks cfg and makes a controller's Base. eventSource is the
// component its events come from; "" for a controller that records none.
func NewBase(cfg Config, name, eventSource string) (*Base, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New(name + " controller: Config.Client and Config.Informers are required")
	}
	b := &Base{Name: name, Client: cfg.Client, Clock: cmp.Or[clock.WithTicker](cfg.Clock, clock.RealClock{}), metrics: cfg.QueueMetrics}
	if eventSource != "" {
		b.broadcaster = record.NewBroadcaster()
		b.Recorder = b.broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: eventSource})
	}
	return b, nil
}

// Watch registers handlers on informer; Run works the queues only once each
// handler has been handed the informer's initial list.
func (b *Base) Watch(informer cache.SharedIndexInformer, handlers ...cache.ResourceEventHandler) error {
	for _, h := range handlers {
		reg, err := informer.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("%s controller: adding an event handler: %w", b.Name, err)
		}
		b.synced = append(b.synced, reg.HasSynced)
	}
	return nil
}

// WaitFor adds caches that must have synced before the queues are worked.
func (b *Base) WaitFor(synced ...cache.InformerSynced) {
	b.synced = append(b.synced, synced...)
}

// Every has Run call fn every period while the controller runs.
func (b *Base) Every(period time.Duration, fn func(context.Context)) {
	b.chores = append(b.chores, func(ctx context.Context) { wait.UntilWithContext(ctx, fn, period) })
}

// Run records events to the apiserver, waits for the caches, and works each
// queue with workers goroutines until ctx is done.
func (b *Base) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx).WithValues("controller", b.Name)
	if b.broadcaster != nil {
		b.broadcaster.StartStructuredLogging(3)
		b.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: b.Client.CoreV1().Events("")})
		defer b.broadcaster.Shutdown()
	}
	logger.Info("Starting controller", "workers", workers)
	var running sync.WaitGroup
	defer func() {
		logger.Info("Shutting down controller")
		for _, q := range b.queues {
			q.ShutDown()
		}
		running.Wait()
	}()
	if !cache.WaitForNamedCacheSyncWithContext(ctx, b.synced...) {
		return
	}
	for _, q := range b.queues {
		for range max(workers, 1) {
			running.Go(func() { wait.UntilWithContext(ctx, q.work, time.Second) })
		}
	}
	for _, chore := range b.chores {
		running.Go(func() { chore(ctx) })
	}
	<-ctx.Done()
}

// Cached returns the object an informer's store holds under key, a work
// queue's "namespace/name": ok is false when it holds none, because the
// object is gone and its sync has nothing to do. The object is the cache's
// own: a sync copies it before changing it.
func Cached[T any](store Store, key string) (obj T, ok bool, err error) {
	item, exists, err := store.GetByKey(key)
	if err != nil || !exists {
		return obj, false, err
	}
	obj, ok = item.(T)
	return obj, ok, nil
}

// Queue is a rate-limited work queue of keys and the sync that processes one.
// A sync returns how soon the key wants another look (0: only when an event
// brings it back) or an error, which retries the key with the queue's
// back-off; a key that wants a look after an error gets both.
type Queue[K comparable] struct {
	workqueue.TypedRateLimitingInterface[K]
	name string
	sync func(ctx context.Context, key K) (time.Duration, error)
}

// NewQueue makes a queue that Run works. name is upstream's name for the same
// controller's queue, so that its metrics read the same; limiter nil is
// client-go's default controller rate limiter.
func NewQueue[K comparable](b *Base, name string, limiter workqueue.TypedRateLimiter[K], sync func(context.Context, K) (time.Duration, error)) *Queue[K] {
	if limiter == nil {
		limiter = workqueue.DefaultTypedControllerRateLimiter[K]()
	}
	q := &Queue[K]{
		TypedRateLimitingInterface: workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[K]{
			Name: name, Clock: b.Clock, MetricsProvider: b.metrics,
		}),
		name: name,
		sync: sync,
	}
	b.queues = append(b.queues, q)
	return q
}

func (q *Queue[K]) work(ctx context.Context) {
	for q.next(ctx) {
	}
}

// next processes one key; it returns false once the queue is shut down.
func (q *Queue[K]) next(ctx context.Context) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	after, err := q.sync(ctx, key)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Sync failed, will retry", "queue", q.name, "key", key)
		q.AddRateLimited(key)
	} else {
		q.Forget(key)
	}
	if after > 0 {
		q.AddAfter(key, after)
	}
	return true
}
