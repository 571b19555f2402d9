// Command bindlatency measures, on a running cluster, how long a
// WaitForFirstConsumer claim takes to become Bound once the scheduler has
// picked a node for its pod, and prints the median.
//
//	go run ./internal/storage/bindlatency -kubeconfig DIR/kubeconfig [-n 20]
//
// It creates a scratch namespace, then one claim and one pod using it at a
// time, and times two intervals from the claim's watch events as this process
// receives them: from the scheduler's volume.kubernetes.io/selected-node
// annotation to phase Bound (the provisioner's and PV controller's share, the
// number the 200 ms target is about), and from pod creation to Bound (adds
// scheduling). It deletes the namespace at the end unless -keep is given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const annSelectedNode = "volume.kubernetes.io/selected-node"

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	n := flag.Int("n", 20, "number of claims, one after the other")
	class := flag.String("storage-class", "", "StorageClass of the claims (empty: the default class)")
	image := flag.String("image", "busybox", "image of the pods")
	timeout := flag.Duration("timeout", 30*time.Second, "how long one claim may take to bind")
	keep := flag.Bool("keep", false, "keep the scratch namespace")
	flag.Parse()
	if err := run(*kubeconfig, *n, *class, *image, *timeout, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bindlatency:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, n int, class, image string, timeout time.Duration, keep bool) error {
	if n < 1 {
		return fmt.Errorf("-n must be at least 1")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bindlatency-"}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if !keep {
		defer func() {
			_ = client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		}()
	}

	var afterSelected, afterPod []time.Duration
	for i := range n {
		sel, pod, err := measureOne(ctx, client, ns.Name, fmt.Sprintf("claim-%d", i), class, image, timeout)
		if err != nil {
			return err
		}
		afterSelected = append(afterSelected, sel)
		afterPod = append(afterPod, pod)
	}
	fmt.Printf("claims: %d (namespace %s)\n", n, ns.Name)
	fmt.Printf("selected-node -> Bound: median %s, p90 %s, max %s\n", quantile(afterSelected, 50), quantile(afterSelected, 90), quantile(afterSelected, 100))
	fmt.Printf("pod created   -> Bound: median %s, p90 %s, max %s\n", quantile(afterPod, 50), quantile(afterPod, 90), quantile(afterPod, 100))
	fmt.Printf("median_ms %.1f\n", float64(quantile(afterSelected, 50).Microseconds())/1000)
	return nil
}

// measureOne creates a claim and a pod that uses it and times the claim.
func measureOne(ctx context.Context, client kubernetes.Interface, ns, name, class, image string, timeout time.Duration) (afterSelected, afterPod time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	claim := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Mi")}},
		},
	}
	if class != "" {
		claim.Spec.StorageClassName = &class
	}
	claims := client.CoreV1().PersistentVolumeClaims(ns)
	created, err := claims.Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		return 0, 0, err
	}
	w, err := claims.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: created.ResourceVersion})
	if err != nil {
		return 0, 0, err
	}
	defer w.Stop()

	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{
				Name: "c", Image: image, Command: []string{"sleep", "3600"},
				VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: name},
			}}},
			TerminationGracePeriodSeconds: new(int64),
		},
	}
	podCreated := time.Now()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return 0, 0, err
	}
	var selected time.Time
	for {
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("claim %s/%s not Bound after %s", ns, name, timeout)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return 0, 0, fmt.Errorf("watch of claim %s/%s ended", ns, name)
			}
			c, isClaim := ev.Object.(*v1.PersistentVolumeClaim)
			if !isClaim || ev.Type == watch.Deleted {
				continue
			}
			now := time.Now()
			if selected.IsZero() && c.Annotations[annSelectedNode] != "" {
				selected = now
			}
			if c.Status.Phase == v1.ClaimBound {
				if selected.IsZero() {
					selected = now
				}
				return now.Sub(selected), now.Sub(podCreated), nil
			}
		}
	}
}

// quantile returns the q-th percentile (nearest rank) of ds.
func quantile(ds []time.Duration, q int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*q+99)/100 - 1
	return s[max(0, min(i, len(s)-1))].Round(100 * time.Microsecond)
}
