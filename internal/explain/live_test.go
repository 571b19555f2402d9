package explain

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

func node(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

func ownedPod(name, owner string, uid types.UID, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: "shop", CreationTimestamp: ago(time.Hour),
		OwnerReferences: []metav1.OwnerReference{{Kind: owner, Name: owner, UID: uid, Controller: ptr.To(true)}},
	}}
	for _, m := range mods {
		m(p)
	}
	return p
}

func running(ready bool, since time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: status, LastTransitionTime: ago(since)})
	}
}

func failedAt(d time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(d)}}}}
	}
}

func unschedulable(msg string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: msg}}
	}
}

func liveReport(t *testing.T, objs ...runtime.Object) map[string]Explained {
	t.Helper()
	client := fake.NewClientset(objs...)
	r, err := Live(context.Background(), client, "shop", Options{Now: testNow, Local: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Explained{}
	for _, e := range r.Objects {
		out[e.Kind+"/"+e.Name] = e
	}
	return out
}

func TestLiveStuck(t *testing.T) {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	class := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "local-path", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       "quartet.dev/local-path",
		VolumeBindingMode: &wffc,
	}
	nodes := []runtime.Object{node("node-1", nil), node("node-2", nil, corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule})}

	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "set-uid"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), ServiceName: "web",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}}},
		Status: appsv1.StatefulSetStatus{ReadyReplicas: 1},
	}
	daemon := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-agent", Namespace: "shop", UID: "ds-uid"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "gpu"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "gpu"}},
				Spec: corev1.PodSpec{NodeSelector: map[string]string{"hardware": "gpu"}}}},
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: "shop", UID: "job-uid"},
		Spec:       batchv1.JobSpec{BackoffLimit: ptr.To[int32](4)},
		Status:     batchv1.JobStatus{Failed: 2},
	}
	cron := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "shop"},
		Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", ConcurrencyPolicy: batchv1.ForbidConcurrent,
			TimeZone: ptr.To("UTC"), StartingDeadlineSeconds: ptr.To[int64](60)},
		Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Kind: "Job", Namespace: "shop", Name: "backup-29653795"}}},
	}
	cronRun := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "backup-29653795", Namespace: "shop", UID: "run-uid"},
		Status:     batchv1.JobStatus{StartTime: ptr.To(ago(5 * time.Minute)), Active: 1},
	}
	orphanClaim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "scratch", Namespace: "shop"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	waitingClaim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-big-0", Namespace: "shop"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	bigPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "big-0", Namespace: "shop"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-big-0"}}}}}}
	unschedulable("0/2 nodes are available: 2 Insufficient memory.")(bigPod)

	objs := append(nodes, class, set, daemon, job, cron, cronRun, orphanClaim, waitingClaim, bigPod,
		ownedPod("web-0", "StatefulSet", "set-uid", running(true, time.Hour)),
		ownedPod("web-1", "StatefulSet", "set-uid", running(false, 2*time.Minute)),
		ownedPod("migrate-a", "Job", "job-uid", failedAt(40*time.Second)),
		ownedPod("migrate-b", "Job", "job-uid", failedAt(5*time.Second)),
	)
	got := liveReport(t, objs...)
	want := map[string]string{
		"StatefulSet/web":                  "OrderedReady: creating web-2 waits for web-1, which is Running but not Ready for 2m",
		"DaemonSet/gpu-agent":              "no node can take its pod: 0 of 2 nodes: node-1 does not match its node selector or affinity; node-2 does not match its node selector or affinity",
		"Job/migrate":                      "in back-off after 2 failed pods: the next pod starts at 10:00:15 UTC (in 15s); 3 of 4 retries left",
		"CronJob/backup":                   "Forbid: the run at 10:05 UTC is skipped unless Job backup-29653795, running for 5m, finishes first",
		"PersistentVolumeClaim/scratch":    "Pending on WaitForFirstConsumer (StorageClass local-path): no pod uses it, and a volume is made only once one is scheduled",
		"PersistentVolumeClaim/data-big-0": "Pending on WaitForFirstConsumer (StorageClass local-path): its pod big-0 is unschedulable: 0/2 nodes are available: 2 Insufficient memory.",
		"Pod/big-0":                        "",
		"Job/backup-29653795":              "",
	}
	for key, stuck := range want {
		e, ok := got[key]
		if !ok {
			t.Errorf("%s not in the report", key)
			continue
		}
		if e.Stuck != stuck {
			t.Errorf("%s stuck = %q\nwant %q", key, e.Stuck, stuck)
		}
	}
	if e := got["DaemonSet/gpu-agent"]; !strings.Contains(e.Identity, "(0 of 2 nodes:") {
		t.Errorf("DaemonSet identity %q does not count the eligible nodes", e.Identity)
	}
	if f := got["StatefulSet/web"].Findings; len(f) != 1 || f[0].Rule != "statefulset-no-headless-service" || !strings.Contains(f[0].Message, "in namespace shop") {
		t.Errorf("StatefulSet findings %+v, want the missing Service in namespace shop", f)
	}
}

func TestLiveNotStuck(t *testing.T) {
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "set-uid"},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)},
		Status:     appsv1.StatefulSetStatus{ReadyReplicas: 1},
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: "shop", UID: "job-uid"},
		Status:     batchv1.JobStatus{Failed: 1},
	}
	got := liveReport(t, set, job,
		// web-1 is being created: web-0 is Ready.
		ownedPod("web-0", "StatefulSet", "set-uid", running(true, time.Hour)),
		// The retry delay after one failure (10 s) is over: a new pod is due.
		ownedPod("migrate-a", "Job", "job-uid", failedAt(time.Minute)),
	)
	for key, e := range got {
		if e.Stuck != "" {
			t.Errorf("%s stuck = %q, want not stuck", key, e.Stuck)
		}
	}
}

func TestLiveDaemonSetControlPlaneWarningFollowsTheNodes(t *testing.T) {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "shop"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}}},
	}
	got := liveReport(t, ds, node("node-1", nil))
	if f := got["DaemonSet/agent"].Findings; len(f) != 0 {
		t.Errorf("no tainted control-plane node, yet findings %+v", f)
	}
	got = liveReport(t, ds, node("node-1", nil), node("cp-1", nil, corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}))
	if f := got["DaemonSet/agent"].Findings; len(f) != 1 || !strings.Contains(f[0].Message, "no pod on cp-1") {
		t.Errorf("findings %+v, want one naming cp-1", f)
	}
	if id := got["DaemonSet/agent"].Identity; !strings.Contains(id, "(1 of 2 nodes)") {
		t.Errorf("identity %q", id)
	}
}
