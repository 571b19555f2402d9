package scenarios

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	h "quartet.dev/quartet/test/scenarios/harness"
)

// agentSet is a DaemonSet whose pods run in the sim runtime (no command, an
// image quartet does not know) and have no host port, so several scenarios
// can run it side by side. %s are the update strategy block and extra pod
// spec lines.
const agentSet = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: agent
%s  template:
    metadata:
      labels:
        app: agent
    spec:
%s      containers:
        - name: agent
          image: example.com/agent:1
`

func agent(strategy, podSpec string) string {
	return fmt.Sprintf(agentSet, strategy, podSpec)
}

// agentImages is a WaitFor condition: n agent pods, all Ready, all with
// image and the set settled on n.
func agentImages(s *h.S, image string, n int32) func() (bool, string) {
	settled := daemonSetSettled(s, "agent", n)
	return func() (bool, string) {
		ok, seen := settled()
		if !ok {
			return false, seen
		}
		for _, p := range s.Pods("app=agent") {
			if p.Spec.Containers[0].Image != image || p.DeletionTimestamp != nil {
				return false, seen
			}
		}
		return true, seen
	}
}

// revisionNumbers lists the set's ControllerRevisions as "number:image",
// sorted by number.
func revisionNumbers(s *h.S) []string {
	l, err := s.Client.AppsV1().ControllerRevisions(s.NS).List(s.Ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		s.Fatalf("listing revisions: %v", err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Revision < l.Items[j].Revision })
	var out []string
	for _, r := range l.Items {
		image := "?"
		if i := strings.Index(string(r.Data.Raw), `"image":"`); i >= 0 {
			rest := string(r.Data.Raw)[i+len(`"image":"`):]
			image = rest[:strings.Index(rest, `"`)]
		}
		out = append(out, fmt.Sprintf("%d:%s", r.Revision, image))
	}
	return out
}

func podsOn(s *h.S, node string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range s.Pods("app=agent") {
		if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

var _ = h.Register(
	h.Scenario{
		Name:        "daemonset/rolling-update-undo",
		Controllers: []h.Controller{h.DaemonSet},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			s.Apply(agent("", ""))
			s.WaitFor("3 pods at :1", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			s.Kubectl("", "set", "image", "ds/agent", "agent=example.com/agent:2")
			out, err := s.KubectlErr("", "rollout", "status", "ds/agent", "--timeout=2m")
			s.Expect(err == nil && strings.Contains(out, `daemon set "agent" successfully rolled out`), "rollout status: %v\n%s", err, out)
			s.WaitFor("3 pods at :2", 2*time.Minute, agentImages(s, "example.com/agent:2", 3))
			revs := revisionNumbers(s)
			s.Expect(strings.Join(revs, " ") == "1:example.com/agent:1 2:example.com/agent:2", "revisions %v", revs)
			hist := s.Kubectl("", "rollout", "history", "ds/agent")
			s.Expect(strings.Contains(hist, "REVISION") && strings.Contains(hist, "\n1 ") && strings.Contains(hist, "\n2 "), "rollout history:\n%s", hist)

			s.Kubectl("", "rollout", "undo", "ds/agent")
			s.WaitFor("3 pods back at :1", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			revs = revisionNumbers(s)
			s.Expect(strings.Join(revs, " ") == "2:example.com/agent:2 3:example.com/agent:1", "revisions after undo %v", revs)
		},
	},
	h.Scenario{
		Name:        "daemonset/rolling-update-max-unavailable",
		Controllers: []h.Controller{h.DaemonSet},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			s.Apply(agent("  updateStrategy:\n    rollingUpdate:\n      maxUnavailable: 2\n", ""))
			s.WaitFor("3 pods at :1", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			s.Kubectl("", "set", "image", "ds/agent", "agent=example.com/agent:2")
			worst := int32(0)
			s.Eventually("3 pods at :2", 2*time.Minute, func() (bool, string) {
				st := s.DaemonSet("agent").Status
				worst = max(worst, st.NumberUnavailable)
				return agentImages(s, "example.com/agent:2", 3)()
			})
			s.Expect(worst <= 2, "numberUnavailable reached %d, maxUnavailable is 2", worst)
			s.WaitFor("rolled out", time.Minute, agentImages(s, "example.com/agent:2", 3))
		},
	},
	h.Scenario{
		Name:        "daemonset/rolling-update-surge",
		Controllers: []h.Controller{h.DaemonSet},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			s.Apply(agent("  minReadySeconds: 2\n  updateStrategy:\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0\n", ""))
			s.WaitFor("3 pods at :1", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			s.Kubectl("", "set", "image", "ds/agent", "agent=example.com/agent:2")
			sawTwo, worst := false, int32(0)
			s.Eventually("3 pods at :2", 3*time.Minute, func() (bool, string) {
				worst = max(worst, s.DaemonSet("agent").Status.NumberUnavailable)
				for _, n := range []string{"node-1", "node-2", "node-3"} {
					if len(podsOn(s, n)) == 2 {
						sawTwo = true
					}
				}
				return agentImages(s, "example.com/agent:2", 3)()
			})
			s.Expect(worst == 0, "with maxSurge every node keeps an available pod; numberUnavailable reached %d", worst)
			s.Expect(sawTwo, "never saw the new pod next to the old one")
			s.WaitFor("rolled out", time.Minute, agentImages(s, "example.com/agent:2", 3))
		},
	},
	h.Scenario{
		Name:        "daemonset/on-delete",
		Controllers: []h.Controller{h.DaemonSet},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			s.Apply(agent("  updateStrategy:\n    type: OnDelete\n", ""))
			s.WaitFor("3 pods at :1", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			s.Kubectl("", "set", "image", "ds/agent", "agent=example.com/agent:2")
			s.Never("a pod replaced without being deleted", 5*time.Second, func() (bool, string) {
				for _, p := range s.Pods("app=agent") {
					if p.Spec.Containers[0].Image != "example.com/agent:1" {
						return true, h.PodSummary(s.Pods("app=agent"))
					}
				}
				return false, ""
			})
			victim := podsOn(s, "node-2")
			s.Expect(len(victim) == 1, "pods on node-2: %s", h.PodSummary(victim))
			s.DeletePod(victim[0].Name)
			s.WaitFor("node-2 at :2, the rest at :1", 2*time.Minute, func() (bool, string) {
				ds := s.DaemonSet("agent")
				ok := ds.Status.UpdatedNumberScheduled == 1 && ds.Status.NumberAvailable == 3
				for _, n := range []string{"node-1", "node-2", "node-3"} {
					pods := podsOn(s, n)
					want := "example.com/agent:1"
					if n == "node-2" {
						want = "example.com/agent:2"
					}
					ok = ok && len(pods) == 1 && pods[0].Spec.Containers[0].Image == want && h.IsPodReady(&pods[0])
				}
				return ok, fmt.Sprintf("%+v\n%s", ds.Status, h.PodSummary(s.Pods("app=agent")))
			})
		},
	},
	h.Scenario{
		Name:        "daemonset/rollout-restart",
		Controllers: []h.Controller{h.DaemonSet},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			s.Apply(agent("", ""))
			s.WaitFor("3 pods", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			before := map[string]bool{}
			for _, p := range s.Pods("app=agent") {
				before[string(p.UID)] = true
			}
			s.Kubectl("", "rollout", "restart", "ds/agent")
			s.WaitFor("3 new pods", 2*time.Minute, func() (bool, string) {
				ok, seen := agentImages(s, "example.com/agent:1", 3)()
				for _, p := range s.Pods("app=agent") {
					ok = ok && !before[string(p.UID)] && p.Annotations["kubectl.kubernetes.io/restartedAt"] != ""
				}
				return ok, seen
			})
		},
	},
	h.Scenario{
		Name:        "daemonset/pod-deleted-is-replaced",
		Controllers: []h.Controller{h.DaemonSet},
		Run: func(s *h.S) {
			s.Apply(agent("", ""))
			s.WaitFor("3 pods", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			victim := podsOn(s, "node-3")
			s.DeletePod(victim[0].Name)
			s.WaitFor("a new pod on node-3", 2*time.Minute, func() (bool, string) {
				pods := podsOn(s, "node-3")
				ok, seen := agentImages(s, "example.com/agent:1", 3)()
				return ok && len(pods) == 1 && pods[0].UID != victim[0].UID, seen
			})
		},
	},
	h.Scenario{
		Name:        "daemonset/adopts-orphan",
		Controllers: []h.Controller{h.DaemonSet},
		Run: func(s *h.S) {
			// A pod with the set's labels already on node-1: the set adopts it
			// instead of creating another there.
			s.Apply(`apiVersion: v1
kind: Pod
metadata:
  name: early-agent
  labels:
    app: agent
spec:
  nodeName: node-1
  containers:
    - name: agent
      image: example.com/agent:1
`)
			s.WaitFor("the orphan runs", time.Minute, s.PodsReady("app=agent", 1))
			s.Apply(agent("  updateStrategy:\n    type: OnDelete\n", ""))
			// The adopted pod has no controller-revision-hash: it is not up to
			// date, and with OnDelete it stays.
			s.WaitFor("3 pods, the orphan adopted", 2*time.Minute, func() (bool, string) {
				ds := s.DaemonSet("agent")
				st := ds.Status
				p, found := s.Pod("early-agent")
				ref := metav1.GetControllerOf(&p)
				ok := st.ObservedGeneration == ds.Generation && st.DesiredNumberScheduled == 3 && st.CurrentNumberScheduled == 3 &&
					st.NumberAvailable == 3 && st.UpdatedNumberScheduled == 2 && len(s.Pods("app=agent")) == 3 &&
					found && ref != nil && ref.Kind == "DaemonSet" && ref.Name == "agent" && len(podsOn(s, "node-1")) == 1
				return ok, fmt.Sprintf("%+v\n%s", st, h.PodSummary(s.Pods("app=agent")))
			})
		},
	},
	h.Scenario{
		Name:        "daemonset/revision-history-limit",
		Controllers: []h.Controller{h.DaemonSet},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			s.Apply(strings.Replace(agent("", ""), "spec:\n  selector", "spec:\n  revisionHistoryLimit: 1\n  selector", 1))
			s.WaitFor("3 pods at :1", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			for _, v := range []string{"2", "3", "4"} {
				s.Kubectl("", "set", "image", "ds/agent", "agent=example.com/agent:"+v)
				s.WaitFor("3 pods at :"+v, 2*time.Minute, agentImages(s, "example.com/agent:"+v, 3))
			}
			s.WaitFor("one old revision kept", time.Minute, func() (bool, string) {
				revs := revisionNumbers(s)
				return strings.Join(revs, " ") == "3:example.com/agent:3 4:example.com/agent:4", strings.Join(revs, " ")
			})
		},
	},
	h.Scenario{
		Name:        "daemonset/node-labels",
		Controllers: []h.Controller{h.DaemonSet},
		Exclusive:   true,
		Run: func(s *h.S) {
			defer s.Kubectl("", "label", "node", "node-1", "node-2", "node-3", "agent-")
			s.Kubectl("", "label", "node", "node-1", "node-2", "agent=yes", "--overwrite")
			s.Apply(agent("", "      nodeSelector:\n        agent: \"yes\"\n"))
			s.WaitFor("pods on node-1 and node-2", 2*time.Minute, agentImages(s, "example.com/agent:1", 2))
			s.Kubectl("", "label", "node", "node-2", "agent-")
			s.WaitFor("node-2's pod removed", 2*time.Minute, func() (bool, string) {
				ok, seen := agentImages(s, "example.com/agent:1", 1)()
				return ok && len(podsOn(s, "node-1")) == 1, seen
			})
			s.Kubectl("", "label", "node", "node-3", "agent=yes")
			s.WaitFor("node-3 joins", 2*time.Minute, func() (bool, string) {
				ok, seen := agentImages(s, "example.com/agent:1", 2)()
				return ok && len(podsOn(s, "node-3")) == 1, seen
			})
		},
	},
	h.Scenario{
		Name:        "daemonset/taints-after-placement",
		Controllers: []h.Controller{h.DaemonSet},
		Exclusive:   true,
		Run: func(s *h.S) {
			defer func() { _, _ = s.KubectlErr("", "taint", "node", "node-1", "example.com/maint-") }()
			s.Apply(agent("", ""))
			s.WaitFor("3 pods", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			// NoSchedule added over a running pod: it stays.
			s.Kubectl("", "taint", "node", "node-1", "example.com/maint=soon:NoSchedule")
			s.Never("node-1's pod removed by a NoSchedule taint", 5*time.Second, func() (bool, string) {
				return len(podsOn(s, "node-1")) == 0, h.PodSummary(s.Pods("app=agent"))
			})
			// NoExecute: it goes, and no new one comes.
			s.Kubectl("", "taint", "node", "node-1", "example.com/maint=now:NoExecute")
			s.WaitFor("node-1's pod gone", 2*time.Minute, func() (bool, string) {
				ok, seen := agentImages(s, "example.com/agent:1", 2)()
				return ok && len(podsOn(s, "node-1")) == 0, seen
			})
			s.Kubectl("", "taint", "node", "node-1", "example.com/maint-")
			s.WaitFor("back on node-1 once untainted", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
		},
	},
	h.Scenario{
		Name:        "daemonset/cordoned-node-gets-its-pod",
		Controllers: []h.Controller{h.DaemonSet},
		Exclusive:   true,
		Run: func(s *h.S) {
			s.Cordon("node-3")
			defer s.Uncordon("node-3")
			s.Apply(agent("", ""))
			s.WaitFor("3 pods, one on the cordoned node", 2*time.Minute, func() (bool, string) {
				ok, seen := agentImages(s, "example.com/agent:1", 3)()
				pods := podsOn(s, "node-3")
				if len(pods) != 1 {
					return false, seen
				}
				tolerates := false
				for _, t := range pods[0].Spec.Tolerations {
					tolerates = tolerates || (t.Key == corev1.TaintNodeUnschedulable && t.Effect == corev1.TaintEffectNoSchedule)
				}
				return ok && tolerates, seen
			})
		},
	},
	h.Scenario{
		// quartet extension (docs/daemonset.md, "Canary by node"): upstream
		// ignores the annotation and rolls every node.
		Name:        "daemonset/canary-by-node",
		Controllers: []h.Controller{h.DaemonSet},
		Exclusive:   true,
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			defer s.Kubectl("", "label", "node", "node-3", "canary-")
			s.Kubectl("", "label", "node", "node-3", "canary=true", "--overwrite")
			s.Apply(strings.Replace(agent("", ""), "  name: agent\n", "  name: agent\n  annotations:\n    quartet.dev/rollout-node-selector: canary=true\n", 1))
			s.WaitFor("3 pods at :1", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			s.Kubectl("", "set", "image", "ds/agent", "agent=example.com/agent:2")
			if s.Mode.QuartetControllers() {
				s.WaitFor("the canary node updated", 2*time.Minute, func() (bool, string) {
					pods := podsOn(s, "node-3")
					ds := s.DaemonSet("agent")
					return len(pods) == 1 && pods[0].Spec.Containers[0].Image == "example.com/agent:2" && h.IsPodReady(&pods[0]) &&
						ds.Status.UpdatedNumberScheduled == 1 && ds.Status.NumberAvailable == 3, fmt.Sprintf("%+v\n%s", ds.Status, h.PodSummary(s.Pods("app=agent")))
				})
				s.Never("a pod outside the canary replaced", 5*time.Second, func() (bool, string) {
					for _, n := range []string{"node-1", "node-2"} {
						for _, p := range podsOn(s, n) {
							if p.Spec.Containers[0].Image != "example.com/agent:1" {
								return true, h.PodSummary(s.Pods("app=agent"))
							}
						}
					}
					return false, ""
				})
				s.Eventually("RolloutPausedOutsideCanary", time.Minute, s.HasEvent("DaemonSet", "agent", "RolloutPausedOutsideCanary"))
				out, err := s.KubectlErr("", "rollout", "status", "ds/agent", "--timeout=2s")
				s.Expect(err != nil && strings.Contains(out, "1 out of 3 new pods have been updated"), "rollout status while held: %v\n%s", err, out)
			} else {
				s.WaitFor("the canary node updated", 2*time.Minute, agentImages(s, "example.com/agent:2", 3))
			}
			s.Kubectl("", "annotate", "ds/agent", "quartet.dev/rollout-node-selector-")
			s.WaitFor("all at :2 once the annotation is gone", 2*time.Minute, agentImages(s, "example.com/agent:2", 3))
			ds := s.DaemonSet("agent")
			s.Expect(ds.Status.ObservedGeneration == ds.Generation && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType, "status %+v", ds.Status)
		},
	},
	h.Scenario{
		// quartet extension: an unparseable selector is reported and ignored.
		Name:        "daemonset/canary-invalid-selector",
		Controllers: []h.Controller{h.DaemonSet},
		Unordered:   []string{"Pod"},
		Run: func(s *h.S) {
			s.Apply(strings.Replace(agent("", ""), "  name: agent\n", "  name: agent\n  annotations:\n    quartet.dev/rollout-node-selector: \"canary in (true\"\n", 1))
			s.WaitFor("3 pods at :1", 2*time.Minute, agentImages(s, "example.com/agent:1", 3))
			s.Kubectl("", "set", "image", "ds/agent", "agent=example.com/agent:2")
			s.WaitFor("rolled out everywhere", 2*time.Minute, agentImages(s, "example.com/agent:2", 3))
			if s.Mode.QuartetControllers() {
				s.Eventually("InvalidRolloutNodeSelector", time.Minute, s.HasEvent("DaemonSet", "agent", "InvalidRolloutNodeSelector"))
			}
		},
	},
)
