package kit

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Upstream's reasons of the events about creating and deleting an owner's
// children: a PodWriter's pods, the CronJob controller's Jobs.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

// PodWriter is every pod write of the DaemonSet and Job controllers, which
// report creations and deletions on the owner with upstream's events.
type PodWriter interface {
	// CreatePod creates pod for owner.
	CreatePod(ctx context.Context, owner Owner, pod *v1.Pod) (*v1.Pod, error)
	// DeletePod deletes the pod namespace/name of owner, only if it still
	// has uid when uid is set. A pod already gone is a NotFound error
	// without an event.
	DeletePod(ctx context.Context, owner Owner, namespace, name string, uid types.UID) error
	// PatchPod applies patch, of type pt, to a pod.
	PatchPod(ctx context.Context, namespace, name string, pt types.PatchType, patch []byte) (*v1.Pod, error)
}

// Owner is an object a controller owns pods for and records events on.
type Owner interface {
	runtime.Object
	metav1.Object
}

var _ PodWriter = (*ClientPodWriter)(nil)

// ClientPodWriter writes pods through a client and records
// SuccessfulCreate, FailedCreate, SuccessfulDelete and FailedDelete on the
// owner, with upstream's messages.
type ClientPodWriter struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
}

// CreatePod implements PodWriter. A create refused because the namespace is
// being deleted records no event: every create fails until it is gone.
func (w *ClientPodWriter) CreatePod(ctx context.Context, owner Owner, pod *v1.Pod) (*v1.Pod, error) {
	created, err := w.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause) {
			w.Recorder.Eventf(owner, v1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		}
		return nil, err
	}
	klog.FromContext(ctx).V(4).Info("Created pod", "owner", klog.KObj(owner), "pod", klog.KObj(created))
	w.Recorder.Eventf(owner, v1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %v", created.Name)
	return created, nil
}

// DeletePod implements PodWriter.
func (w *ClientPodWriter) DeletePod(ctx context.Context, owner Owner, namespace, name string, uid types.UID) error {
	klog.FromContext(ctx).V(2).Info("Deleting pod", "owner", klog.KObj(owner), "pod", klog.KRef(namespace, name))
	opts := metav1.DeleteOptions{}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := w.Client.CoreV1().Pods(namespace).Delete(ctx, name, opts)
	switch {
	case apierrors.IsNotFound(err):
		return err
	case err != nil:
		w.Recorder.Eventf(owner, v1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pod %s: %w", name, err)
	}
	w.Recorder.Eventf(owner, v1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %v", name)
	return nil
}

// PatchPod implements PodWriter.
func (w *ClientPodWriter) PatchPod(ctx context.Context, namespace, name string, pt types.PatchType, patch []byte) (*v1.Pod, error) {
	return w.Client.CoreV1().Pods(namespace).Patch(ctx, name, pt, patch, metav1.PatchOptions{})
}
