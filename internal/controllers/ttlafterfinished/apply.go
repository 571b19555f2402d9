package ttlafterfinished

import (
	"context"

	batch "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// jobDeleter is every API call the controller makes. The
// ttl-after-finished-controller role allows get and delete on Jobs.
type jobDeleter interface {
	// getFresh reads the Job from the apiserver, not the cache.
	getFresh(ctx context.Context, namespace, name string) (*batch.Job, error)
	// deleteJob deletes the Job with that uid, its pods first.
	deleteJob(ctx context.Context, namespace, name string, uid types.UID) error
}

var _ jobDeleter = (*clientJobDeleter)(nil)

type clientJobDeleter struct {
	client kubernetes.Interface
}

func (d *clientJobDeleter) getFresh(ctx context.Context, namespace, name string) (*batch.Job, error) {
	return d.client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
}

// deleteJob deletes in the foreground, as upstream does: the garbage
// collector removes the pods, then the Job. The uid precondition keeps a new
// Job of the same name safe.
func (d *clientJobDeleter) deleteJob(ctx context.Context, namespace, name string, uid types.UID) error {
	policy := metav1.DeletePropagationForeground
	return d.client.BatchV1().Jobs(namespace).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
}
