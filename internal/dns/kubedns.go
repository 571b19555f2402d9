package dns

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

const (
	kubeDNSName      = "kube-dns"
	kubeDNSNamespace = metav1.NamespaceSystem
)

// kubeDNSService is the Service that makes cluster DNS discoverable as in
// other clusters: kube-system/kube-dns, label k8s-app=kube-dns, ports 53/UDP
// "dns", 53/TCP "dns-tcp" and 9153/TCP "metrics". It has no selector: the
// server runs inside the quartet process, not in a pod, so the Service has no
// endpoints.
func kubeDNSService(clusterIP string) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:      kubeDNSName,
			Namespace: kubeDNSNamespace,
			Labels: map[string]string{
				"k8s-app":                       "kube-dns",
				"kubernetes.io/cluster-service": "true",
				"kubernetes.io/name":            "quartet-dns",
			},
		},
		Spec: v1.ServiceSpec{
			Type:      v1.ServiceTypeClusterIP,
			ClusterIP: clusterIP,
			Ports: []v1.ServicePort{
				{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Protocol: v1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Protocol: v1.ProtocolTCP, Port: 9153, TargetPort: intstr.FromInt32(9153)},
			},
		},
	}
}

// EnsureKubeDNSService creates the Service kube-dns in kube-system, or brings
// the labels and ports of an existing one back to quartet's. clusterIP ""
// lets the apiserver allocate one; a different clusterIP on an existing
// Service is an error, since a ClusterIP cannot change.
func EnsureKubeDNSService(ctx context.Context, c kubernetes.Interface, clusterIP string) error {
	want := kubeDNSService(clusterIP)
	services := c.CoreV1().Services(kubeDNSNamespace)
	// Look before creating: the apiserver allocates the ClusterIP before it
	// checks the name, so creating an existing Service with the same fixed
	// ClusterIP fails with "provided IP is already allocated", not
	// AlreadyExists.
	_, err := services.Get(ctx, kubeDNSName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = services.Create(ctx, want, metav1.CreateOptions{})
		if err == nil || !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return fmt.Errorf("create Service %s/%s: %w", kubeDNSNamespace, kubeDNSName, err)
			}
			return nil
		}
	} else if err != nil {
		return fmt.Errorf("read Service %s/%s: %w", kubeDNSNamespace, kubeDNSName, err)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		have, err := services.Get(ctx, kubeDNSName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read Service %s/%s: %w", kubeDNSNamespace, kubeDNSName, err)
		}
		if clusterIP != "" && have.Spec.ClusterIP != clusterIP {
			return fmt.Errorf("service %s/%s has clusterIP %s, want %s: delete it to change it", kubeDNSNamespace, kubeDNSName, have.Spec.ClusterIP, clusterIP)
		}
		update := have.DeepCopy()
		if update.Labels == nil {
			update.Labels = map[string]string{}
		}
		for k, v := range want.Labels {
			update.Labels[k] = v
		}
		update.Spec.Ports = want.Spec.Ports
		update.Spec.Selector = nil
		if equality.Semantic.DeepEqual(have, update) {
			return nil
		}
		_, err = services.Update(ctx, update, metav1.UpdateOptions{})
		return err
	})
}
