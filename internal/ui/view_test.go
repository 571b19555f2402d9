package ui

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func owner(kind, name string, uid types.UID) []metav1.OwnerReference {
	return []metav1.OwnerReference{{Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}}
}

func pod(ns, name string, phase corev1.PodPhase, ready bool, refs []metav1.OwnerReference, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: refs, Labels: map[string]string{}, CreationTimestamp: metav1.NewTime(t0)},
		Status: corev1.PodStatus{Phase: phase}}
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}}
	for _, m := range mods {
		m(p)
	}
	return p
}

func claim(ns, name, volume string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:   corev1.PersistentVolumeClaimSpec{VolumeName: volume, StorageClassName: ptr.To("local-path")},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}
}

func TestStatefulSetOrdinalsClaimsPartitionRetained(t *testing.T) {
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "set"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), ServiceName: "web",
			UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](2)}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}},
		Status: appsv1.StatefulSetStatus{CurrentRevision: "web-a", UpdateRevision: "web-b", ReadyReplicas: 3, UpdatedReplicas: 1},
	}
	rev := func(r string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Labels[appsv1.ControllerRevisionHashLabelKey] = r }
	}
	refs := owner("StatefulSet", "web", "set")
	s := &snapshot{
		StatefulSets: []*appsv1.StatefulSet{set},
		Pods: []*corev1.Pod{
			pod("default", "web-10", corev1.PodRunning, true, owner("StatefulSet", "web-1", "other")), // another set's pod
			pod("default", "web-2", corev1.PodRunning, true, refs, rev("web-b")),
			pod("default", "web-0", corev1.PodRunning, true, refs, rev("web-a")),
			pod("default", "web-1", corev1.PodRunning, true, refs, rev("web-a")),
		},
		Claims: []*corev1.PersistentVolumeClaim{
			claim("default", "data-web-0", "pv0"), claim("default", "data-web-1", "pv1"), claim("default", "data-web-2", "pv2"),
			claim("default", "data-web-4", "pv4"), claim("default", "data-web-x", ""), claim("other", "data-web-3", "pv3"),
		},
	}
	v := statefulSetsView(s, "", "")
	d := v.Selected
	if d == nil {
		t.Fatal("no StatefulSet selected")
	}
	var got []string
	for _, o := range d.Ordinals {
		line := o.PodName + " " + o.Revision
		for _, c := range o.Claims {
			line += " " + c.Name + ":" + c.Phase + ":" + c.Volume + ":" + c.Capacity
		}
		got = append(got, line)
	}
	want := []string{
		"web-0 web-a data-web-0:Bound:pv0:1Gi",
		"web-1 web-a data-web-1:Bound:pv1:1Gi",
		"web-2 web-b data-web-2:Bound:pv2:1Gi",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ordinals (-want +got):\n%s", diff)
	}
	if d.Partition == nil || *d.Partition != 2 || !d.Ordinals[2].Updated || d.Ordinals[0].Updated {
		t.Errorf("partition %v, updated %v %v", d.Partition, d.Ordinals[0].Updated, d.Ordinals[2].Updated)
	}
	if !d.RolloutDone {
		t.Error("below the partition the old revision stays: the rollout is done")
	}
	if len(d.RetainedClaims) != 1 || d.RetainedClaims[0].Name != "data-web-4" || d.RetainedClaims[0].Ordinal != 4 {
		t.Errorf("retained claims %+v, want data-web-4 only", d.RetainedClaims)
	}

	// Scaled to one while web-2 still terminates: web-2 is shown leaving,
	// data-web-1 is retained (no pod), data-web-2 stays with its pod.
	set.Spec.Replicas = ptr.To[int32](1)
	s.Pods = s.Pods[:3]
	s.Pods[1].DeletionTimestamp = &metav1.Time{Time: t0}
	d = statefulSetsView(s, "default", "web").Selected
	if len(d.Ordinals) != 2 || d.Ordinals[1].Ordinal != 2 || d.Ordinals[1].InRange || d.Ordinals[1].Pod.Status != "Terminating" {
		t.Errorf("ordinals after scale-down: %+v", d.Ordinals)
	}
	var names []string
	for _, c := range d.RetainedClaims {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"data-web-1", "data-web-4"}, names); diff != "" {
		t.Errorf("retained (-want +got):\n%s", diff)
	}
}

func TestDaemonSetGridSaysWhyExcluded(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "gpu-mon", UID: "ds"},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: map[string]string{"hardware": "gpu"},
			Tolerations: []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}}}}
	node := func(name string, labels map[string]string, cordon bool, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Unschedulable: cordon, Taints: taints},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	}
	gpu := map[string]string{"hardware": "gpu"}
	onNode := func(n string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.NodeName = n; p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = "h2" }
	}
	s := &snapshot{
		DaemonSets: []*appsv1.DaemonSet{ds},
		Nodes: []*corev1.Node{
			node("a-plain", nil, false),
			node("b-gpu", gpu, false),
			node("c-gpu-tainted", gpu, false, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}),
			node("d-gpu-control-plane", gpu, false, corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}),
			node("e-gpu-cordoned", gpu, true),
			node("f-gpu-empty", gpu, false),
		},
		Revisions: []*appsv1.ControllerRevision{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "r1", Labels: map[string]string{appsv1.DefaultDaemonSetUniqueLabelKey: "h1"}, OwnerReferences: owner("DaemonSet", "gpu-mon", "ds")}, Revision: 1},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "r2", Labels: map[string]string{appsv1.DefaultDaemonSetUniqueLabelKey: "h2"}, OwnerReferences: owner("DaemonSet", "gpu-mon", "ds")}, Revision: 2},
		},
		Pods: []*corev1.Pod{
			pod("monitoring", "p-b", corev1.PodRunning, true, owner("DaemonSet", "gpu-mon", "ds"), onNode("b-gpu")),
			pod("monitoring", "p-d", corev1.PodRunning, true, owner("DaemonSet", "gpu-mon", "ds"), onNode("d-gpu-control-plane"), func(p *corev1.Pod) {
				p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = "h1"
			}),
			pod("monitoring", "p-e", corev1.PodPending, false, owner("DaemonSet", "gpu-mon", "ds"), onNode("e-gpu-cordoned")),
			pod("monitoring", "p-a", corev1.PodRunning, true, owner("DaemonSet", "gpu-mon", "ds"), onNode("a-plain")),
		},
	}
	v := daemonSetsView(s)
	if v.DaemonSets[0].Revision != "h2" {
		t.Errorf("revision %q, want the newest, h2", v.DaemonSets[0].Revision)
	}
	var got []string
	for i, n := range v.Nodes {
		c := v.Cells[i][0]
		got = append(got, n.Name+" "+c.State+" "+c.Why)
	}
	want := []string{
		"a-plain extra nodeSelector hardware=gpu: the node has no hardware label",
		"b-gpu running ",
		"c-gpu-tainted excluded taint dedicated=db:NoSchedule is not tolerated",
		"d-gpu-control-plane old ",
		"e-gpu-cordoned starting ",
		"f-gpu-empty missing ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
	if !v.Nodes[4].Cordon {
		t.Error("e-gpu-cordoned not shown cordoned")
	}
}

func TestJobFailuresBackoffAndIndexes(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-migration", UID: "job", CreationTimestamp: metav1.NewTime(t0),
		Annotations: map[string]string{"quartet.dev/backoff-base": "2s"}},
		Spec:   batchv1.JobSpec{BackoffLimit: ptr.To[int32](4), ActiveDeadlineSeconds: ptr.To[int64](600)},
		Status: batchv1.JobStatus{Failed: 2, StartTime: &metav1.Time{Time: t0}}}
	failed := func(name string, at time.Duration) *corev1.Pod {
		return pod("default", name, corev1.PodFailed, false, owner("Job", "db-migration", "job"), func(p *corev1.Pod) {
			p.CreationTimestamp = metav1.NewTime(t0.Add(at - time.Second))
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", FinishedAt: metav1.NewTime(t0.Add(at))}}}}
		})
	}
	s := &snapshot{Now: t0.Add(time.Minute), Jobs: []*batchv1.Job{job}, Pods: []*corev1.Pod{failed("b", 10*time.Second), failed("a", time.Second)}}
	d := jobsView(s, "", "").Selected
	if len(d.Pods) != 2 || d.Pods[0].Name != "a" || *d.Pods[0].ExitCode != 1 || d.Pods[0].Status != "Error" {
		t.Fatalf("pods %+v", d.Pods)
	}
	if diff := cmp.Diff([]JobPoint{{t0.Add(time.Second), 0, 1}, {t0.Add(10 * time.Second), 0, 2}}, d.Series); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	// Two failures with a 2 s base: the next try waits 4 s after the last.
	if d.Backoff == nil || d.Backoff.Failures != 2 || d.Backoff.Delay != 4 || !d.Backoff.Next.Equal(t0.Add(14*time.Second)) {
		t.Errorf("backoff %+v", d.Backoff)
	}
	if d.Deadline == nil || !d.Deadline.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("deadline %v", d.Deadline)
	}
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: metav1.NewTime(t0.Add(20 * time.Second))}}
	d = jobsView(s, "default", "db-migration").Selected
	if d.Outcome == nil || d.Outcome.Reason != "BackoffLimitExceeded" || d.Backoff != nil || d.Status != "Failed" {
		t.Errorf("outcome %+v backoff %+v status %s", d.Outcome, d.Backoff, d.Status)
	}

	// Indexed: completed and failed lists, and a running pod.
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	job.Spec.Completions = ptr.To[int32](6)
	job.Status.CompletedIndexes = "0,2-3"
	job.Status.FailedIndexes = ptr.To("5")
	s.Pods = append(s.Pods, pod("default", "c", corev1.PodRunning, true, owner("Job", "db-migration", "job"), func(p *corev1.Pod) {
		p.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: "4"}
	}))
	d = jobsView(s, "default", "db-migration").Selected
	var states []string
	for _, ix := range d.Indexes {
		states = append(states, ix.State)
	}
	if diff := cmp.Diff([]string{"succeeded", "pending", "succeeded", "succeeded", "running", "failed"}, states); diff != "" {
		t.Errorf("indexes (-want +got):\n%s", diff)
	}
}

func TestCronJobTimelineMarksRuns(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 5, 30, 0, time.UTC)
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tick", UID: "cj", CreationTimestamp: metav1.NewTime(now.Add(-6 * time.Minute))},
		Spec: batchv1.CronJobSpec{Schedule: "*/1 * * * *", ConcurrencyPolicy: batchv1.ForbidConcurrent, TimeZone: ptr.To("Asia/Seoul")}}
	at := func(min int) time.Time { return time.Date(2026, 11, 28, 10, min, 0, 0, time.UTC) }
	job := func(min int, started time.Time, done *time.Time, ok bool) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tick-" + itoa(at(min).Unix()/60), OwnerReferences: owner("CronJob", "tick", "cj"),
			Annotations: map[string]string{batchv1.CronJobScheduledTimestampAnnotation: at(min).In(time.FixedZone("KST", 9*3600)).Format(time.RFC3339)}},
			Status: batchv1.JobStatus{StartTime: &metav1.Time{Time: started}}}
		if done != nil {
			typ := batchv1.JobComplete
			if !ok {
				typ = batchv1.JobFailed
			}
			j.Status.CompletionTime = &metav1.Time{Time: *done}
			j.Status.Conditions = []batchv1.JobCondition{{Type: typ, Status: corev1.ConditionTrue}}
		}
		return j
	}
	end := at(3).Add(10 * time.Second)
	event := func(reason, msg string, t time.Time) *corev1.Event {
		return &corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "CronJob", Namespace: "default", Name: "tick"}, Reason: reason, Message: msg,
			FirstTimestamp: metav1.NewTime(t), LastTimestamp: metav1.NewTime(t), Count: 1}
	}
	s := &snapshot{
		Now:      now,
		CronJobs: []*batchv1.CronJob{cj},
		Jobs: []*batchv1.Job{
			job(0, at(0), &end, true), // ran 10:00 to 10:03:10: 10:01, 10:02, 10:03 skipped
			job(4, at(4), nil, false), // still running at 10:05: 10:05 skipped
		},
		Events: []*corev1.Event{
			event("MissSchedule", "Missed scheduled time to start a job: "+at(0).Add(-time.Minute).Format(time.RFC1123Z), at(0)),
		},
	}
	d := cronJobsView(s, "", "", time.UTC).Selected
	if d.Zone != "Asia/Seoul" || d.Error != "" {
		t.Fatalf("zone %q error %q", d.Zone, d.Error)
	}
	var got []string
	for _, r := range d.Runs {
		got = append(got, r.Wall+" "+r.State)
	}
	want := []string{
		"Sat 2026-11-28 19:00 KST succeeded",
		"Sat 2026-11-28 19:01 KST skipped",
		"Sat 2026-11-28 19:02 KST skipped",
		"Sat 2026-11-28 19:03 KST skipped",
		"Sat 2026-11-28 19:04 KST running",
		"Sat 2026-11-28 19:05 KST skipped",
		"Sat 2026-11-28 19:06 KST next",
	}
	if len(got) < len(want)+1 {
		t.Fatalf("runs %v", got)
	}
	// First the missed run before creation (from its event), then the rest.
	if got[0] != "Sat 2026-11-28 18:59 KST missed" {
		t.Errorf("first run %q, want the missed 18:59", got[0])
	}
	if diff := cmp.Diff(want, got[1:len(want)+1]); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	if n := strings.Count(strings.Join(got, "\n"), " next"); n != nextRuns {
		t.Errorf("%d next runs, want %d", n, nextRuns)
	}

	// Replace: a Job deleted while it ran is marked replaced.
	cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
	s.Jobs = s.Jobs[1:]
	s.GoneJobs = []goneJob{{Namespace: "default", Name: "tick-" + itoa(at(3).Unix()/60), Owner: "tick", Active: true}}
	s.Events = append(s.Events, event("SuccessfulDelete", "Deleted job tick-"+itoa(at(3).Unix()/60), at(4)))
	d = cronJobsView(s, "default", "tick", time.UTC).Selected
	for _, r := range d.Runs {
		if r.Time.Equal(at(3)) && r.State != RunReplaced {
			t.Errorf("10:03 is %s, want replaced", r.State)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
