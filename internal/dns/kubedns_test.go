package dns

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestEnsureKubeDNSService(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	if err := EnsureKubeDNSService(ctx, client, "10.96.0.10"); err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Labels["k8s-app"] != "kube-dns" || svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("service = %+v", svc)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, p.Name+"/"+string(p.Protocol)+"/"+p.TargetPort.String())
	}
	if diff := cmp.Diff([]string{"dns/UDP/53", "dns-tcp/TCP/53", "metrics/TCP/9153"}, ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}

	// Someone edits it; ensuring again restores labels and ports, keeps the IP.
	svc.Labels = map[string]string{"team": "x"}
	svc.Spec.Ports = svc.Spec.Ports[:1]
	if _, err := client.CoreV1().Services("kube-system").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureKubeDNSService(ctx, client, ""); err != nil {
		t.Fatal(err)
	}
	svc, _ = client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if svc.Labels["k8s-app"] != "kube-dns" || svc.Labels["team"] != "x" || len(svc.Spec.Ports) != 3 || svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("after second ensure: labels %v ports %d ip %s", svc.Labels, len(svc.Spec.Ports), svc.Spec.ClusterIP)
	}

	if err := EnsureKubeDNSService(ctx, client, "10.96.0.99"); err == nil || !strings.Contains(err.Error(), "has clusterIP 10.96.0.10, want 10.96.0.99") {
		t.Errorf("changed clusterIP: err = %v", err)
	}
}

func TestEnsureKubeDNSServiceAllocates(t *testing.T) {
	client := fake.NewClientset()
	if err := EnsureKubeDNSService(context.Background(), client, ""); err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "" || svc.Spec.Type != v1.ServiceTypeClusterIP || svc.Spec.Selector != nil {
		t.Errorf("spec = %+v", svc.Spec)
	}
}
