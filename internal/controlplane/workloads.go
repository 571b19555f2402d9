package controlplane

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/client-go/informers"

	"quartet.dev/quartet/internal/controllers"
	"quartet.dev/quartet/internal/controllers/cronjob"
	"quartet.dev/quartet/internal/controllers/daemonset"
	"quartet.dev/quartet/internal/controllers/job"
	"quartet.dev/quartet/internal/controllers/statefulset"
	"quartet.dev/quartet/internal/controllers/ttlafterfinished"
)

// workloadController is one of quartet's own workload controllers.
type workloadController struct {
	name string
	// serviceAccount is the name of upstream's controller service account
	// whose bootstrap RBAC this controller runs with.
	serviceAccount string
	workers        int
	new            func(controllers.Config) (controllers.Controller, error)
}

// workloadControllers lists quartet's controllers in the order they start.
// Worker counts are upstream's kube-controller-manager defaults, except
// CronJob: every CronJob on the same schedule comes due at once, and each
// run is two writes, so a thousand of them need more than five workers to
// start within a second.
var workloadControllers = []workloadController{
	{name: "statefulset", serviceAccount: "statefulset-controller", workers: 5, new: adapt(statefulset.New)},
	{name: "daemonset", serviceAccount: "daemon-set-controller", workers: 2, new: adapt(daemonset.New)},
	{name: "job", serviceAccount: "job-controller", workers: 5, new: adapt(job.New)},
	{name: "cronjob", serviceAccount: "cronjob-controller", workers: 32, new: adapt(cronjob.New)},
	{name: "ttlafterfinished", serviceAccount: "ttl-after-finished-controller", workers: 5, new: adapt(ttlafterfinished.New)},
}

// adapt turns a controller package's New into the registry's signature.
func adapt[C controllers.Controller](newFn func(controllers.Config) (C, error)) func(controllers.Config) (controllers.Controller, error) {
	return func(cfg controllers.Config) (controllers.Controller, error) {
		c, err := newFn(cfg)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// startWorkloadControllers constructs quartet's controllers, starts their
// shared informers and runs them in g. It returns their names for the
// progress line.
func startWorkloadControllers(ctx context.Context, g *group, c *Cluster) (string, error) {
	if len(workloadControllers) == 0 {
		return "none built yet", nil
	}
	// The shared informers list and watch with an identity of their own,
	// as upstream's do in upstream mode; each controller writes with its own.
	informerClient, _, err := c.ClientFor(userWorkloadInformers)
	if err != nil {
		return "", err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(informerClient, 0, informers.WithTransform(dropManagedFields))
	var names []string
	for _, wc := range workloadControllers {
		client, _, err := c.ClientFor(controllerUser(wc.serviceAccount), controllerGroups...)
		if err != nil {
			return "", err
		}
		ctrl, err := wc.new(controllers.Config{Client: client, Informers: factory})
		if err != nil {
			return "", fmt.Errorf("%s controller: %w", wc.name, err)
		}
		g.Go(wc.name+" controller", func() error {
			ctrl.Run(ctx, wc.workers)
			return nil
		})
		names = append(names, wc.name)
	}
	factory.Start(ctx.Done())
	return strings.Join(names, ", "), nil
}
