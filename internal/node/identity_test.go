package node

import (
	"context"
	"slices"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestNodesWriteAsThemselves runs a host whose shared client can only read
// (as quartet's host identity): registering, heartbeats, a pod's ConfigMap
// and its status must all go through the node's own client.
func TestNodesWriteAsThemselves(t *testing.T) {
	store := fake.NewClientset(
		&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "node-1-uid"}, Spec: v1.NodeSpec{PodCIDR: "10.244.1.0/24"}},
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default"}, Data: map[string]string{"k": "v"}},
	)
	var mu sync.Mutex
	var refused []string
	readOnly := &fake.Clientset{}
	readOnly.AddReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetVerb() == "list" || (a.GetVerb() == "get" && (a.GetResource().Resource == "pods" || a.GetResource().Resource == "nodes")) {
			return k8stesting.ObjectReaction(store.Tracker())(a)
		}
		mu.Lock()
		refused = append(refused, a.GetVerb()+" "+a.GetResource().Resource+"/"+a.GetSubresource())
		mu.Unlock()
		return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "", nil)
	})
	readOnly.AddWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := store.Tracker().Watch(a.GetResource(), a.GetNamespace())
		return true, w, err
	})
	var asked []string
	th := startHostWith(t, RuntimeSim, t.TempDir(), readOnly, func(h *Host) {
		h.cfg.AdminClient, h.admin = store, store
		h.cfg.NodeClient = func(name string) (kubernetes.Interface, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, name)
			return store, nil
		}
	})
	th.addNode(NodeSpec{Name: "node-1"})
	pod := boundPod("web", func(p *v1.Pod) {
		p.Namespace, p.UID = "default", "uid-web"
		p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "K", ValueFrom: &v1.EnvVarSource{
			ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}, Key: "k"}}}}
	})
	if _, err := store.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	th.waitPod("web", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	lease, err := store.CoordinationV1().Leases(leaseNamespace).Get(context.Background(), "node-1", metav1.GetOptions{})
	if err != nil || lease.Spec.RenewTime == nil {
		t.Errorf("node-1's lease: %v %v", lease, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) > 0 {
		t.Errorf("the host's read-only client was asked to %v", refused)
	}
	if !slices.Equal(asked, []string{"node-1"}) {
		t.Errorf("NodeClient asked for %v, want [node-1]", asked)
	}
}
