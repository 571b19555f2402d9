package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/test/cluster"
	"quartet.dev/quartet/test/imagetest"
)

// walkthroughWeb is the walk-through's StatefulSet (docs/walkthrough.md, the
// chapter's web-headless.yaml and web-statefulset.yaml) with a real server
// image in place of nginx, in a namespace of its own, plus a ClusterIP
// Service in front of the replicas.
const walkthroughWeb = `apiVersion: v1
kind: Namespace
metadata: {name: chapter}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: chapter, labels: {app: web}}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: web, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-front, namespace: chapter}
spec:
  selector: {app: web}
  ports: [{name: web, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: chapter}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: IMAGE
        args: ["serve", "80", "/usr/share/web"]
        ports: [{containerPort: 80, name: web}]
        readinessProbe: {httpGet: {path: /hello, port: 80}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /usr/share/web}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: ["ReadWriteOnce"]
      resources: {requests: {storage: 1Mi}}
`

// TestWalkthroughRealServer runs the walk-through's StatefulSet with a real
// server image (the tests' app image from a loopback registry, run by the
// oci runtime) on two nodes: three replicas all on port 80, each reaching
// the others by StatefulSet name (web-N.web.chapter.svc.cluster.local and
// the short web-N.web), and the replicas through a ClusterIP Service by
// name, all from inside the pods.
func TestWalkthroughRealServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pod networks need root")
	}
	if ok, why := runc.Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	reg := imagetest.NewRegistry(nil)
	defer reg.Close()
	image := pushApp(t, reg, "web:1")
	c := start(t, cluster.Options{Args: []string{"--nodes=2"}})
	if m := noNetLine.FindString(c.Output.String()); m != "" {
		t.Skipf("no pod network on this machine:%s", strings.TrimPrefix(m, "  pod network"))
	}
	services := servicesBusy.FindString(c.Output.String()) == ""

	// (Retried: the namespace's default service account may not exist yet.)
	waitFor(t, ctx, "the walk-through's StatefulSet applied", func() (bool, string) {
		out, err := c.Kubectl(ctx, strings.ReplaceAll(walkthroughWeb, "IMAGE", image), "apply", "-f", "-")
		return err == nil, out
	})
	pods := []string{"web-0", "web-1", "web-2"}
	waitFor(t, ctx, "web-0, web-1, web-2 Ready", func() (bool, string) {
		out, err := c.Kubectl(ctx, "", "get", "pods", "-n", "chapter", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[0].containerID}{"\n"}{end}`)
		return err == nil && strings.Count(out, " True oci://") == 3, out
	})
	nodes := map[string]bool{}
	for _, p := range pods {
		nodes[kubectl(t, c, "", "get", "pod", "-n", "chapter", p, "-o", "jsonpath={.spec.nodeName}")] = true
	}
	t.Logf("replicas on nodes %v", nodes)

	get := func(pod, url string) (string, error) {
		return c.Kubectl(ctx, "", "exec", "-n", "chapter", pod, "--", "/app", "get", url)
	}
	for _, from := range pods {
		for _, to := range pods {
			if from == to {
				continue
			}
			url := "http://" + to + ".web.chapter.svc.cluster.local/hello"
			if out, err := get(from, url); err != nil || out != "hello from "+to+"\n" {
				t.Errorf("in %s, GET %s = %q (%v), want %s's own reply", from, url, out, err, to)
			}
		}
	}
	// The short name, through the pod's search path.
	if out, err := get("web-0", "http://web-2.web/hello"); err != nil || out != "hello from web-2\n" {
		t.Errorf("in web-0, GET http://web-2.web/hello = %q (%v)", out, err)
	}
	if !services {
		t.Logf("Services do not route here (another cluster of this machine runs kube-proxy): %s",
			strings.TrimSpace(servicesBusy.FindString(c.Output.String())))
		return
	}
	// The ClusterIP Service by name spreads requests over the replicas.
	seen := map[string]bool{}
	waitFor(t, ctx, "web-front reaching at least two replicas from web-0", func() (bool, string) {
		out, err := get("web-0", "http://web-front.chapter.svc.cluster.local/hello")
		if err != nil {
			return false, err.Error()
		}
		seen[strings.TrimSpace(out)] = true
		return len(seen) >= 2, fmt.Sprint(seen)
	})
	for s := range seen {
		if !strings.HasPrefix(s, "hello from web-") {
			t.Errorf("web-front answered %q", s)
		}
	}
}
