package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/internal/controllers/kit"
)

// Config is what Start needs to run a set of controllers.
type Config struct {
	Controllers []Spec
	// InformerClient lists and watches for every controller: one shared
	// informer factory feeds them all.
	InformerClient kubernetes.Interface
	// ClientFor returns the client a controller writes with.
	ClientFor func(Spec) (kubernetes.Interface, error)
	// ManagedBy is kit.Config.ManagedBy: "" when the controllers are the
	// cluster's own, JobManagedBy beside the cluster's Job controller.
	ManagedBy string
}

// Running is a set of controllers that Start started.
type Running struct {
	// Names of the controllers, in start order.
	Names   []string
	done    chan struct{}
	factory informers.SharedInformerFactory
}

// Start builds the controllers, starts their shared informers and runs each
// until ctx is done. The controllers' work queues report to client-go's
// global metrics provider, which the binary sets to Kubernetes' legacy
// registry, under upstream's queue names.
func Start(ctx context.Context, cfg Config) (*Running, error) {
	if cfg.InformerClient == nil || cfg.ClientFor == nil {
		return nil, errors.New("manager.Start: InformerClient and ClientFor are required")
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cfg.InformerClient, 0, informers.WithTransform(dropManagedFields))
	r := &Running{done: make(chan struct{}), factory: factory}
	var runs []func()
	for _, spec := range cfg.Controllers {
		client, err := cfg.ClientFor(spec)
		if err != nil {
			return nil, fmt.Errorf("%s controller: %w", spec.Name, err)
		}
		ctrl, err := spec.New(kit.Config{Client: client, Informers: factory, ManagedBy: cfg.ManagedBy})
		if err != nil {
			return nil, fmt.Errorf("%s controller: %w", spec.Name, err)
		}
		if register := controllerMetrics[spec.Name]; register != nil {
			register()
		}
		runs = append(runs, func() { ctrl.Run(ctx, spec.Workers) })
		r.Names = append(r.Names, spec.Name)
	}
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(run)
	}
	factory.Start(ctx.Done())
	go func() {
		wg.Wait()
		factory.Shutdown()
		close(r.done)
	}()
	return r, nil
}

// Done is closed once every controller has returned (after ctx is done)
// and the informers have stopped.
func (r *Running) Done() <-chan struct{} { return r.done }

// Synced reports whether every informer the controllers use has synced.
func (r *Running) Synced() bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // look, do not wait
	for _, ok := range r.factory.WaitForCacheSyncWithContext(ctx).Synced {
		if !ok {
			return false
		}
	}
	return true
}

// dropManagedFields strips managed fields from what the informers cache:
// no controller reads them, and they are a large part of every object.
func dropManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil && a.GetManagedFields() != nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}
