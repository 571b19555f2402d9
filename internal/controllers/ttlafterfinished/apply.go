package ttlafterfinished

import (
	"context"
	"sync"

	batch "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

var (
	_ jobDeleter = (*realJobDeleter)(nil)
	_ jobDeleter = (*fakeJobDeleter)(nil)
)

type realJobDeleter struct {
	client kubernetes.Interface
}

func (d *realJobDeleter) getFresh(ctx context.Context, namespace, name string) (*batch.Job, error) {
	return d.client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
}

// deleteJob deletes in the foreground, as upstream does: the garbage
// collector removes the pods, then the Job. The uid precondition keeps a new
// Job of the same name safe.
func (d *realJobDeleter) deleteJob(ctx context.Context, namespace, name string, uid types.UID) error {
	policy := metav1.DeletePropagationForeground
	return d.client.BatchV1().Jobs(namespace).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
}

// fakeJobDeleter serves fresh Jobs from a map and records deletions.
type fakeJobDeleter struct {
	mu      sync.Mutex
	jobs    map[string]*batch.Job
	deleted []string
	err     error
}

func (f *fakeJobDeleter) getFresh(_ context.Context, namespace, name string) (*batch.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	job, ok := f.jobs[namespace+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(batch.Resource("jobs"), name)
	}
	return job.DeepCopy(), nil
}

func (f *fakeJobDeleter) deleteJob(_ context.Context, namespace, name string, uid types.UID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.deleted = append(f.deleted, namespace+"/"+name+"@"+string(uid))
	return nil
}
