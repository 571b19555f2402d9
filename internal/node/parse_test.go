package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseNodeLabel(t *testing.T) {
	cases := map[string]struct {
		in               string
		node, key, value string
		wantErr          bool
	}{
		"plain":        {in: "node-2:hardware=gpu", node: "node-2", key: "hardware", value: "gpu"},
		"prefixed key": {in: "node-1:example.com/tier=db", node: "node-1", key: "example.com/tier", value: "db"},
		"empty value":  {in: "node-1:flag=", node: "node-1", key: "flag"},
		"no node":      {in: "hardware=gpu", wantErr: true},
		"no value sep": {in: "node-1:hardware", wantErr: true},
		"bad node":     {in: "Node_1:a=b", wantErr: true},
		"bad value":    {in: "node-1:a=b c", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n, k, v, err := ParseNodeLabel(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && (n != tc.node || k != tc.key || v != tc.value) {
				t.Errorf("got %q %q %q", n, k, v)
			}
		})
	}
}

func TestParseTaint(t *testing.T) {
	cases := map[string]struct {
		in      string
		node    string
		want    v1.Taint
		wantErr bool
	}{
		"control plane": {in: "node-1:node-role.kubernetes.io/control-plane=:NoSchedule", node: "node-1", want: v1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}},
		"key value":     {in: "node-3:dedicated=batch:NoExecute", node: "node-3", want: v1.Taint{Key: "dedicated", Value: "batch", Effect: v1.TaintEffectNoExecute}},
		"key only":      {in: "node-3:gpu:PreferNoSchedule", node: "node-3", want: v1.Taint{Key: "gpu", Effect: v1.TaintEffectPreferNoSchedule}},
		"bad effect":    {in: "node-3:gpu:Sometimes", wantErr: true},
		"no effect":     {in: "node-3:gpu", wantErr: true},
		"bad key":       {in: "node-3:bad key=x:NoSchedule", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n, taint, err := ParseNodeTaint(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if n != tc.node {
				t.Errorf("node = %q", n)
			}
			if diff := cmp.Diff(tc.want, taint); diff != "" {
				t.Errorf("taint (-want +got):\n%s", diff)
			}
			// The part after the node is what `quartet node add --taint` takes.
			if again, err := ParseTaint(tc.in[len(tc.node)+1:]); err != nil || again != taint {
				t.Errorf("ParseTaint = %+v, %v", again, err)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	pod := func(policy v1.DNSPolicy, hostNet bool) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}, Spec: v1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet}}
	}
	cases := map[string]struct {
		pod         *v1.Pod
		dns         string
		wantOK      bool
		wantPrefix  string
		wantWarning bool
		sandboxed   bool
	}{
		"cluster first": {pod: pod(v1.DNSClusterFirst, false), dns: "127.0.0.10:53", wantOK: true,
			wantPrefix: "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.10\n"},
		"dns on another port":           {pod: pod(v1.DNSClusterFirst, false), dns: "127.0.0.1:5353", wantWarning: true},
		"no dns yet":                    {pod: pod(v1.DNSClusterFirst, false), dns: ""},
		"host network keeps the host's": {pod: pod(v1.DNSClusterFirst, true), dns: "127.0.0.10:53"},
		"cluster first with host net": {pod: pod(v1.DNSClusterFirstWithHostNet, true), dns: "127.0.0.10:53", wantOK: true,
			wantPrefix: "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.10\n"},
		"default": {pod: pod(v1.DNSDefault, false), dns: "127.0.0.10:53"},
		"sandboxed": {pod: pod(v1.DNSClusterFirst, false), dns: "10.96.0.10:53", sandboxed: true, wantOK: true,
			wantPrefix: "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\n"},
		// The host's loopback resolvers are not the pod's: it gets a file
		// of its own.
		"sandboxed default": {pod: pod(v1.DNSDefault, false), dns: "10.96.0.10:53", sandboxed: true, wantOK: true},
		"none with dnsConfig": {pod: func() *v1.Pod {
			p := pod(v1.DNSNone, false)
			p.Spec.DNSConfig = &v1.PodDNSConfig{Nameservers: []string{"1.2.3.4"}, Searches: []string{"example.com"}}
			return p
		}(), dns: "127.0.0.10:53", wantOK: true, wantPrefix: "search example.com\nnameserver 1.2.3.4\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok, warning := resolvConf(tc.pod, tc.dns, "cluster.local", tc.sandboxed)
			if ok != tc.wantOK || (warning != "") != tc.wantWarning {
				t.Fatalf("ok %v warning %q", ok, warning)
			}
			if !strings.HasPrefix(got, tc.wantPrefix) {
				t.Errorf("resolv.conf = %q, want prefix %q", got, tc.wantPrefix)
			}
		})
	}
}

func TestHostsFileAndHostname(t *testing.T) {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default"}, Spec: v1.PodSpec{Subdomain: "web",
		HostAliases: []v1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}}}}
	got := hostsFile(p, "10.244.1.5", "cluster.local")
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.244.1.5\tweb-0.web.default.svc.cluster.local\tweb-0\n", "10.1.2.3\tfoo.local\tbar.local\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts file lacks %q:\n%s", want, got)
		}
	}
	long := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 62) + "-b"}}
	if h := podHostname(long); len(h) > 63 || strings.HasSuffix(h, "-") {
		t.Errorf("hostname %q", h)
	}
}

func TestPodFieldValue(t *testing.T) {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", Labels: map[string]string{"app": "web", "tier": "x"},
		Annotations: map[string]string{"a": "1"}}, Spec: v1.PodSpec{NodeName: "node-1", ServiceAccountName: "sa"}}
	cases := map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u", "spec.nodeName": "node-1",
		"spec.serviceAccountName": "sa", "status.podIP": "10.0.0.1", "status.hostIP": "127.0.0.1",
		"metadata.labels['app']": "web", "metadata.annotations['a']": "1", "metadata.labels": "app=\"web\"\ntier=\"x\"",
	}
	for path, want := range cases {
		got, err := podFieldValue(p, path, "10.0.0.1", "127.0.0.1")
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := podFieldValue(p, "spec.nope", "", ""); err == nil {
		t.Errorf("unsupported fieldRef accepted")
	}
}

func TestIPAM(t *testing.T) {
	p, err := newIPAM("10.244.3.0/30")
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.allocate("a", "")
	if err != nil || a != "10.244.3.2" {
		t.Fatalf("first = %q %v", a, err)
	}
	if _, err := p.allocate("b", ""); err == nil {
		t.Errorf("a /30 has one usable pod address, second allocation succeeded")
	}
	p.release("a")
	if b, err := p.allocate("b", ""); err != nil || b != "10.244.3.2" {
		t.Errorf("after release = %q %v", b, err)
	}
	q, _ := newIPAM("10.244.4.0/24")
	if got, _ := q.allocate("x", "10.244.4.77"); got != "10.244.4.77" {
		t.Errorf("previous address not kept: %q", got)
	}
	if got, _ := q.allocate("y", "10.9.9.9"); got != "10.244.4.2" {
		t.Errorf("out-of-range previous address: %q", got)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	if err := writeAtomic(dir, map[string]fileData{"a": {data: []byte("1"), mode: 0o644}, "sub/b": {data: []byte("2"), mode: 0o600}}); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(dir, map[string]fileData{"a": {data: []byte("3"), mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "3" {
		t.Errorf("a = %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("stale entry sub survived: %v", err)
	}
	if err := writeAtomic(dir, map[string]fileData{"../escape": {data: nil}}); err == nil {
		t.Errorf("path escaping the volume accepted")
	}
}
