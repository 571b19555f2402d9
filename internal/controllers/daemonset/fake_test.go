package daemonset

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"quartet.dev/quartet/internal/controllers/kit"
)

// recordingPodControl records the pod writes a sync sends; createErr, when
// set, decides the outcome of the n-th create (1-based).
type recordingPodControl struct {
	mu        sync.Mutex
	creates   int
	created   []*corev1.Pod
	deleted   []string
	patches   []string
	createErr func(n int) error
	deleteErr error
}

var _ kit.PodWriter = (*recordingPodControl)(nil)

func (r *recordingPodControl) CreatePod(_ context.Context, _ kit.Owner, pod *corev1.Pod) (*corev1.Pod, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.creates++
	if r.createErr != nil {
		if err := r.createErr(r.creates); err != nil {
			return nil, err
		}
	}
	pod = pod.DeepCopy()
	pod.Name = fmt.Sprintf("%s%05d", pod.GenerateName, r.creates)
	r.created = append(r.created, pod)
	return pod, nil
}

func (r *recordingPodControl) DeletePod(_ context.Context, _ kit.Owner, _, name string, _ types.UID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = append(r.deleted, name)
	return r.deleteErr
}

func (r *recordingPodControl) PatchPod(_ context.Context, namespace, name string, pt types.PatchType, patch []byte) (*corev1.Pod, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.patches = append(r.patches, fmt.Sprintf("%s/%s %s %s", namespace, name, pt, patch))
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}, nil
}

// dsResource is where the fake apiserver keeps DaemonSets.
var dsResource = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
