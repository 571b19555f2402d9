package e2e

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"quartet.dev/quartet/test/cluster"
)

// BenchmarkJobDeletePending measures how fast deleting a Job removes its
// Pending pods (issue 13 item 9): a Job of N pods that no node can take,
// deleted as kubectl does (its pods in the background). Each pod carries the
// Job controller's tracking finalizer, which that controller removes once
// the Job is gone; the garbage collector deletes the pods. Printed: the
// tracking finalizers removed per second and the pods gone per second,
// for quartet's controllers and for upstream's (the oracle), each on a
// cluster of its own. N is $QUARTET_CHURN_PODS (default 3,000):
//
//	QUARTET_CHURN_PODS=2000 QUARTET_BIN=$PWD/bin/quartet go test ./test/e2e -run '^$' -bench JobDeletePending -benchtime 1x -timeout 1h
func BenchmarkJobDeletePending(b *testing.B) {
	n := churnPods(b)
	for _, mode := range []string{"quartet", "upstream"} {
		b.Run(mode, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			c := start(b, cluster.Options{Args: []string{"--nodes=1", "--runtime=sim", "--workload-controllers=" + mode}})
			client, err := c.Client()
			if err != nil {
				b.Fatal(err)
			}
			rc, err := c.RESTConfig()
			if err != nil {
				b.Fatal(err)
			}
			meta, err := metadata.NewForConfig(rc)
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				createUnschedulableJob(b, ctx, client, "pending", n)
				waitJob(b, ctx, "all pods of Job pending to exist", client, "pending", func(j *batchv1.Job) bool { return j.Status.Active >= int32(n) })
				unfinalized, gone := deleteJobTimed(b, ctx, client, meta, "pending")
				b.Logf("%s: %d Pending pods: tracking finalizers removed in %s, pods gone in %s", mode, n, unfinalized.Round(time.Second), gone.Round(time.Second))
				b.ReportMetric(float64(n)/unfinalized.Seconds(), "finalizers-removed/s")
				b.ReportMetric(float64(n)/gone.Seconds(), "pods-deleted/s")
			}
		})
	}
}

// createUnschedulableJob creates a Job of n pods whose node selector no node
// matches, so that every pod stays Pending.
func createUnschedulableJob(b *testing.B, ctx context.Context, client kubernetes.Interface, name string, n int) {
	b.Helper()
	count := int32(n)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			Completions: &count, Parallelism: &count,
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					NodeSelector: map[string]string{"quartet.dev/bench": "nowhere"},
					Containers:   []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
	if _, err := client.BatchV1().Jobs("default").Create(ctx, job, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// deleteJobTimed deletes a Job (its pods in the background) and returns how
// long until no pod of the namespace has the tracking finalizer, and until
// none is left. It watches through pods' metadata only, which costs the
// apiserver far less than whole pods.
func deleteJobTimed(b *testing.B, ctx context.Context, client kubernetes.Interface, meta metadata.Interface, name string) (unfinalized, gone time.Duration) {
	b.Helper()
	began := time.Now()
	bg := metav1.DeletePropagationBackground
	if err := client.BatchV1().Jobs("default").Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		b.Fatal(err)
	}
	for {
		l, err := meta.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace("default").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			b.Fatal(err)
		}
		tracked := 0
		for _, p := range l.Items {
			for _, f := range p.Finalizers {
				if f == batchv1.JobTrackingFinalizer {
					tracked++
				}
			}
		}
		if tracked == 0 && unfinalized == 0 {
			unfinalized = time.Since(began)
		}
		if len(l.Items) == 0 {
			return unfinalized, time.Since(began)
		}
		select {
		case <-ctx.Done():
			b.Fatalf("Job %s's pods not deleted: %d left, %d with the tracking finalizer", name, len(l.Items), tracked)
		case <-time.After(time.Second):
		}
	}
}
