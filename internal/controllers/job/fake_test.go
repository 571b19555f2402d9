package job

import (
	"context"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"quartet.dev/quartet/internal/controllers/kit"
)

var _ kit.PodWriter = (*fakePodWriter)(nil)

// fakePodWriter records pod writes in memory; errors can be injected per
// call kind.
type fakePodWriter struct {
	mu      sync.Mutex
	created []*v1.Pod
	deleted []string
	patched []string
	patches []string
	// createErr, when set, decides the error for each creation.
	createErr func(pod *v1.Pod) error
	deleteErr func(name string) error
	patchErr  func(name string) error
	seq       int
}

func (f *fakePodWriter) CreatePod(_ context.Context, _ kit.Owner, pod *v1.Pod) (*v1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		if err := f.createErr(pod); err != nil {
			return nil, err
		}
	}
	f.seq++
	created := pod.DeepCopy()
	created.Name = fmt.Sprintf("%s%05d", pod.GenerateName, f.seq)
	created.UID = types.UID(fmt.Sprintf("created-%d", f.seq))
	f.created = append(f.created, created)
	return created, nil
}

func (f *fakePodWriter) DeletePod(_ context.Context, _ kit.Owner, _, name string, _ types.UID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		if err := f.deleteErr(name); err != nil {
			return err
		}
	}
	f.deleted = append(f.deleted, name)
	return nil
}

func (f *fakePodWriter) PatchPod(_ context.Context, namespace, name string, _ types.PatchType, patch []byte) (*v1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.patchErr != nil {
		if err := f.patchErr(name); err != nil {
			return nil, err
		}
	}
	f.patched = append(f.patched, name)
	f.patches = append(f.patches, string(patch))
	p := &v1.Pod{}
	p.Namespace, p.Name, p.UID = namespace, name, types.UID(name)
	return p, nil
}
