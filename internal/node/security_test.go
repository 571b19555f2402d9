package node

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"quartet.dev/quartet/internal/node/runtime"
)

// TestSeccompProfiles: the container's profile over the pod's; RuntimeDefault
// applied when the runtime can, else a clear refusal (never unconfined
// silently); Localhost refused; privileged containers unconfined, as under
// containerd.
func TestSeccompProfiles(t *testing.T) {
	profile := func(typ v1.SeccompProfileType) *v1.SeccompProfile { return &v1.SeccompProfile{Type: typ} }
	yes := true
	for _, tc := range []struct {
		name       string
		pod, ctr   *v1.SeccompProfile
		privileged bool
		whyNot     string
		want       string // spec.Security.Seccomp
		refused    string // part of the refusal
	}{
		{name: "none", want: ""},
		{name: "pod RuntimeDefault", pod: profile(v1.SeccompProfileTypeRuntimeDefault), want: runtime.SeccompRuntimeDefault},
		{name: "container RuntimeDefault", ctr: profile(v1.SeccompProfileTypeRuntimeDefault), want: runtime.SeccompRuntimeDefault},
		{name: "container Unconfined over pod RuntimeDefault", pod: profile(v1.SeccompProfileTypeRuntimeDefault), ctr: profile(v1.SeccompProfileTypeUnconfined), want: ""},
		{name: "container RuntimeDefault over pod Unconfined", pod: profile(v1.SeccompProfileTypeUnconfined), ctr: profile(v1.SeccompProfileTypeRuntimeDefault), want: runtime.SeccompRuntimeDefault},
		{name: "RuntimeDefault cannot be applied", pod: profile(v1.SeccompProfileTypeRuntimeDefault), whyNot: "built without libseccomp",
			refused: "seccompProfile RuntimeDefault cannot be applied: built without libseccomp"},
		{name: "Unconfined where seccomp is missing", ctr: profile(v1.SeccompProfileTypeUnconfined), whyNot: "built without libseccomp", want: ""},
		{name: "Localhost", ctr: &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost, LocalhostProfile: new(string)}, refused: "Localhost is not supported"},
		{name: "privileged", ctr: profile(v1.SeccompProfileTypeRuntimeDefault), privileged: true, whyNot: "built without libseccomp", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: v1.PodSpec{
				SecurityContext: &v1.PodSecurityContext{SeccompProfile: tc.pod},
				Containers:      []v1.Container{{Name: "c", SecurityContext: &v1.SecurityContext{SeccompProfile: tc.ctr}}}}}
			if tc.privileged {
				pod.Spec.Containers[0].SecurityContext.Privileged = &yes
			}
			spec := &runtime.ContainerSpec{}
			_, err := applySecurity(pod, &pod.Spec.Containers[0], spec, "", true, tc.whyNot)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err = %v, want a refusal containing %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Security.Seccomp != tc.want {
				t.Errorf("seccomp = %q, want %q", spec.Security.Seccomp, tc.want)
			}
		})
	}
}
