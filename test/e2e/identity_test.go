package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/test/cluster"
)

// TestNodeIdentities checks issue 13 item 11 through the binary: each node
// agent acts as `system:node:<name>` (group system:nodes), which the Node
// authorizer and NodeRestriction confine to its own node and pods, and the
// agents' shared identity only reads pods and nodes.
func TestNodeIdentities(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := start(t, cluster.Options{Args: []string{"--nodes=2", "--runtime=auto"}})
	waitFor(t, ctx, "2 Ready nodes", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "nodes", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == 2, out
	})

	// A pod on node-2 that needs what a kubelet reads for its pods: a
	// Secret (env), a ConfigMap (volume), a claim and a service account
	// token (the admission-added projected volume).
	kubectl(t, c, `apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {v: secret-value}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {k: configmap-value}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  nodeSelector: {kubernetes.io/hostname: node-2}
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo $S; cat /cm/k; echo; test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token; echo claim > /data/f && cat /data/f; sleep 3600"]
    env: [{name: S, valueFrom: {secretKeyRef: {name: s, key: v}}}]
    volumeMounts: [{name: cm, mountPath: /cm}, {name: data, mountPath: /data}]
  volumes:
  - {name: cm, configMap: {name: cm}}
  - {name: data, persistentVolumeClaim: {claimName: data}}
`, "apply", "-f", "-")
	waitFor(t, ctx, "reader Running with its secret, configmap, token and claim", func() (bool, string) {
		p, err := getPod(ctx, c, "reader")
		if err != nil {
			return false, err.Error()
		}
		if p.Status.Phase != corev1.PodRunning {
			return false, string(p.Status.Phase) + " " + podEvents(ctx, c, "reader")
		}
		out, err := c.Kubectl(ctx, "", "logs", "reader")
		want := "secret-value\nconfigmap-value\ntoken\nclaim\n"
		return err == nil && out == want, out
	})

	// The agent wrote the pod's status as node-2, and node-1's status as
	// itself (field managers are the writers' user agents; the scheduler's
	// binding writes the pod's PodScheduled condition).
	if out := kubectl(t, c, "", "get", "pod", "reader", "--show-managed-fields", "-o", "jsonpath={range .metadata.managedFields[?(@.subresource==\"status\")]}{.manager}{\"\\n\"}{end}"); !strings.Contains(out, "system:node:node-2") || strings.Contains(out, "node-agents") {
		t.Errorf("pod status written by %q, want system:node:node-2", out)
	}
	if out := kubectl(t, c, "", "get", "node", "node-1", "--show-managed-fields", "-o", "jsonpath={range .metadata.managedFields[?(@.subresource==\"status\")]}{.manager}{\"\\n\"}{end}"); !strings.Contains(out, "system:node:node-1") {
		t.Errorf("node-1 status written by %q, want system:node:node-1", out)
	}

	// What each identity may do, as the apiserver decides it.
	asNode := func(n string) []string { return []string{"--as=system:node:" + n, "--as-group=system:nodes"} }
	canI := func(as []string, args ...string) string {
		out, _ := c.Kubectl(ctx, "", append(append([]string{"auth", "can-i"}, args...), as...)...)
		// "yes", or "no" with the authorizer's reason, after any warning.
		lines := strings.Split(strings.TrimSpace(out), "\n")
		answer, _, _ := strings.Cut(lines[len(lines)-1], " ")
		return answer
	}
	for _, tc := range []struct {
		as   []string
		args []string
		want string
	}{
		{asNode("node-2"), []string{"get", "secret/s"}, "yes"},
		{asNode("node-2"), []string{"get", "persistentvolumeclaim/data"}, "yes"},
		{asNode("node-1"), []string{"get", "secret/s"}, "no"},
		{asNode("node-1"), []string{"get", "configmap/cm"}, "no"},
		{asNode("node-1"), []string{"list", "secrets", "-A"}, "no"},
		{asNode("node-1"), []string{"delete", "node/node-2"}, "no"},
		{[]string{"--as=quartet:node-agents"}, []string{"list", "pods", "-A"}, "yes"},
		{[]string{"--as=quartet:node-agents"}, []string{"get", "secret/s"}, "no"},
		{[]string{"--as=quartet:node-agents"}, []string{"list", "secrets", "-A"}, "no"},
		{[]string{"--as=quartet:node-agents"}, []string{"delete", "node/node-1"}, "no"},
		{[]string{"--as=quartet:node-agents"}, []string{"patch", "pods/status"}, "no"},
	} {
		if got := canI(tc.as, tc.args...); got != tc.want {
			t.Errorf("can-i %v %v = %q, want %q", tc.args, tc.as, got, tc.want)
		}
	}
	// NodeRestriction: node-1 may not write node-2's pods or Node.
	if out, err := c.Kubectl(ctx, "", append([]string{"annotate", "pod", "reader", "x=y"}, asNode("node-1")...)...); err == nil {
		t.Errorf("node-1 annotated node-2's pod: %s", out)
	}
	if out, err := c.Kubectl(ctx, "", append([]string{"label", "node", "node-2", "x=y"}, asNode("node-1")...)...); err == nil || !strings.Contains(out+err.Error(), "forbidden") {
		t.Errorf("node-1 labelled node-2: %s %v", out, err)
	}
}

// podEvents is the pod's events, for a failure's message.
func podEvents(ctx context.Context, c *cluster.Cluster, pod string) string {
	out, _ := c.Kubectl(ctx, "", "get", "events", "--field-selector", "involvedObject.name="+pod, "-o", "custom-columns=R:.reason,M:.message", "--no-headers")
	return out
}
