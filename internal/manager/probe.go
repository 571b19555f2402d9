package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// ProbeLabel marks the objects the probe creates.
const ProbeLabel = "quartet.dev/upstream-probe"

// Probed lists the controllers whose objects have no spec.managedBy, so
// that two controllers of their kind in one cluster would both act on every
// object: the probe refuses to start them beside the cluster's own. The Job
// controller is probed too when it takes over the Jobs without
// spec.managedBy (--take-over-jobs), for the same reason.
var Probed = []string{"statefulset", "daemonset", "cronjob"}

// UpstreamError says that another controller acts on the objects of a kind
// quartet was asked to control.
type UpstreamError struct {
	Controller string
	Object     string // namespace/name of the probe object
	Manager    string // the field manager of the write seen
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("another %s controller is running in this cluster: it wrote the status of the probe %s (field manager %q)",
		e.Controller, e.Object, e.Manager)
}

// ProbeUpstream checks whether another controller of each named kind
// (statefulset, daemonset, cronjob, job; others are ignored) acts in the
// cluster: it creates in namespace an object that any such controller writes
// the status of at once and that makes nothing (a StatefulSet of 0 replicas,
// a DaemonSet for no node, a suspended CronJob whose status names a Job that
// does not exist, a suspended Job without spec.managedBy, which a Job
// controller marks Suspended), and waits up to timeout for a status write by a field
// manager other than self (quartet's own replicas write as self). It deletes
// what it created. The answer is one UpstreamError per kind that another
// controller serves, joined.
func ProbeUpstream(ctx context.Context, client kubernetes.Interface, namespace, self string, names []string, timeout time.Duration) error {
	probes := map[string]func(kubernetes.Interface, string, string) probe{
		"statefulset": statefulSetProbe, "daemonset": daemonSetProbe, "cronjob": cronJobProbe, "job": jobProbe,
	}
	results := make(chan error, len(names))
	n := 0
	for _, kind := range names {
		newProbe, ok := probes[kind]
		if !ok {
			continue
		}
		n++
		p := newProbe(client, namespace, self)
		go func() { results <- p.run(ctx, kind, namespace, timeout) }()
	}
	var errs []error
	for range n {
		if err := <-results; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// probe is the probe for one kind: create its object, tell who else wrote
// its status ("": nobody yet), delete it.
type probe struct {
	create func(ctx context.Context, name string) error
	wrote  func(ctx context.Context, name string) (string, error)
	remove func(ctx context.Context, name string) error
}

// objects is what a probe needs of a kind's typed client.
type objects[T metav1.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// objectProbe creates object(name) through c and tells whether another
// field manager than self wrote its status.
func objectProbe[T metav1.Object](c objects[T], object func(name string) T, self string, del metav1.DeleteOptions) probe {
	return probe{
		create: func(ctx context.Context, name string) error {
			_, err := c.Create(ctx, object(name), metav1.CreateOptions{})
			return err
		},
		wrote: func(ctx context.Context, name string) (string, error) {
			o, err := c.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			return statusWriter(o.GetManagedFields(), self), nil
		},
		remove: func(ctx context.Context, name string) error {
			return c.Delete(ctx, name, del)
		},
	}
}

func statefulSetProbe(client kubernetes.Interface, namespace, self string) probe {
	return objectProbe(client.AppsV1().StatefulSets(namespace), probeStatefulSet, self, metav1.DeleteOptions{})
}

func daemonSetProbe(client kubernetes.Interface, namespace, self string) probe {
	return objectProbe(client.AppsV1().DaemonSets(namespace), probeDaemonSet, self, metav1.DeleteOptions{})
}

func cronJobProbe(client kubernetes.Interface, namespace, self string) probe {
	cronJobs := client.BatchV1().CronJobs(namespace)
	return probe{
		create: func(ctx context.Context, name string) error {
			cj, err := cronJobs.Create(ctx, probeCronJob(name), metav1.CreateOptions{})
			if err != nil {
				return err
			}
			// A CronJob controller drops from status.active a Job that
			// does not exist, suspended or not.
			cj.Status.Active = []corev1.ObjectReference{{
				APIVersion: "batch/v1", Kind: "Job", Namespace: namespace, Name: name + "-missing", UID: types.UID(utilrand.String(16)),
			}}
			_, err = cronJobs.UpdateStatus(ctx, cj, metav1.UpdateOptions{})
			return err
		},
		wrote: func(ctx context.Context, name string) (string, error) {
			cj, err := cronJobs.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			if len(cj.Status.Active) > 0 {
				return "", nil
			}
			return statusWriter(cj.ManagedFields, self), nil
		},
		remove: func(ctx context.Context, name string) error {
			return cronJobs.Delete(ctx, name, metav1.DeleteOptions{})
		},
	}
}

func jobProbe(client kubernetes.Interface, namespace, self string) probe {
	return objectProbe(client.BatchV1().Jobs(namespace), probeJob, self,
		metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
}

// run creates one probe object, waits for another controller to write its
// status, and deletes it.
func (p probe) run(ctx context.Context, kind, namespace string, timeout time.Duration) error {
	name := "quartet-probe-" + kind + "-" + utilrand.String(5)
	if err := p.create(ctx, name); err != nil {
		return fmt.Errorf("probing for another %s controller: creating %s/%s: %w", kind, namespace, name, err)
	}
	var manager string
	// The reads use ctx, not the poll's context: the client's rate limiter
	// refuses a wait that would pass the poll's deadline, which is the
	// probe's expected end, not an error.
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		m, err := p.wrote(ctx, name)
		manager = m
		return m != "", err
	})
	var answer error
	switch {
	case err == nil:
		answer = &UpstreamError{Controller: kind, Object: namespace + "/" + name, Manager: manager}
	case wait.Interrupted(err) && ctx.Err() == nil:
		// Nobody else wrote: no other controller of this kind.
	default:
		answer = fmt.Errorf("probing for another %s controller: %w", kind, err)
	}
	// Deleted on a context of its own: the probe's may be done.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.remove(dctx, name); err != nil && !apierrors.IsNotFound(err) {
		answer = errors.Join(answer, fmt.Errorf("deleting the probe %s/%s: %w", namespace, name, err))
	}
	return answer
}

// statusWriter returns the first field manager other than self that wrote
// the status subresource, or "".
func statusWriter(fields []metav1.ManagedFieldsEntry, self string) string {
	for _, f := range fields {
		if f.Subresource == "status" && f.Manager != self && !strings.HasPrefix(f.Manager, self+"/") {
			return f.Manager
		}
	}
	return ""
}

func probeLabels(name string) map[string]string {
	return map[string]string{ProbeLabel: name}
}

func probePod(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: probeLabels(name)},
		Spec: corev1.PodSpec{
			// Within the restricted Pod Security level of deploy/'s
			// namespace, so that creating the probe draws no warning.
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{Name: "probe", Image: "registry.k8s.io/pause:3.10",
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				}}},
			// A DaemonSet's pods would need a node labelled so: none is.
			NodeSelector: map[string]string{ProbeLabel: "no-node"},
		},
	}
}

func probeStatefulSet(name string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: probeLabels(name)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](0),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: probeLabels(name)},
			Template:    probePod(name),
		},
	}
}

func probeDaemonSet(name string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: probeLabels(name)},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: probeLabels(name)},
			Template: probePod(name),
		},
	}
}

func probeCronJob(name string) *batchv1.CronJob {
	pod := probePod(name)
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: probeLabels(name)},
		Spec: batchv1.CronJobSpec{
			Schedule: "0 0 1 1 *",
			Suspend:  ptr.To(true),
			JobTemplate: batchv1.JobTemplateSpec{
				Spec: batchv1.JobSpec{Template: pod},
			},
		},
	}
}

func probeJob(name string) *batchv1.Job {
	pod := probePod(name)
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: probeLabels(name)},
		Spec:       batchv1.JobSpec{Suspend: ptr.To(true), Template: pod},
	}
}
