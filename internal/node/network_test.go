package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"quartet.dev/quartet/internal/node/sandbox"
)

// serveEnv makes the test binary an HTTP server when it is started with it
// set (as a pod's command): "/" answers with the hostname, "/env/NAME" with
// a variable of its environment.
const serveEnv = "QUARTET_NODE_TEST_SERVE"

func TestMain(m *testing.M) {
	if addr := os.Getenv(serveEnv); addr != "" {
		serveForTest(addr)
		return
	}
	os.Exit(m.Run())
}

func serveForTest(addr string) {
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, host) })
	mux.HandleFunc("/env/{name}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, os.Getenv(r.PathValue("name"))) })
	fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, mux))
	os.Exit(1)
}

// freePort is a TCP port nothing on the host listens on (now).
func freePort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// serverPod is a pod whose container is the test binary serving HTTP on
// port, ready once it answers on its pod IP.
func serverPod(t *testing.T, name, node string, port int32, opts ...podOpt) *v1.Pod {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := boundPod(name, func(p *v1.Pod) {
		p.Spec.NodeName = node
		c := &p.Spec.Containers[0]
		c.Image = "test-server"
		// The test binary, mounted where a container's private /tmp does
		// not hide it.
		c.Command = []string{"/srv/test-server"}
		c.VolumeMounts = []v1.VolumeMount{{Name: "exe", MountPath: "/srv/test-server", ReadOnly: true}}
		p.Spec.Volumes = []v1.Volume{{Name: "exe", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: exe}}}}
		c.Env = []v1.EnvVar{{Name: serveEnv, Value: fmt.Sprintf(":%d", port)}}
		c.Ports = []v1.ContainerPort{{ContainerPort: port}}
		c.ReadinessProbe = &v1.Probe{PeriodSeconds: 1, ProbeHandler: v1.ProbeHandler{
			HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(port)}}}
	})
	for _, o := range opts {
		o(p)
	}
	return p
}

// startNetworkHost runs a host whose pods get sandboxes, with two nodes
// whose podCIDRs are the first two /24 of the network's range.
func startNetworkHost(t *testing.T) (*testHost, *sandbox.Manager) {
	t.Helper()
	if err := sandbox.Available(); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	dir := t.TempDir()
	plan, err := sandbox.Plan(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sandbox.New(sandbox.Config{Network: plan})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := plan.ClusterCIDR.IP.To4()
	var objs []runtime.Object
	for i, name := range []string{"node-1", "node-2"} {
		objs = append(objs, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
			Spec: v1.NodeSpec{PodCIDR: fmt.Sprintf("%d.%d.%d.0/24", base[0], base[1], int(base[2])+i+1)}})
	}
	client := fake.NewClientset(objs...)
	th := startHostWith(t, RuntimeProcess, dir, client, func(h *Host) {
		h.cfg.Network = m
		h.cfg.KubernetesService = "10.96.0.1:443"
		h.cfg.PodDNS = plan.HostIP.String()
	})
	// Registered after startHostWith's, so it runs first: the network goes
	// once the host has stopped.
	t.Cleanup(func() { th.stop(); m.Stop(context.Background()) })
	th.addNode(NodeSpec{Name: "node-1"})
	th.addNode(NodeSpec{Name: "node-2"})
	return th, m
}

// waitReady steps the fake clock (for the readiness probe's period) until
// the pod is Ready.
func (th *testHost) waitReady(name string) *v1.Pod {
	th.t.Helper()
	var got *v1.Pod
	eventually(th.t, name+" ready", func() (bool, string) {
		th.clock.Step(time.Second)
		got = th.pod(name)
		if got == nil {
			return false, "no pod"
		}
		for _, c := range got.Status.Conditions {
			if c.Type == v1.PodReady && c.Status == v1.ConditionTrue {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", got.Status)
	})
	return got
}

// httpGet fetches a URL from the network namespace at netns ("" = the host's).
func httpGet(netns, url string) (string, error) {
	var body string
	get := func() error {
		c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err
	}
	if netns == "" {
		return body, get()
	}
	err := ns.WithNetNSPath(netns, func(ns.NetNS) error { return get() })
	return body, err
}

func TestPodsGetSandboxesThatReachEachOther(t *testing.T) {
	th, m := startNetworkHost(t)
	n := m.Network()
	port := freePort(t)
	url := func(p *v1.Pod, path string) string {
		return "http://" + net.JoinHostPort(p.Status.PodIP, fmt.Sprint(port)) + path
	}
	th.createPod(serverPod(t, "a", "node-1", port))
	th.createPod(serverPod(t, "b", "node-2", port, func(p *v1.Pod) { p.Spec.Hostname = "bee" }))
	a, b := th.waitReady("a"), th.waitReady("b")

	for _, p := range []*v1.Pod{a, b} {
		node, _ := th.client.CoreV1().Nodes().Get(context.Background(), p.Spec.NodeName, metav1.GetOptions{})
		_, cidr, _ := net.ParseCIDR(node.Spec.PodCIDR)
		if ip := net.ParseIP(p.Status.PodIP); ip == nil || !cidr.Contains(ip) {
			t.Errorf("pod %s has IP %q, want one in %s", p.Name, p.Status.PodIP, node.Spec.PodCIDR)
		}
	}
	recA := th.h.record(a.UID)
	netnsA := recA.netNSPath()
	if netnsA != filepath.Join(n.NetNSDir(), string(a.UID)) {
		t.Fatalf("pod a's netns = %q", netnsA)
	}
	// Host -> pod, and pod -> pod across nodes; each answers with its own
	// hostname, so the process runs in its sandbox.
	if got, err := httpGet("", url(a, "/")); err != nil || got != "a" {
		t.Errorf("host -> a: %q, %v", got, err)
	}
	if got, err := httpGet(netnsA, url(b, "/")); err != nil || got != "bee" {
		t.Errorf("a -> b: %q, %v", got, err)
	}
	// The port is the pod's own: nothing listens on it on the host.
	if _, err := httpGet("", fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Errorf("the pod's port answers on the host's loopback")
	}
	env, err := httpGet(netnsA, url(a, "/env/KUBERNETES_SERVICE_HOST"))
	if err != nil || env != "10.96.0.1" {
		t.Errorf("KUBERNETES_SERVICE_HOST = %q, %v", env, err)
	}
	resolv, err := os.ReadFile(filepath.Join(recA.dir, "etc", "resolv.conf"))
	if err != nil || !strings.Contains(string(resolv), "nameserver "+n.HostIP.String()+"\n") {
		t.Errorf("resolv.conf = %q, %v", resolv, err)
	}

	// A deleted pod's sandbox goes with it.
	if err := th.client.CoreV1().Pods("default").Delete(context.Background(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's sandbox removed", func() (bool, string) {
		_, err := os.Lstat(netnsA)
		return os.IsNotExist(err), fmt.Sprint(err)
	})
	// Removing a node removes its pods' sandboxes and its gateway.
	netnsB := th.h.record(b.UID).netNSPath()
	node2, err := th.client.CoreV1().Nodes().Get(context.Background(), "node-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, cidr2, _ := net.ParseCIDR(node2.Spec.PodCIDR)
	if err := th.h.RemoveNode(context.Background(), "node-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(netnsB); !os.IsNotExist(err) {
		t.Errorf("b's netns after node remove: %v", err)
	}
	br, err := net.InterfaceByName(n.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := br.Addrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && cidr2.Contains(ipn.IP) {
			t.Errorf("node-2's gateway %s is still on the bridge", ipn)
		}
	}
}

func TestHostPortMapsAndConflictsAreRefused(t *testing.T) {
	th, _ := startNetworkHost(t)
	port := freePort(t)
	withHostPort := func(p *v1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = port }
	th.createPod(serverPod(t, "hp", "node-1", port, withHostPort))
	th.waitReady("hp")
	if got, err := httpGet("", fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || got != "hp" {
		t.Errorf("host port: %q, %v", got, err)
	}
	// Another node of the machine: same ports, so the sandbox is refused.
	th.createPod(serverPod(t, "hp2", "node-2", port, withHostPort))
	eventually(t, "FailedCreatePodSandBox", func() (bool, string) {
		for {
			select {
			case e := <-th.events.Events:
				if strings.Contains(e, "FailedCreatePodSandBox") && strings.Contains(e, fmt.Sprintf("host port %d/TCP is already mapped to pod default/hp", port)) {
					return true, ""
				}
			default:
				return false, ""
			}
		}
	})
	p := th.pod("hp2")
	if p.Status.PodIP != "" || p.Status.Phase != v1.PodPending {
		t.Errorf("refused pod: phase %s IP %q", p.Status.Phase, p.Status.PodIP)
	}
}
