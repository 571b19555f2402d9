package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/test/cluster"
)

// webPods is the chapter's StatefulSet shape with a server the tests build:
// three replicas all listening on port 80 (they collide unless each pod has
// its own network), on node-1; a client pod on node-2; a pod mapping a host
// port.
const webPods = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-1}
      containers:
      - name: web
        image: busybox
        command: ["/podserver/podserver", "80"]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
        volumeMounts: [{name: bin, mountPath: /podserver, readOnly: true}]
      volumes:
      - {name: bin, hostPath: {path: PODSERVER, type: Directory}}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: node-2
  containers:
  - {name: c, image: busybox, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: hp}
spec:
  containers:
  - name: hp
    image: busybox
    command: ["/podserver/podserver", "8080"]
    ports: [{containerPort: 8080, hostPort: HOSTPORT}]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
    volumeMounts: [{name: bin, mountPath: /podserver, readOnly: true}]
  volumes:
  - {name: bin, hostPath: {path: PODSERVER, type: Directory}}
`

var (
	bridgeLine   = regexp.MustCompile(`(?m)^  pod network .* on bridge (\S+?),`)
	noNetLine    = regexp.MustCompile(`(?m)^  pod network +none.*$`)
	servicesBusy = regexp.MustCompile(`(?m)^  Services +ClusterIPs and NodePorts do not route: .*$`)
)

// TestPodNetwork drives issue 15 through the binary: each pod its own IP,
// pod to pod across nodes by StatefulSet name, the headless Service's
// addresses, a ClusterIP spreading requests, a NodePort and a hostPort from
// the host, the host to a pod IP, a recreated pod's name following its new
// IP, and nothing of the network left after a stop, including after a
// kill -9 and a restart.
func TestPodNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pod networks need root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := buildPodServer(t)
	hostPort, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := start(t, cluster.Options{Args: []string{"--nodes=2"}})
	if m := noNetLine.FindString(c.Output.String()); m != "" {
		t.Skipf("no pod network on this machine:%s", strings.TrimPrefix(m, "  pod network"))
	}
	m := bridgeLine.FindStringSubmatch(c.Output.String())
	if m == nil {
		t.Fatalf("no pod network line in quartet up's output")
	}
	bridge := m[1]
	services := servicesBusy.FindString(c.Output.String()) == ""
	if !services {
		// Another cluster of this machine runs kube-proxy (its table name
		// is fixed): ClusterIPs do not route here, the rest must.
		t.Logf("Services do not route here: %s", strings.TrimSpace(servicesBusy.FindString(c.Output.String())))
	}

	kubectl(t, c, strings.NewReplacer("PODSERVER", dir, "HOSTPORT", itoa(hostPort)).Replace(webPods), "apply", "-f", "-")
	ips := waitPodsReady(t, ctx, c, "web-0", "web-1", "web-2", "client", "hp")
	for _, name := range []string{"web-0", "web-1", "web-2", "client", "hp"} {
		for _, other := range []string{"web-0", "web-1", "web-2", "client", "hp"} {
			if name < other && ips[name] == ips[other] {
				t.Errorf("pods %s and %s share IP %s, want one each", name, other, ips[name])
			}
		}
	}
	inPod := func(script string) (string, error) {
		return c.Kubectl(ctx, "", "exec", "client", "--", "sh", "-c", script)
	}

	// Pod to pod across nodes, by StatefulSet pod name.
	for _, p := range []string{"web-0", "web-1", "web-2"} {
		out, err := inPod("wget -qO- -T 10 http://" + p + ".web.default.svc.cluster.local:80/")
		if want := "hello from " + p + " on 80\n"; err != nil || out != want {
			t.Errorf("from client on node-2, %s.web.default.svc.cluster.local:80 answered %q (%v), want %q", p, out, err, want)
		}
	}
	if out, err := inPod("getent hosts web-1.web"); err != nil || !strings.HasPrefix(out, ips["web-1"]+" ") {
		t.Errorf("getent hosts web-1.web in a pod = %q (%v), want web-1's IP %s", out, err, ips["web-1"])
	}
	// The headless Service's name returns the three IPs.
	out, err := inPod("getent ahostsv4 web.default.svc.cluster.local | awk '{print $1}' | sort -u")
	want := []string{ips["web-0"], ips["web-1"], ips["web-2"]}
	slices.Sort(want)
	if got := strings.Fields(out); err != nil || !slices.Equal(got, want) {
		t.Errorf("web.default.svc.cluster.local from a pod = %v (%v), want the three pods' IPs %v", got, err, want)
	}

	// The host reaches a pod IP; the hostPort maps on the node's address
	// and on 127.0.0.1.
	nodeIP := kubectl(t, c, "", "get", "node", "node-1", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)
	checkGet(t, ctx, "http://"+net.JoinHostPort(ips["web-0"], "80")+"/", "hello from web-0 on 80\n")
	checkGet(t, ctx, "http://"+net.JoinHostPort("127.0.0.1", itoa(hostPort))+"/", "hello from hp on 8080\n")
	checkGet(t, ctx, "http://"+net.JoinHostPort(nodeIP, itoa(hostPort))+"/", "hello from hp on 8080\n")

	if services {
		env, err := inPod("echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT")
		if err != nil || env != "10.96.0.1:443\n" {
			t.Errorf("KUBERNETES_SERVICE_HOST:PORT in a pod = %q (%v), want 10.96.0.1:443", env, err)
		}
		// The kubernetes Service answers TLS from inside a pod.
		if out, err := inPod("getent hosts kubernetes.default && bash -c 'exec 3<>/dev/tcp/10.96.0.1/443' && echo connected"); err != nil || !strings.HasSuffix(out, "connected\n") || !strings.HasPrefix(out, "10.96.0.1 ") {
			t.Errorf("kubernetes.default from a pod: %q (%v), want 10.96.0.1 and a connection", out, err)
		}
		// A ClusterIP spreads requests over the replicas.
		out, err := inPod("for i in $(seq 30); do wget -qO- -T 10 http://web-np/; done | sort -u")
		if n := strings.Count(out, "hello from web-"); err != nil || n < 2 {
			t.Errorf("30 requests to the web-np ClusterIP reached %d replicas (%v): %q, want at least 2", n, err, out)
		}
		// A NodePort answers from the host.
		np := kubectl(t, c, "", "get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}")
		waitGet(t, ctx, "http://"+net.JoinHostPort(nodeIP, np)+"/", "hello from web-")
	}

	badInput(t, ctx, c, services)

	// A pod deleted and recreated keeps its name with its new IP.
	oldUID := kubectl(t, c, "", "get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}")
	kubectl(t, c, "", "delete", "pod", "web-1", "--wait=false")
	waitFor(t, ctx, "web-1 recreated", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}")
		return err == nil && out != oldUID && out != "", out
	})
	ips = waitPodsReady(t, ctx, c, "web-1")
	waitFor(t, ctx, "web-1.web resolving to the new pod's IP "+ips["web-1"], func() (bool, string) {
		out, err := inPod("getent hosts web-1.web.default.svc.cluster.local")
		return err == nil && strings.HasPrefix(out, ips["web-1"]+" "), out
	})
	if out, err := inPod("wget -qO- -T 10 http://web-1.web:80/"); err != nil || out != "hello from web-1 on 80\n" {
		t.Errorf("the recreated web-1 by name: %q (%v)", out, err)
	}

	// kill -9, restart: the start removes what the killed run left, the
	// pods get sandboxes again, and a stop removes everything.
	seen := networkOf(t, bridge)
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.ExitErr()
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "client reaching web-0 by name after a restart", func() (bool, string) {
		out, err := inPod("wget -qO- -T 5 http://web-0.web/")
		return err == nil && out == "hello from web-0 on 80\n", fmt.Sprint(out, err)
	})
	seen = append(seen, networkOf(t, bridge)...)
	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	checkNetworkGone(t, c.DataDir, bridge, seen, services)
}

// waitPodsReady waits until the pods are Ready and returns their IPs.
func waitPodsReady(t *testing.T, ctx context.Context, c *cluster.Cluster, names ...string) map[string]string {
	t.Helper()
	ips := map[string]string{}
	waitFor(t, ctx, strings.Join(names, ", ")+" Ready", func() (bool, string) {
		var seen []string
		ok := true
		for _, n := range names {
			p, err := getPod(ctx, c, n)
			if err != nil {
				return false, err.Error()
			}
			ready := false
			for _, cond := range p.Status.Conditions {
				ready = ready || cond.Type == "Ready" && cond.Status == "True"
			}
			ok = ok && ready && p.Status.PodIP != ""
			ips[n] = p.Status.PodIP
			seen = append(seen, fmt.Sprintf("%s %s ready=%v ip=%s", n, p.Status.Phase, ready, p.Status.PodIP))
		}
		return ok, strings.Join(seen, "\n")
	})
	return ips
}

// checkGet fetches url from the test (the host) and wants a body starting
// with want.
func checkGet(t *testing.T, ctx context.Context, url, want string) {
	t.Helper()
	if body, err := hostGet(ctx, url, 15*time.Second); err != nil {
		t.Errorf("GET %s from the host: %v", url, err)
	} else if !strings.HasPrefix(body, want) {
		t.Errorf("GET %s from the host = %q, want %q", url, body, want)
	}
}

// waitGet fetches url from the host until the body starts with want (a
// NodePort answers once kube-proxy has programmed it, in a sync of its own
// that may come after the ClusterIP's: wait for the state, not a moment).
func waitGet(t *testing.T, ctx context.Context, url, want string) {
	t.Helper()
	waitFor(t, ctx, url+" answering "+want+" from the host", func() (bool, string) {
		body, err := hostGet(ctx, url, 5*time.Second)
		if err != nil {
			return false, err.Error()
		}
		return strings.HasPrefix(body, want), body
	})
}

// hostGet is one GET of url from the test, within timeout.
func hostGet(ctx context.Context, url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// networkOf lists the host-side interfaces of the bridge (pods' veths).
func networkOf(t *testing.T, bridge string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show master %s: %v: %s", bridge, err, out)
	}
	var devs []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 1 {
			devs = append(devs, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	if len(devs) == 0 {
		t.Fatalf("no interface on bridge %s while pods run", bridge)
	}
	return devs
}

// hostHas says whether the host has a network interface named dev.
func hostHas(dev string) bool {
	_, err := net.InterfaceByName(dev)
	return err == nil
}

// checkNetworkGone checks that nothing of the data dir's pod network is left
// on the host: the bridge, the veths seen, the namespace files and their
// mounts, the nft tables.
func checkNetworkGone(t *testing.T, dataDir, bridge string, veths []string, ownedKubeProxy bool) {
	t.Helper()
	if hostHas(bridge) {
		t.Errorf("bridge %s left after stop", bridge)
	}
	for _, v := range veths {
		if hostHas(v) {
			t.Errorf("interface %s left after stop", v)
		}
	}
	netns := datadir.Dir(dataDir).NetNSDir()
	if entries, _ := os.ReadDir(netns); len(entries) > 0 {
		t.Errorf("%d network namespace files left in %s after stop", len(entries), netns)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for line := range strings.Lines(string(mounts)) {
		if strings.Contains(line, " "+netns+"/") {
			t.Errorf("mount left after stop: %s", strings.TrimSpace(line))
		}
	}
	out, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v: %s", err, out)
	}
	id := strings.TrimPrefix(bridge, "qt")
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "quartet-"+id) || ownedKubeProxy && strings.HasSuffix(strings.TrimSpace(line), " kube-proxy") {
			t.Errorf("nft %s left after stop", strings.TrimSpace(line))
		}
	}
	routes, _ := exec.Command("ip", "route", "show", "dev", bridge).CombinedOutput()
	if strings.Contains(string(routes), "/") {
		t.Errorf("routes via %s left after stop: %s", bridge, routes)
	}
}

// badInput checks what a cluster says to what it cannot do: a host port a
// program of the machine holds (the pod stays Pending with
// FailedCreatePodSandBox naming it), a LoadBalancer Service (a ClusterIP and
// NodePort, its external IP pending), a NetworkPolicy (stored, not
// enforced, as nodes.md says).
func badInput(t *testing.T, ctx context.Context, c *cluster.Cluster, services bool) {
	t.Helper()
	taken, err := net.Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := itoa(taken.Addr().(*net.TCPAddr).Port)
	kubectl(t, c, `apiVersion: v1
kind: Pod
metadata: {name: hp-taken}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    ports: [{containerPort: 80, hostPort: `+port+`}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`, "apply", "-f", "-")
	want := "host port " + port + "/TCP is in use by a program on this machine"
	waitFor(t, ctx, "hp-taken's FailedCreatePodSandBox event", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "events", "--field-selector", "involvedObject.name=hp-taken",
			"-o", `jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}`)
		return err == nil && strings.Contains(out, "FailedCreatePodSandBox: ") && strings.Contains(out, want), out
	})
	if phase := kubectl(t, c, "", "get", "pod", "hp-taken", "-o", "jsonpath={.status.phase}"); phase != "Pending" {
		t.Errorf("hp-taken is %s, want Pending while its host port is taken", phase)
	}
	kubectl(t, c, "", "delete", "pod", "hp-taken", "--wait=false")

	lb := kubectl(t, c, "", "get", "svc", "web-lb", "--no-headers")
	if f := strings.Fields(lb); len(f) < 4 || f[1] != "LoadBalancer" || f[3] != "<pending>" {
		t.Errorf("kubectl get svc web-lb: %q, want type LoadBalancer, EXTERNAL-IP <pending>", lb)
	}
	if services {
		np := kubectl(t, c, "", "get", "svc", "web-lb", "-o", "jsonpath={.spec.ports[0].nodePort}")
		nodeIP := kubectl(t, c, "", "get", "node", "node-1", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)
		waitGet(t, ctx, "http://"+net.JoinHostPort(nodeIP, np)+"/", "hello from web-")
	}
	if out, err := c.Kubectl(ctx, "", "exec", "client", "--", "wget", "-qO-", "-T", "10", "http://web-0.web/"); err != nil || out != "hello from web-0 on 80\n" {
		t.Errorf("with a deny-all NetworkPolicy (stored, not enforced), web-0.web from client: %q (%v)", out, err)
	}
	kubectl(t, c, "", "delete", "networkpolicy", "deny-all")
}
