package controlplane

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/internal/component"
	"quartet.dev/quartet/internal/controllers"
	"quartet.dev/quartet/internal/manager"
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

// startWorkloadControllers starts quartet's controllers through the wiring
// `quartet controllers` uses (manager.Start), with the identities of
// `quartet up`: the shared informers list and watch as one identity of their
// own, as upstream's do in upstream mode, and each controller writes as
// upstream's controller service account of its kind. It returns their names
// for the progress line.
func (c *Cluster) startWorkloadControllers(ctx context.Context) (string, func() error, error) {
	informerClient, err := c.protobufClientFor(userWorkloadInformers)
	if err != nil {
		return "", nil, err
	}
	running, err := manager.Start(ctx, manager.Config{
		Controllers:    controllers.All,
		InformerClient: informerClient,
		ClientFor: func(spec controllers.Spec) (kubernetes.Interface, error) {
			return c.protobufClientFor(controllerUser(spec.ServiceAccount), controllerGroups...)
		},
	})
	if err != nil {
		return "", nil, err
	}
	wait := func() error {
		<-running.Done()
		return nil
	}
	return strings.Join(running.Names, ", "), wait, nil
}

// protobufClientFor is ClientFor speaking protobuf, as kube-controller-manager's
// clients do (its --kube-api-content-type default): upstream's controllers
// in reference mode get it from kcm's options, so both modes pay the same
// for encoding and decoding. JSON cost quartet's controllers about twice
// upstream's CPU in their requests and watches (issue 18's breakdown).
func (c *Cluster) protobufClientFor(user string, groups ...string) (kubernetes.Interface, error) {
	_, rc, err := c.ClientFor(user, groups...)
	if err != nil {
		return nil, err
	}
	rc.ContentType = runtime.ContentTypeProtobuf
	rc.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return kubernetes.NewForConfig(rc)
}
