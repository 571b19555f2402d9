package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"quartet.dev/quartet/test/cluster"
)

// TestControllersImage builds quartet's image as `make image` does from the
// binary under test, loads it with `quartet image load`, and runs deploy/'s
// Deployment from it in a pod of a cluster without workload controllers
// (oci runtime): `quartet controllers --in-cluster` with the service
// account's token passes its checks, leads, answers its probes, and runs a
// Job naming quartet to completion.
//
// The pod uses the host's network: a pod network's route to the apiserver
// is the kubernetes Service, which does not route while another quartet on
// the machine runs kube-proxy (one per machine), as happens when tests run
// side by side.
func TestControllersImage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	if os.Geteuid() != 0 {
		t.Skip("the oci runtime needs root")
	}
	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "quartet-image.tar")
	build := exec.Command("go", "run", "./deploy/image", "-binary", bin, "-tag", "quartet:v0.1.0-dev", "-o", archive)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the image: %v\n%s", err, out)
	}

	c := start(t, cluster.Options{Args: []string{"--workload-controllers=none", "--nodes=1", "--ui=false"}})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, c.Bin, "image", "load", "--data-dir", c.DataDir, archive).CombinedOutput(); err != nil || !strings.Contains(string(out), "quartet:v0.1.0-dev") {
		t.Fatalf("quartet image load: %v\n%s", err, out)
	}
	manifest, err := os.ReadFile(filepath.Join(root, "deploy", "quartet-controllers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kubectl(t, c, string(manifest), "apply", "-f", "-")
	health, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// The host's network is not "restricted": the namespace allows it here.
	kubectl(t, c, "", "label", "namespace", cluster.ControllersNamespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
	kubectl(t, c, "", "-n", cluster.ControllersNamespace, "patch", "deployment", "quartet-controllers", "--type=json", "-p", fmt.Sprintf(`[
		{"op":"replace","path":"/spec/replicas","value":1},
		{"op":"add","path":"/spec/template/spec/hostNetwork","value":true},
		{"op":"replace","path":"/spec/template/spec/containers/0/args","value":["controllers","--in-cluster","--controllers=job","--metrics-address=127.0.0.1:%d","--health-address=:%d"]},
		{"op":"replace","path":"/spec/template/spec/containers/0/ports","value":[{"name":"metrics","containerPort":%d},{"name":"health","containerPort":%d}]}]`,
		metrics, health, metrics, health))
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the controllers' pod Ready", func() (bool, string) {
		d, err := client.AppsV1().Deployments(cluster.ControllersNamespace).Get(ctx, "quartet-controllers", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pods, _ := client.CoreV1().Pods(cluster.ControllersNamespace).List(ctx, metav1.ListOptions{})
		var seen []string
		for _, p := range pods.Items {
			for _, s := range p.Status.ContainerStatuses {
				seen = append(seen, fmt.Sprintf("%s image %s restarts %d state %+v", p.Name, s.Image, s.RestartCount, s.State))
			}
		}
		return d.Status.UpdatedReplicas == 1 && d.Status.ReadyReplicas == 1 && d.Status.Replicas == 1, strings.Join(seen, "\n")
	})
	// Ready comes with health, which may come before the Lease is won.
	waitFor(t, ctx, "the pod's log saying it checked its permissions and leads", func() (bool, string) {
		logs, err := c.Kubectl(ctx, "", "-n", cluster.ControllersNamespace, "logs", "deployment/quartet-controllers")
		if err != nil {
			return false, err.Error()
		}
		for _, want := range []string{"permissions: every one the controllers need", "leading (Lease quartet-system/quartet-controllers"} {
			if !strings.Contains(logs, want) {
				return false, fmt.Sprintf("lacks %q:\n%s", want, logs)
			}
		}
		return true, ""
	})

	quartetJob := "quartet.dev/job-controller"
	if _, err := client.BatchV1().Jobs("default").Create(ctx, managedJob("from-image", 2, 2, "0", &quartetJob), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "Job from-image Complete", func() (bool, string) {
		j, err := client.BatchV1().Jobs("default").Get(ctx, "from-image", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, cond := range j.Status.Conditions {
			if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
				return j.Status.Succeeded == 2, fmt.Sprintf("%+v", j.Status)
			}
		}
		return false, fmt.Sprintf("%+v", j.Status)
	})
}
