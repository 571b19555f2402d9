package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	h "quartet.dev/quartet/test/scenarios/harness"
)

// webWriter is the chapter's StatefulSet with a container that runs as a
// process: each pod appends its name to /data/visits in its volume.
const webWriter = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: writer
          image: busybox
          command: ["sh", "-c", "echo $(hostname) >> /data/visits; exec sleep 3600"]
          volumeMounts:
            - name: data
              mountPath: /data
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: 1Gi
`

var _ = h.Register(
	h.Scenario{
		Name:        "storage/statefulset-claims-and-directories",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webStatefulSet)
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			s.Eventually("3 claims Bound", time.Minute, claimsBound(s, "app=web", "data-web-0", "data-web-1", "data-web-2"))
			for _, p := range s.Pods("app=web") {
				pv := boundVolume(s, "data-"+p.Name)
				if pv == nil {
					continue
				}
				s.Expect(pv.Spec.StorageClassName == "local-path" && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete,
					"%s: class %q reclaim %s", pv.Name, pv.Spec.StorageClassName, pv.Spec.PersistentVolumeReclaimPolicy)
				s.Expect(pv.Spec.Local != nil && pv.Spec.Local.Path == filepath.Join(s.DataDir(), "storage", pv.Name),
					"%s: local source %+v", pv.Name, pv.Spec.Local)
				if pv.Spec.Local != nil {
					st, err := os.Stat(pv.Spec.Local.Path)
					s.Expect(err == nil && st.IsDir() && st.Mode().Perm() == 0o777, "%s: directory %v %v", pv.Name, st, err)
				}
				s.Expect(volumeNodes(pv) == p.Spec.NodeName, "%s pinned to %q, pod %s runs on %s", pv.Name, volumeNodes(pv), p.Name, p.Spec.NodeName)
				q := pv.Spec.Capacity[corev1.ResourceStorage]
				s.Expect(q.String() == "1Gi", "%s capacity %s", pv.Name, q.String())
			}
		},
	},
	h.Scenario{
		Name:        "storage/file-survives-pod-delete",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webWriter)
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			visits := func() string {
				pv := boundVolume(s, "data-web-1")
				if pv == nil || pv.Spec.Local == nil {
					return ""
				}
				b, _ := os.ReadFile(filepath.Join(pv.Spec.Local.Path, "visits"))
				return string(b)
			}
			s.Eventually("web-1 wrote its name", 30*time.Second, func() (bool, string) { return visits() == "web-1\n", visits() })
			old, _ := s.Pod("web-1")
			s.DeletePod("web-1")
			s.WaitFor("web-1 back and Ready", 2*time.Minute, func() (bool, string) {
				p, ok := s.Pod("web-1")
				return ok && p.UID != old.UID && h.IsPodReady(&p), h.PodSummary(s.Pods("app=web"))
			})
			s.Eventually("the new web-1 sees the old file and adds to it", 30*time.Second, func() (bool, string) {
				return visits() == "web-1\nweb-1\n", visits()
			})
		},
	},
	h.Scenario{
		Name:        "storage/delete-claim-removes-volume",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			s.Apply(webHeadless, webStatefulSet)
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			pv := boundVolume(s, "data-web-2")
			if pv == nil {
				return
			}
			s.Scale("statefulset/web", 2)
			s.WaitFor("web-2 gone", time.Minute, s.PodsReady("app=web", 2))
			s.Expect(claimVolumes(s)["data-web-2"] == pv.Name, "data-web-2 after scale-down: %v", claimVolumes(s))
			s.Kubectl("", "delete", "pvc", "data-web-2", "--wait=false")
			s.WaitFor("volume and directory deleted", time.Minute, func() (bool, string) {
				_, err := s.Client.CoreV1().PersistentVolumes().Get(s.Ctx, pv.Name, metav1.GetOptions{})
				_, statErr := os.Stat(pv.Spec.Local.Path)
				return apierrors.IsNotFound(err) && os.IsNotExist(statErr), fmt.Sprintf("get: %v, stat: %v", err, statErr)
			})
		},
	},
	h.Scenario{
		Name: "storage/retain-class-keeps-volume",
		Run: func(s *h.S) {
			s.Apply(claimDoc("kept", "local-path-retain", "ReadWriteOnce"), podDoc("user", "kept"))
			s.WaitFor("pod Ready", time.Minute, s.PodsReady("", 1))
			s.Eventually("claim Bound", time.Minute, claimsBound(s, "", "kept"))
			pv := boundVolume(s, "kept")
			if pv == nil {
				return
			}
			defer func() {
				_ = s.Client.CoreV1().PersistentVolumes().Delete(s.Ctx, pv.Name, metav1.DeleteOptions{})
				_ = os.RemoveAll(pv.Spec.Local.Path)
			}()
			s.Kubectl("", "delete", "pod", "user", "--wait=true")
			s.Kubectl("", "delete", "pvc", "kept", "--wait=true")
			s.WaitFor("volume Released", time.Minute, func() (bool, string) {
				got, err := s.Client.CoreV1().PersistentVolumes().Get(s.Ctx, pv.Name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				return got.Status.Phase == corev1.VolumeReleased, string(got.Status.Phase)
			})
			s.Never("volume or directory deleted", 2*time.Second, func() (bool, string) {
				_, err := s.Client.CoreV1().PersistentVolumes().Get(s.Ctx, pv.Name, metav1.GetOptions{})
				_, statErr := os.Stat(pv.Spec.Local.Path)
				return err != nil || statErr != nil, fmt.Sprintf("get: %v, stat: %v", err, statErr)
			})
		},
	},
	h.Scenario{
		Name: "storage/refused-claims-stay-pending",
		Run: func(s *h.S) {
			s.Apply(
				claimDoc("shared", "", "ReadWriteMany"), podDoc("shared-user", "shared"),
				claimDoc("nosuch", "does-not-exist", "ReadWriteOnce"),
			)
			s.WaitFor("ProvisioningFailed for ReadWriteMany", time.Minute, s.HasEvent("PersistentVolumeClaim", "shared", "ProvisioningFailed"))
			s.WaitFor("ProvisioningFailed for a missing class", time.Minute, s.HasEvent("PersistentVolumeClaim", "nosuch", "ProvisioningFailed"))
			out := s.Kubectl("", "describe", "pvc", "shared")
			s.Expect(strings.Contains(out, "access mode ReadWriteMany is not supported by quartet.dev/local-path"), "describe pvc shared:\n%s", out)
			out = s.Kubectl("", "describe", "pvc", "nosuch")
			s.Expect(strings.Contains(out, `storageclass.storage.k8s.io "does-not-exist" not found`), "describe pvc nosuch:\n%s", out)
			out = s.Kubectl("", "get", "pvc", "--no-headers")
			s.Expect(strings.Count(out, "Pending") == 2, "claims:\n%s", out)
		},
	},
	h.Scenario{
		Name: "storage/claim-in-use-waits",
		Run: func(s *h.S) {
			s.Apply(claimDoc("busy", "", "ReadWriteOnce"), podDoc("user", "busy"))
			s.WaitFor("pod Ready", time.Minute, s.PodsReady("", 1))
			s.Eventually("claim Bound", time.Minute, claimsBound(s, "", "busy"))
			s.Kubectl("", "delete", "pvc", "busy", "--wait=false")
			s.Never("claim removed while its pod runs", 3*time.Second, func() (bool, string) {
				_, err := s.Client.CoreV1().PersistentVolumeClaims(s.NS).Get(s.Ctx, "busy", metav1.GetOptions{})
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
			s.Kubectl("", "delete", "pod", "user")
			s.WaitFor("claim removed once the pod is gone", time.Minute, func() (bool, string) {
				_, err := s.Client.CoreV1().PersistentVolumeClaims(s.NS).Get(s.Ctx, "busy", metav1.GetOptions{})
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
		},
	},
	h.Scenario{
		Name:        "dns/statefulset-pod-names",
		Controllers: []h.Controller{h.StatefulSet},
		Run: func(s *h.S) {
			addr := s.DNSAddr()
			if addr == "" {
				s.Fatalf("quartet up printed no cluster DNS address")
			}
			s.Apply(webHeadless, webStatefulSet)
			s.WaitFor("3 pods Ready", 2*time.Minute, s.PodsReady("app=web", 3))
			svc := "web." + s.NS + ".svc.cluster.local."
			var ips []string
			for _, p := range s.Pods("app=web") {
				ips = append(ips, p.Status.PodIP)
				name := p.Name + "." + svc
				s.Eventually(name+" answers the pod IP", 10*time.Second, func() (bool, string) {
					got, rcode := lookup(addr, name, dns.TypeA)
					return rcode == dns.RcodeSuccess && slices.Equal(got, []string{p.Status.PodIP}), fmt.Sprintf("%s %v", dns.RcodeToString[rcode], got)
				})
			}
			slices.Sort(ips)
			s.Eventually(svc+" answers every pod", 10*time.Second, func() (bool, string) {
				got, rcode := lookup(addr, svc, dns.TypeA)
				slices.Sort(got)
				return rcode == dns.RcodeSuccess && slices.Equal(got, ips), fmt.Sprintf("%s %v", dns.RcodeToString[rcode], got)
			})
			s.Scale("statefulset/web", 2)
			s.WaitFor("web-2 gone", time.Minute, s.PodsReady("app=web", 2))
			s.Eventually("web-2's name stops resolving", 10*time.Second, func() (bool, string) {
				got, rcode := lookup(addr, "web-2."+svc, dns.TypeA)
				return rcode == dns.RcodeNameError, fmt.Sprintf("%s %v", dns.RcodeToString[rcode], got)
			})
			got, rcode := lookup(addr, "web-0."+svc, dns.TypeA)
			s.Expect(rcode == dns.RcodeSuccess && len(got) == 1, "web-0 after scale-down: %s %v", dns.RcodeToString[rcode], got)
		},
	},
)

// lookup asks cluster DNS over UDP and returns the addresses or targets
// answered and the rcode.
func lookup(addr, name string, qtype uint16) ([]string, int) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	m, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, addr)
	if err != nil {
		return []string{err.Error()}, -1
	}
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.PTR:
			out = append(out, rr.Ptr)
		}
	}
	return out, m.Rcode
}

// boundVolume returns the volume bound to claim, failing the run if there is
// none.
func boundVolume(s *h.S, claim string) *corev1.PersistentVolume {
	c, err := s.Client.CoreV1().PersistentVolumeClaims(s.NS).Get(s.Ctx, claim, metav1.GetOptions{})
	if err != nil || c.Spec.VolumeName == "" {
		s.Errorf("claim %s has no volume (%v)", claim, err)
		return nil
	}
	pv, err := s.Client.CoreV1().PersistentVolumes().Get(s.Ctx, c.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		s.Errorf("volume of %s: %v", claim, err)
		return nil
	}
	return pv
}

// volumeNodes is the hostname a volume's node affinity pins it to.
func volumeNodes(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	var hosts []string
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range t.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn {
				hosts = append(hosts, e.Values...)
			}
		}
	}
	return strings.Join(hosts, ",")
}

func claimDoc(name, class, mode string) string {
	c := ""
	if class != "" {
		c = "\n  storageClassName: " + class
	}
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: %s
spec:%s
  accessModes: [%s]
  resources:
    requests:
      storage: 1Gi
`, name, c, mode)
}

// podDoc is a pod that mounts claim, kept on node-1 so that both clusters of
// a scenario pair schedule it alike.
func podDoc(name, claim string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  nodeSelector:
    kubernetes.io/hostname: node-1
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: busybox
      command: ["sleep", "3600"]
      volumeMounts:
        - name: data
          mountPath: /data
  volumes:
    - name: data
      persistentVolumeClaim:
        claimName: %s
`, name, claim)
}
