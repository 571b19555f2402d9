package node

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// podWriter is every write the agents make to pods.
type podWriter interface {
	// PatchStatus applies a strategic merge patch to the pod's status.
	PatchStatus(ctx context.Context, pod *v1.Pod, patch []byte) error
	// DeleteFinal deletes a pod whose containers have all stopped: grace
	// period 0, guarded by its UID.
	DeleteFinal(ctx context.Context, pod *v1.Pod) error
}

// apiPodWriter writes as the pod's node (clientOf).
type apiPodWriter struct {
	clientOf func(pod *v1.Pod) kubernetes.Interface
}

var _ podWriter = (*apiPodWriter)(nil)

func (w *apiPodWriter) PatchStatus(ctx context.Context, pod *v1.Pod, patch []byte) error {
	_, err := w.clientOf(pod).CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

func (w *apiPodWriter) DeleteFinal(ctx context.Context, pod *v1.Pod) error {
	zero := int64(0)
	uid := pod.UID
	return w.clientOf(pod).CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
}

// recordingPodWriter records writes instead of making them (tests).
type recordingPodWriter struct {
	mu      sync.Mutex
	patches map[string][]string // pod name -> patches
	deletes []string
}

var _ podWriter = (*recordingPodWriter)(nil)

func (w *recordingPodWriter) PatchStatus(_ context.Context, pod *v1.Pod, patch []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.patches == nil {
		w.patches = map[string][]string{}
	}
	w.patches[pod.Name] = append(w.patches[pod.Name], string(patch))
	return nil
}

func (w *recordingPodWriter) DeleteFinal(_ context.Context, pod *v1.Pod) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deletes = append(w.deletes, pod.Name)
	return nil
}

func (w *recordingPodWriter) patchesOf(name string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.patches[name]...)
}
