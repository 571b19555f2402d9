package kubeproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"quartet.dev/quartet/internal/node/sandbox"
)

func needProxy(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	if err := sandbox.Available(); err != nil {
		t.Skip(err)
	}
}

// podServer starts a pod sandbox with a TCP server on port 8080 that
// answers with name.
func podServer(t *testing.T, m *sandbox.Manager, name string) net.IP {
	t.Helper()
	n := m.Network()
	base := n.ClusterCIDR.IP.To4()
	sb, err := m.Setup(context.Background(), sandbox.Pod{UID: "uid-" + name, Namespace: "default", Name: name,
		PodCIDR: fmt.Sprintf("%d.%d.%d.0/24", base[0], base[1], int(base[2])+1)})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := ns.WithNetNSPath(sb.NetNSPath, func(ns.NetNS) error {
		ln, err = net.Listen("tcp", ":8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, name)
			c.Close()
		}
	}()
	return sb.IPs[0]
}

func read(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClusterIPAndNodePortRouteToPods(t *testing.T) {
	needProxy(t)
	ctx := context.Background()
	plan, err := sandbox.Plan(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := sandbox.New(sandbox.Config{Network: plan})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	ip := podServer(t, m, "web-0")

	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: v1.ServiceSpec{
		Type: v1.ServiceTypeNodePort, ClusterIP: "10.96.77.7", ClusterIPs: []string{"10.96.77.7"},
		IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
		Ports:      []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 31777, Protocol: v1.ProtocolTCP}},
	}}
	client := fake.NewClientset(svc)
	lock := filepath.Join(t.TempDir(), "lock")
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	p, err := Start(pctx, Config{Client: client, ClusterCIDR: plan.ClusterCIDR.String(), NodeIP: plan.HostIP, Owner: "test one", LockPath: lock})
	if err != nil {
		t.Fatal(err)
	}
	// A second cluster is told who has the machine's proxier.
	_, err = Start(ctx, Config{Client: client, ClusterCIDR: plan.ClusterCIDR.String(), NodeIP: plan.HostIP, Owner: "test two", LockPath: lock})
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Owner != "test one" {
		t.Fatalf("second proxier: %v", err)
	}

	if err := PublishEndpoints(ctx, client, "default", "web", ip, []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080)), Protocol: new(v1.ProtocolTCP)}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ClusterIP from the host", func() error {
		got, err := read("10.96.77.7:80")
		if err == nil && got != "web-0" {
			err = fmt.Errorf("answer %q", got)
		}
		return err
	})
	eventually(t, "NodePort on the bridge address", func() error {
		got, err := read(net.JoinHostPort(plan.HostIP.String(), "31777"))
		if err == nil && got != "web-0" {
			err = fmt.Errorf("answer %q", got)
		}
		return err
	})

	stop()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("proxier did not stop")
	}
	out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
	if strings.Contains(string(out), tableName) {
		t.Errorf("table left after stop:\n%s", out)
	}
	// The lock is free again.
	ctx3, stop3 := context.WithCancel(ctx)
	p3, err := Start(ctx3, Config{Client: client, ClusterCIDR: plan.ClusterCIDR.String(), NodeIP: plan.HostIP, Owner: "test three", LockPath: lock})
	if err != nil {
		t.Fatalf("after stop: %v", err)
	}
	stop3()
	<-p3.Done()
}
