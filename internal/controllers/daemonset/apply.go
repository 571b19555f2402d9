package daemonset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// podControl writes the set's pods. The real one also records the
// SuccessfulCreate, FailedCreate, SuccessfulDelete and FailedDelete events.
type podControl interface {
	// createPod creates pod for set and returns the created pod.
	createPod(ctx context.Context, set *appsv1.DaemonSet, pod *corev1.Pod) (*corev1.Pod, error)
	// deletePod deletes the set's pod name; a pod already gone is a NotFound
	// error without an event.
	deletePod(ctx context.Context, set *appsv1.DaemonSet, name string) error
	// patchPod applies patch (of type pt) to a pod.
	patchPod(ctx context.Context, namespace, name string, pt types.PatchType, patch []byte) error
}

// revisionControl writes the set's ControllerRevisions.
type revisionControl interface {
	createRevision(ctx context.Context, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error)
	getRevision(ctx context.Context, namespace, name string) (*appsv1.ControllerRevision, error)
	updateRevision(ctx context.Context, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error)
	patchRevision(ctx context.Context, namespace, name string, patch []byte) error
	deleteRevision(ctx context.Context, namespace, name string) error
}

// setControl reads the set past the informer cache and writes its status.
type setControl interface {
	getSet(ctx context.Context, namespace, name string) (*appsv1.DaemonSet, error)
	updateStatus(ctx context.Context, set *appsv1.DaemonSet) (*appsv1.DaemonSet, error)
}

var (
	_ podControl      = (*realPodControl)(nil)
	_ revisionControl = (*realRevisionControl)(nil)
	_ setControl      = (*realSetControl)(nil)
)

type realPodControl struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
}

func (r *realPodControl) createPod(ctx context.Context, set *appsv1.DaemonSet, pod *corev1.Pod) (*corev1.Pod, error) {
	created, err := r.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		// Creates into a namespace being torn down fail by design; no event.
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			r.recorder.Eventf(set, corev1.EventTypeWarning, reasonFailedCreate, "Error creating: %v", err)
		}
		return nil, err
	}
	klog.FromContext(ctx).V(4).Info("Created daemon pod", "daemonset", klog.KObj(set), "pod", klog.KObj(created))
	r.recorder.Eventf(set, corev1.EventTypeNormal, reasonSuccessfulCreate, "Created pod: %v", created.Name)
	return created, nil
}

func (r *realPodControl) deletePod(ctx context.Context, set *appsv1.DaemonSet, name string) error {
	klog.FromContext(ctx).V(2).Info("Deleting daemon pod", "daemonset", klog.KObj(set), "pod", klog.KRef(set.Namespace, name))
	err := r.client.CoreV1().Pods(set.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return err
	case err != nil:
		r.recorder.Eventf(set, corev1.EventTypeWarning, reasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pods: %w", err)
	}
	r.recorder.Eventf(set, corev1.EventTypeNormal, reasonSuccessfulDelete, "Deleted pod: %v", name)
	return nil
}

func (r *realPodControl) patchPod(ctx context.Context, namespace, name string, pt types.PatchType, patch []byte) error {
	_, err := r.client.CoreV1().Pods(namespace).Patch(ctx, name, pt, patch, metav1.PatchOptions{})
	return err
}

type realRevisionControl struct {
	client kubernetes.Interface
}

func (r *realRevisionControl) createRevision(ctx context.Context, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	return r.client.AppsV1().ControllerRevisions(rev.Namespace).Create(ctx, rev, metav1.CreateOptions{})
}

func (r *realRevisionControl) getRevision(ctx context.Context, namespace, name string) (*appsv1.ControllerRevision, error) {
	return r.client.AppsV1().ControllerRevisions(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (r *realRevisionControl) updateRevision(ctx context.Context, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	return r.client.AppsV1().ControllerRevisions(rev.Namespace).Update(ctx, rev, metav1.UpdateOptions{})
}

func (r *realRevisionControl) patchRevision(ctx context.Context, namespace, name string, patch []byte) error {
	_, err := r.client.AppsV1().ControllerRevisions(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

func (r *realRevisionControl) deleteRevision(ctx context.Context, namespace, name string) error {
	return r.client.AppsV1().ControllerRevisions(namespace).Delete(ctx, name, metav1.DeleteOptions{})
}

type realSetControl struct {
	client kubernetes.Interface
}

func (r *realSetControl) getSet(ctx context.Context, namespace, name string) (*appsv1.DaemonSet, error) {
	return r.client.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (r *realSetControl) updateStatus(ctx context.Context, set *appsv1.DaemonSet) (*appsv1.DaemonSet, error) {
	return r.client.AppsV1().DaemonSets(set.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{})
}
