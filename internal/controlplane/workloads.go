package controlplane

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/client-go/informers"

	"quartet.dev/quartet/internal/controllers"
)

// startWorkloadControllers constructs quartet's controllers, starts their
// shared informers and runs them in g. It returns their names for the
// progress line.
func startWorkloadControllers(ctx context.Context, g *group, c *Cluster) (string, error) {
	// The shared informers list and watch with an identity of their own,
	// as upstream's do in upstream mode; each controller writes with its own.
	informerClient, _, err := c.ClientFor(userWorkloadInformers)
	if err != nil {
		return "", err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(informerClient, 0, informers.WithTransform(dropManagedFields))
	var names []string
	for _, spec := range controllers.All {
		client, _, err := c.ClientFor(controllerUser(spec.ServiceAccount), controllerGroups...)
		if err != nil {
			return "", err
		}
		ctrl, err := spec.New(controllers.Config{Client: client, Informers: factory})
		if err != nil {
			return "", fmt.Errorf("%s controller: %w", spec.Name, err)
		}
		g.Go(spec.Name+" controller", func() error {
			ctrl.Run(ctx, spec.Workers)
			return nil
		})
		names = append(names, spec.Name)
	}
	factory.Start(ctx.Done())
	return strings.Join(names, ", "), nil
}
