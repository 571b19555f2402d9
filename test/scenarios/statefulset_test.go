package scenarios

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	h "quartet.dev/quartet/test/scenarios/harness"
)

// webSet is the chapter's StatefulSet with extra spec lines (indented two
// spaces, under spec:) and metadata lines (under metadata:).
func webSet(replicas int, spec, metadata string) string {
	out := strings.Replace(webStatefulSet, "  replicas: 3\n", fmt.Sprintf("  replicas: %d\n%s", replicas, spec), 1)
	return strings.Replace(out, "  name: web\n", "  name: web\n"+metadata, 1)
}

// podImages is a WaitFor condition: exactly n pods of app=web, all Running
// and Ready with image and at the set's update revision.
func podImages(s *h.S, image string, n int) func() (bool, string) {
	return func() (bool, string) {
		pods := s.Pods("app=web")
		sts := s.StatefulSet("web")
		ok := len(pods) == n
		for i := range pods {
			p := &pods[i]
			ok = ok && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && h.IsPodReady(p) &&
				p.Spec.Containers[0].Image == image && p.Labels[appsv1.StatefulSetRevisionLabel] == sts.Status.UpdateRevision
		}
		return ok, fmt.Sprintf("%+v\n%s", sts.Status, h.PodSummary(pods))
	}
}

// settled is a WaitFor condition: the set's status says n replicas, all
// ready, updated and current, for the latest generation.
func settled(s *h.S, n int32) func() (bool, string) {
	return func() (bool, string) {
		sts := s.StatefulSet("web")
		st := sts.Status
		return st.ObservedGeneration == sts.Generation && st.Replicas == n && st.ReadyReplicas == n &&
			st.AvailableReplicas == n && st.UpdatedReplicas == n && st.CurrentReplicas == n &&
			st.CurrentRevision == st.UpdateRevision, fmt.Sprintf("%+v", st)
	}
}

func imageOf(s *h.S, pod string) string {
	p, ok := s.Pod(pod)
	if !ok {
		return ""
	}
	return p.Spec.Containers[0].Image
}

var _ = h.Register(
	h.Scenario{
		Name:        "statefulset/parallel-scale-up-and-down",
		Controllers: []h.Controller{h.StatefulSet},
		Unordered:   []string{"Pod", "PersistentVolumeClaim"},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(5, "  podManagementPolicy: Parallel\n", ""))
			s.WaitFor("5 pods Ready", 2*time.Minute, s.PodsReady("app=web", 5))
			s.WaitFor("status settled at 5", time.Minute, settled(s, 5))
			s.Scale("statefulset/web", 2)
			s.WaitFor("2 pods left", 2*time.Minute, s.PodsReady("app=web", 2))
			for _, p := range s.Pods("app=web") {
				s.Expect(p.Name == "web-0" || p.Name == "web-1", "pod %s left after scaling to 2", p.Name)
			}
			s.WaitFor("status settled at 2", time.Minute, settled(s, 2))
			s.Expect(len(claimVolumes(s)) == 5, "claims after scale-down: %v", claimVolumes(s))
		},
	},
	h.Scenario{
		Name:        "statefulset/ordered-waits-for-unready-pod",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(2, "", ""))
			s.WaitFor("2 pods Ready", 2*time.Minute, s.PodsReady("app=web", 2))
			s.SetSimReady("web-1", false)
			s.WaitFor("web-1 not Ready", time.Minute, func() (bool, string) {
				p, _ := s.Pod("web-1")
				return !h.IsPodReady(&p), h.PodSummary(s.Pods("app=web"))
			})
			s.Scale("statefulset/web", 4)
			s.Never("web-2 created while web-1 is not Ready", 8*time.Second, func() (bool, string) {
				_, ok := s.Pod("web-2")
				return ok, h.PodSummary(s.Pods("app=web"))
			})
			s.SetSimReady("web-1", true)
			s.WaitFor("4 pods Ready", 2*time.Minute, s.PodsReady("app=web", 4))
		},
	},
	h.Scenario{
		Name:        "statefulset/rolling-update-and-history",
		Controllers: []h.Controller{h.StatefulSet},
		Timeout:     6 * time.Minute,
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(3, "", ""))
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			first := s.StatefulSet("web").Status.CurrentRevision
			s.Kubectl("", "annotate", "sts/web", "kubernetes.io/change-cause=nginx 1.28")
			s.Kubectl("", "set", "image", "sts/web", "nginx=nginx:1.28")
			s.WaitFor("every pod at nginx:1.28", 3*time.Minute, podImages(s, "nginx:1.28", 3))
			s.WaitFor("rollout complete", time.Minute, settled(s, 3))
			out := s.Kubectl("", "rollout", "status", "sts/web", "--timeout=30s")
			s.Expect(strings.Contains(out, "partitioned roll out complete: 3 new pods have been updated"), "rollout status: %s", out)
			out = s.Kubectl("", "rollout", "history", "sts/web")
			s.Expect(strings.Contains(out, "2         nginx 1.28"), "rollout history:\n%s", out)
			second := s.StatefulSet("web").Status.CurrentRevision
			s.Expect(second != first, "revision did not change: %s", second)
			for _, p := range s.Pods("app=web") {
				s.Expect(podClaim(&p, "data") == "data-"+p.Name, "pod %s mounts %q after the update", p.Name, podClaim(&p, "data"))
			}

			s.Kubectl("", "rollout", "undo", "sts/web")
			s.WaitFor("back at nginx:1.27", 3*time.Minute, podImages(s, "nginx:1.27", 3))
			s.WaitFor("rollback complete", time.Minute, settled(s, 3))
			s.Expect(s.StatefulSet("web").Status.CurrentRevision == first, "after undo the revision is %s, want %s", s.StatefulSet("web").Status.CurrentRevision, first)
			revs, err := s.Client.AppsV1().ControllerRevisions(s.NS).List(s.Ctx, metav1.ListOptions{})
			s.Expect(err == nil && len(revs.Items) == 2, "revisions after undo: %v %d", err, len(revs.Items))
			for _, r := range revs.Items {
				s.Note("revision "+r.Name, r.Revision)
			}
		},
	},
	h.Scenario{
		Name:        "statefulset/rollout-restart",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(2, "", ""))
			s.WaitFor("2 pods Ready", 2*time.Minute, s.PodsReady("app=web", 2))
			before := map[string]string{}
			for _, p := range s.Pods("app=web") {
				before[p.Name] = string(p.UID)
			}
			s.Kubectl("", "rollout", "restart", "sts/web")
			s.WaitFor("every pod replaced", 3*time.Minute, func() (bool, string) {
				pods := s.Pods("app=web")
				done := len(pods) == 2
				for _, p := range pods {
					done = done && string(p.UID) != before[p.Name] && h.IsPodReady(&p) && p.Annotations["kubectl.kubernetes.io/restartedAt"] != ""
				}
				return done, h.PodSummary(pods)
			})
			s.WaitFor("rollout complete", time.Minute, settled(s, 2))
		},
	},
	h.Scenario{
		Name:        "statefulset/partition",
		Controllers: []h.Controller{h.StatefulSet},
		// Three rollouts and a pod's full termination and return.
		Timeout: 6 * time.Minute,
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(3, "  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate:\n      partition: 2\n", ""))
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			s.Kubectl("", "set", "image", "sts/web", "nginx=nginx:1.28")
			s.WaitFor("web-2 updated", 2*time.Minute, func() (bool, string) {
				p, ok := s.Pod("web-2")
				return ok && h.IsPodReady(&p) && p.Spec.Containers[0].Image == "nginx:1.28", h.PodSummary(s.Pods("app=web"))
			})
			out := s.Kubectl("", "rollout", "status", "sts/web", "--timeout=30s")
			s.Expect(strings.Contains(out, "partitioned roll out complete: 1 new pods have been updated"), "rollout status: %s", out)
			s.Never("web-0 or web-1 updated below the partition", 5*time.Second, func() (bool, string) {
				return imageOf(s, "web-0") != "nginx:1.27" || imageOf(s, "web-1") != "nginx:1.27", h.PodSummary(s.Pods("app=web"))
			})
			// A pod below the partition that is deleted comes back at the
			// current revision. The wait is for the new pod (the deleted one
			// stays Ready while it terminates) and for the set's status to
			// count it, so the checkpoint does not catch either in flight.
			old, _ := s.Pod("web-0")
			s.DeletePod("web-0")
			s.WaitFor("web-0 back at nginx:1.27", 2*time.Minute, func() (bool, string) {
				p, ok := s.Pod("web-0")
				back := ok && p.UID != old.UID && p.DeletionTimestamp == nil && h.IsPodReady(&p) && p.Spec.Containers[0].Image == "nginx:1.27"
				return back && s.StatefulSet("web").Status.ReadyReplicas == 3, h.PodSummary(s.Pods("app=web"))
			})
			s.Kubectl("", "patch", "sts/web", "--type=merge", "-p", `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`)
			s.WaitFor("every pod at nginx:1.28", 3*time.Minute, podImages(s, "nginx:1.28", 3))
			s.WaitFor("rollout complete", time.Minute, settled(s, 3))
		},
	},
	h.Scenario{
		Name:        "statefulset/max-unavailable",
		Controllers: []h.Controller{h.StatefulSet},
		// Parallel: pods and their claims are created concurrently in both
		// modes, so their order is a race.
		Unordered: []string{"Pod", "PersistentVolumeClaim"},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(4, "  podManagementPolicy: Parallel\n  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: 2\n", ""))
			s.WaitFor("4 pods Ready", 2*time.Minute, s.PodsReady("app=web", 4))
			s.Kubectl("", "set", "image", "sts/web", "nginx=nginx:1.28")
			maxDown := 0
			s.WaitFor("every pod at nginx:1.28", 3*time.Minute, func() (bool, string) {
				pods := s.Pods("app=web")
				ready := 0
				for i := range pods {
					if h.IsPodReady(&pods[i]) && pods[i].DeletionTimestamp == nil {
						ready++
					}
				}
				maxDown = max(maxDown, 4-ready)
				return podImages(s, "nginx:1.28", 4)()
			})
			s.Expect(maxDown <= 2, "%d pods down at once with maxUnavailable 2", maxDown)
			s.WaitFor("rollout complete", time.Minute, settled(s, 4))
		},
	},
	h.Scenario{
		Name:        "statefulset/on-delete",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(2, "  updateStrategy:\n    type: OnDelete\n", ""))
			s.WaitFor("2 pods Ready", 2*time.Minute, s.PodsReady("app=web", 2))
			s.Kubectl("", "set", "image", "sts/web", "nginx=nginx:1.28")
			s.Never("a pod replaced by the controller", 6*time.Second, func() (bool, string) {
				return imageOf(s, "web-0") != "nginx:1.27" || imageOf(s, "web-1") != "nginx:1.27", h.PodSummary(s.Pods("app=web"))
			})
			s.DeletePod("web-1")
			s.WaitFor("web-1 back at nginx:1.28", 2*time.Minute, func() (bool, string) {
				p, ok := s.Pod("web-1")
				return ok && h.IsPodReady(&p) && p.Spec.Containers[0].Image == "nginx:1.28", h.PodSummary(s.Pods("app=web"))
			})
			st := s.StatefulSet("web").Status
			s.Expect(st.UpdatedReplicas == 1 && st.CurrentReplicas == 1 && st.CurrentRevision != st.UpdateRevision, "status %+v", st)
		},
	},
	h.Scenario{
		Name:        "statefulset/retention-policy-delete",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(3, "  persistentVolumeClaimRetentionPolicy:\n    whenScaled: Delete\n    whenDeleted: Delete\n", ""))
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			s.WaitFor("each claim owned by the set", time.Minute, func() (bool, string) {
				vols := claimOwners(s)
				ok := len(vols) == 3
				for _, owners := range vols {
					ok = ok && owners == "StatefulSet/web"
				}
				return ok, fmt.Sprint(vols)
			})
			s.Scale("statefulset/web", 1)
			s.WaitFor("data-web-1 and data-web-2 deleted with their pods", 2*time.Minute, func() (bool, string) {
				vols := claimOwners(s)
				_, has0 := vols["data-web-0"]
				return len(vols) == 1 && has0, fmt.Sprint(vols)
			})
			s.Kubectl("", "delete", "sts/web")
			s.WaitFor("data-web-0 deleted with the set", 2*time.Minute, func() (bool, string) {
				vols := claimOwners(s)
				return len(vols) == 0, fmt.Sprint(vols)
			})
		},
	},
	h.Scenario{
		Name:        "statefulset/ordinals-start",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(2, "  ordinals:\n    start: 5\n", ""))
			s.WaitFor("web-5 and web-6 Ready", 2*time.Minute, s.PodsReady("app=web", 2))
			for i, p := range s.Pods("app=web") {
				want := fmt.Sprintf("web-%d", 5+i)
				s.Expect(p.Name == want && p.Spec.Hostname == want && p.Labels[appsv1.PodIndexLabel] == fmt.Sprint(5+i),
					"pod %s hostname %q index %q, want %s", p.Name, p.Spec.Hostname, p.Labels[appsv1.PodIndexLabel], want)
				s.Expect(podClaim(&p, "data") == "data-"+want, "pod %s mounts %q", p.Name, podClaim(&p, "data"))
			}
			s.Kubectl("", "patch", "sts/web", "--type=merge", "-p", `{"spec":{"ordinals":{"start":6}}}`)
			s.WaitFor("web-6 and web-7", 2*time.Minute, func() (bool, string) {
				pods := s.Pods("app=web")
				ok := len(pods) == 2
				for i, p := range pods {
					ok = ok && p.Name == fmt.Sprintf("web-%d", 6+i) && h.IsPodReady(&p)
				}
				return ok, h.PodSummary(pods)
			})
		},
	},
	h.Scenario{
		Name:        "statefulset/min-ready-seconds",
		Controllers: []h.Controller{h.StatefulSet},
		Timeout:     6 * time.Minute,
		Run: func(s *h.S) {
			// 20 s, not a few: the controller publishes the Ready but not
			// yet available status in that window, and on a busy cluster
			// its sync after the pod's readiness can come seconds late.
			s.Apply(webHeadless, webSet(2, "  minReadySeconds: 20\n", ""))
			s.WaitFor("web-0 Ready but not yet available", 3*time.Minute, func() (bool, string) {
				st := s.StatefulSet("web").Status
				return st.ReadyReplicas == 1 && st.AvailableReplicas == 0, fmt.Sprintf("%+v", st)
			})
			s.WaitFor("both available", 3*time.Minute, settled(s, 2))
			pods := s.Pods("app=web")
			if len(pods) == 2 {
				gap := pods[1].CreationTimestamp.Sub(readySince(&pods[0]).Truncate(time.Second))
				s.Expect(gap >= 19*time.Second, "web-1 created %v after web-0 was Ready, want at least minReadySeconds", gap)
			}
		},
	},
	h.Scenario{
		Name:        "statefulset/adopt-orphan-pod",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			// Without volumeClaimTemplates: an adopted pod cannot be given
			// the claim volume (pod volumes are immutable), which stops
			// upstream's controller and quartet's alike.
			set := `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 0
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: nginx
          image: nginx:1.27
`
			// Learn the template's revision name, then delete the set and
			// leave its ControllerRevision behind as an orphan.
			s.Apply(webHeadless, set)
			s.WaitFor("the set's first revision", time.Minute, func() (bool, string) {
				st := s.StatefulSet("web").Status
				return st.UpdateRevision != "", fmt.Sprintf("%+v", st)
			})
			rev := s.StatefulSet("web").Status.UpdateRevision
			s.Kubectl("", "delete", "sts/web", "--cascade=orphan")
			// An orphan pod that matches the selector and the naming, at
			// that revision so that it is not rolled afterwards.
			s.Apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: web-0
  labels:
    app: web
    controller-revision-hash: %s
spec:
  containers:
    - name: nginx
      image: nginx:1.27
`, rev))
			s.WaitFor("the orphan Running", time.Minute, s.PodsReady("app=web", 1))
			orphan, _ := s.Pod("web-0")
			s.Apply(strings.Replace(set, "replicas: 0", "replicas: 2", 1))
			s.WaitFor("2 pods Ready", 2*time.Minute, s.PodsReady("app=web", 2))
			s.WaitFor("web-0 adopted, with its identity labels", time.Minute, func() (bool, string) {
				p, _ := s.Pod("web-0")
				ref := metav1.GetControllerOf(&p)
				return ref != nil && ref.Kind == "StatefulSet" && p.Labels[appsv1.StatefulSetPodNameLabel] == "web-0", fmt.Sprint(p.OwnerReferences, p.Labels)
			})
			s.WaitFor("the orphaned revision adopted and reused", time.Minute, func() (bool, string) {
				r, err := s.Client.AppsV1().ControllerRevisions(s.NS).Get(s.Ctx, rev, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				ref := metav1.GetControllerOf(r)
				st := s.StatefulSet("web").Status
				return ref != nil && ref.Name == "web" && st.UpdateRevision == rev && st.CurrentRevision == rev, fmt.Sprintf("%v %+v", r.OwnerReferences, st)
			})
			p, _ := s.Pod("web-0")
			s.Expect(p.UID == orphan.UID, "web-0 was replaced rather than adopted")
		},
	},
	h.Scenario{
		// quartet extension (docs/statefulset.md, replace-unready-after):
		// upstream leaves the rollout stuck on the broken pod.
		Name:        "statefulset/replace-unready-after",
		Controllers: []h.Controller{h.StatefulSet},
		Timeout:     4 * time.Minute,
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(3, "", "  annotations:\n    quartet.dev/replace-unready-after: \"15s\"\n"))
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			// A template whose pods never become Ready.
			s.Kubectl("", "patch", "sts/web", "--type=merge", "-p", `{"spec":{"template":{"metadata":{"annotations":{"quartet.dev/sim-ready":"false"}}}}}`)
			s.WaitFor("web-2 recreated from the broken template", 2*time.Minute, func() (bool, string) {
				p, ok := s.Pod("web-2")
				return ok && p.Annotations[h.AnnotationSimReady] == "false" && p.Status.Phase == corev1.PodRunning, h.PodSummary(s.Pods("app=web"))
			})
			// The fix: a new image, without the broken annotation.
			s.Kubectl("", "patch", "sts/web", "--type=json", "-p",
				`[{"op":"remove","path":"/spec/template/metadata/annotations"},{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.28"}]`)
			if s.Mode.QuartetControllers() {
				s.WaitFor("every pod at the fixed template", 3*time.Minute, podImages(s, "nginx:1.28", 3))
				s.Eventually("ReplacingUnreadyPod", time.Minute, s.HasEvent("StatefulSet", "web", "ReplacingUnreadyPod"))
				s.WaitFor("rollout complete", time.Minute, settled(s, 3))
			} else {
				s.Never("the rollout moving past the broken pod", 30*time.Second, func() (bool, string) {
					return imageOf(s, "web-2") == "nginx:1.28", h.PodSummary(s.Pods("app=web"))
				})
			}
		},
	},
	h.Scenario{
		// quartet extension (issue 13 item 10): an OrderedReady set of two
		// whose first pod never became Ready; web-1 is never created, and
		// the extension still replaces web-0 once the template is fixed.
		Name:        "statefulset/replace-unready-after-first-pod",
		Controllers: []h.Controller{h.StatefulSet},
		Timeout:     4 * time.Minute,
		Run: func(s *h.S) {
			broken := strings.Replace(webSet(2, "", "  annotations:\n    quartet.dev/replace-unready-after: \"15s\"\n"),
				"    metadata:\n      labels:\n        app: web\n",
				"    metadata:\n      labels:\n        app: web\n      annotations:\n        quartet.dev/sim-ready: \"false\"\n", 1)
			s.Apply(webHeadless, broken)
			s.WaitFor("web-0 Running from the broken template", 2*time.Minute, func() (bool, string) {
				p, ok := s.Pod("web-0")
				return ok && p.Annotations[h.AnnotationSimReady] == "false" && p.Status.Phase == corev1.PodRunning, h.PodSummary(s.Pods("app=web"))
			})
			// The fix: a new image, without the broken annotation.
			s.Kubectl("", "patch", "sts/web", "--type=json", "-p",
				`[{"op":"remove","path":"/spec/template/metadata/annotations"},{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.28"}]`)
			if s.Mode.QuartetControllers() {
				s.WaitFor("both pods at the fixed template", 3*time.Minute, podImages(s, "nginx:1.28", 2))
				s.Eventually("ReplacingUnreadyPod", time.Minute, s.HasEvent("StatefulSet", "web", "ReplacingUnreadyPod"))
				s.WaitFor("rollout complete", time.Minute, settled(s, 2))
			} else {
				s.Never("web-0 replaced", 30*time.Second, func() (bool, string) {
					return imageOf(s, "web-0") == "nginx:1.28", h.PodSummary(s.Pods("app=web"))
				})
			}
		},
	},
	h.Scenario{
		// quartet extension: an invalid value is reported once and ignored.
		Name:        "statefulset/replace-unready-after-invalid",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webSet(1, "", "  annotations:\n    quartet.dev/replace-unready-after: soon\n"))
			s.WaitFor("web-0 Ready", 2*time.Minute, s.PodsReady("app=web", 1))
			if s.Mode.QuartetControllers() {
				s.Eventually("InvalidReplaceUnreadyAfter", time.Minute, s.HasEvent("StatefulSet", "web", "InvalidReplaceUnreadyAfter"))
			}
		},
	},
)

// claimOwners maps each claim in the namespace to its owners, as
// "Kind/name,...", ending in "(deleting)" for a claim being deleted. A claim
// counts until it is gone: whether the garbage collector's delete or the
// claim's last pod is still pending when a checkpoint is taken is timing.
func claimOwners(s *h.S) map[string]string {
	l, err := s.Client.CoreV1().PersistentVolumeClaims(s.NS).List(s.Ctx, metav1.ListOptions{})
	if err != nil {
		s.Fatalf("listing claims: %v", err)
	}
	out := map[string]string{}
	for _, c := range l.Items {
		var owners []string
		for _, r := range c.OwnerReferences {
			owners = append(owners, r.Kind+"/"+r.Name)
		}
		if c.DeletionTimestamp != nil {
			owners = append(owners, "(deleting)")
		}
		out[c.Name] = strings.Join(owners, ",")
	}
	return out
}
