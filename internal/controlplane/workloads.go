package controlplane

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"k8s.io/client-go/informers"

	"quartet.dev/quartet/internal/component"
	"quartet.dev/quartet/internal/controllers"
)

// WorkloadControllers are the StatefulSet, DaemonSet, Job, CronJob and
// TTL-after-finished controllers: quartet's own, or upstream's in reference
// mode. Their goroutines carry the workload-controllers pprof label.
func (c *Cluster) WorkloadControllers() component.Component {
	switch c.Mode {
	case ModeUpstream:
		return component.Component{Name: "upstream controllers", Start: func(ctx context.Context, _ component.Progress) (string, func() error, error) {
			cfg := c.kcmConfig()
			cfg.Kubeconfig = c.certs.workloadsKubeconfig
			errc := make(chan error, 1)
			go func() {
				errc <- withWorkloadLabel(ctx, func(ctx context.Context) error { return runUpstreamWorkloadControllers(ctx, cfg) })
			}()
			return "statefulset, daemonset, job, cronjob, ttl-after-finished (reference mode)", func() error { return <-errc }, nil
		}}
	case ModeNone:
		return component.Component{Name: "workload controllers", Start: func(context.Context, component.Progress) (string, func() error, error) {
			return "none (--workload-controllers none)", nil, nil
		}}
	}
	return component.Component{Name: "quartet controllers", Start: func(ctx context.Context, _ component.Progress) (string, func() error, error) {
		var names string
		var wait func() error
		err := withWorkloadLabel(ctx, func(ctx context.Context) (err error) {
			names, wait, err = c.startWorkloadControllers(ctx)
			return err
		})
		return names, wait, err
	}}
}

// startWorkloadControllers constructs quartet's controllers, starts their
// shared informers and runs them until ctx is done. It returns their names
// for the progress line.
func (c *Cluster) startWorkloadControllers(ctx context.Context) (string, func() error, error) {
	// The shared informers list and watch with an identity of their own,
	// as upstream's do in upstream mode; each controller writes with its own.
	informerClient, _, err := c.ClientFor(userWorkloadInformers)
	if err != nil {
		return "", nil, err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(informerClient, 0, informers.WithTransform(dropManagedFields))
	var names []string
	var ctrls []func()
	for _, spec := range controllers.All {
		client, _, err := c.ClientFor(controllerUser(spec.ServiceAccount), controllerGroups...)
		if err != nil {
			return "", nil, err
		}
		ctrl, err := spec.New(controllers.Config{Client: client, Informers: factory})
		if err != nil {
			return "", nil, fmt.Errorf("%s controller: %w", spec.Name, err)
		}
		ctrls = append(ctrls, func() { ctrl.Run(ctx, spec.Workers) })
		names = append(names, spec.Name)
	}
	var wg sync.WaitGroup
	for _, run := range ctrls {
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	factory.Start(ctx.Done())
	wait := func() error {
		wg.Wait()
		factory.Shutdown()
		return nil
	}
	return strings.Join(names, ", "), wait, nil
}
