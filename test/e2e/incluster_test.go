package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"quartet.dev/quartet/internal/node/runtime/runc"
	"quartet.dev/quartet/test/cluster"
	"quartet.dev/quartet/test/imagetest"
)

var unroutedRelay = regexp.MustCompile(`(?m)^  Services +ClusterIPs and NodePorts do not route: .*; pods reach the apiserver at (\S+)\s`)

// TestInClusterWithoutServices runs an in-cluster client (the service
// account's token, the server verified with its ca.crt, the address from
// KUBERNETES_SERVICE_HOST and _PORT) in an image pod on the pod network of
// a cluster whose Services do not route, because another cluster of the
// machine runs kube-proxy (one per machine): the pod reaches the apiserver
// at the pod network's host address, which the serving certificate names.
// When the first cluster started here routes Services, its pod reaches the
// apiserver through the kubernetes Service instead, and a second cluster
// is the one without.
func TestInClusterWithoutServices(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	if ok, why := runc.Available(); !ok {
		t.Skipf("no containers here: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	reg := imagetest.NewRegistry(nil)
	defer reg.Close()
	image := pushApp(t, reg, "app:1")

	whoami := func(c *cluster.Cluster, name string) string {
		kubectl(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: Never
  containers: [{name: c, image: %s, args: [whoami]}]
`, name, image), "apply", "-f", "-")
		waitFor(t, ctx, "pod "+name+" finished", func() (bool, string) {
			out, err := c.Kubectl(ctx, "", "get", "pod", name, "-o", "jsonpath={.status.phase}")
			return err == nil && (out == "Succeeded" || out == "Failed"), out
		})
		logs := kubectl(t, c, "", "logs", name)
		if phase := kubectl(t, c, "", "get", "pod", name, "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
			t.Fatalf("the in-cluster client in pod %s failed: %s", name, logs)
		}
		return strings.TrimSpace(logs)
	}
	const user = "system:serviceaccount:default:default"

	first := start(t, cluster.Options{Args: []string{"--nodes=1", "--ui=false"}})
	if noNetLine.MatchString(first.Output.String()) {
		t.Skipf("no pod network here: %s", noNetLine.FindString(first.Output.String()))
	}
	c := first
	if !unroutedRelay.MatchString(first.Output.String()) {
		if got := whoami(first, "routed"); got != "10.96.0.1:443 "+user {
			t.Errorf("with Services routing, the in-cluster client said %q, want %q", got, "10.96.0.1:443 "+user)
		}
		c = start(t, cluster.Options{Args: []string{"--nodes=1", "--ui=false"}})
	}
	m := unroutedRelay.FindStringSubmatch(c.Output.String())
	if m == nil {
		t.Fatalf("no `Services  ClusterIPs and NodePorts do not route: ...; pods reach the apiserver at ADDRESS` line in:\n%s", c.Output.String())
	}
	if got, want := whoami(c, "unrouted"), m[1]+" "+user; got != want {
		t.Errorf("without Services routing, the in-cluster client said %q, want %q", got, want)
	}
}
