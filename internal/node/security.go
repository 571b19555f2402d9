package node

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/node/runtime"
)

// Event reason of quartet's own: a securityContext field the runtime
// cannot apply and that the kubelet would not refuse either.
const reasonSecurityNotApplied = "SecurityContextNotApplied"

// applySecurity resolves the container's effective securityContext (the
// container's fields over the pod's) into spec, as the kubelet does, and
// refuses what cannot be honoured with a *configError (the container waits
// with CreateContainerConfigError). imageUser is the user the image runs as
// when nothing says otherwise ("uid[:gid]" or a name; "" is root); isolated says whether the runtime can apply
// namespaces, capabilities, a read-only root and cgroup limits;
// seccompWhyNot says why it cannot apply a seccomp profile ("": it can).
// warnings are fields that are not applied but do not stop the container.
func applySecurity(pod *v1.Pod, c *v1.Container, spec *runtime.ContainerSpec, imageUser string, isolated bool, seccompWhyNot string) (warnings []string, err error) {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &v1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &v1.SecurityContext{}
	}
	runAsUser, runAsGroup, runAsNonRoot := psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot
	if csc.RunAsUser != nil {
		runAsUser = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		runAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		runAsNonRoot = csc.RunAsNonRoot
	}
	spec.RunAsUser, spec.RunAsGroup = runAsUser, runAsGroup
	if runAsNonRoot != nil && *runAsNonRoot {
		switch {
		case runAsUser != nil && *runAsUser == 0:
			return nil, configErrorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", formatPod(pod), c.Name)
		case runAsUser == nil:
			name, _, _ := strings.Cut(imageUser, ":")
			if name == "" {
				name = "0"
			}
			uid, err := strconv.ParseInt(name, 10, 64)
			if err != nil {
				return nil, configErrorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", name, formatPod(pod), c.Name)
			}
			if uid == 0 {
				return nil, configErrorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", formatPod(pod), c.Name)
			}
		}
	}
	sec := runtime.Security{
		SupplementalGroups:     psc.SupplementalGroups,
		Privileged:             csc.Privileged != nil && *csc.Privileged,
		ReadOnlyRootFilesystem: csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem,
		NoNewPrivileges:        csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation,
	}
	if caps := csc.Capabilities; caps != nil {
		for _, a := range caps.Add {
			sec.CapAdd = append(sec.CapAdd, string(a))
		}
		for _, d := range caps.Drop {
			sec.CapDrop = append(sec.CapDrop, string(d))
		}
	}
	spec.Security = sec
	if lim, ok := c.Resources.Limits[v1.ResourceMemory]; ok {
		spec.Resources.MemoryLimit = lim.Value()
	}
	if lim, ok := c.Resources.Limits[v1.ResourceCPU]; ok {
		spec.Resources.CPULimitMillis = lim.MilliValue()
	}

	seccomp := psc.SeccompProfile
	if csc.SeccompProfile != nil {
		seccomp = csc.SeccompProfile
	}
	if seccomp != nil && !sec.Privileged { // privileged containers run unconfined, as under containerd
		switch seccomp.Type {
		case v1.SeccompProfileTypeLocalhost:
			return nil, configErrorf("seccomp profile type Localhost is not supported by quartet's node agent")
		case v1.SeccompProfileTypeRuntimeDefault:
			if seccompWhyNot != "" {
				return nil, configErrorf("seccompProfile RuntimeDefault cannot be applied: %s", seccompWhyNot)
			}
			spec.Security.Seccomp = runtime.SeccompRuntimeDefault
		}
	}
	if isolated {
		return warnings, nil
	}
	// Plain host processes: what cannot be honoured is refused.
	why := "containers run as plain host processes here (quartet is not root)"
	switch {
	case sec.Privileged:
		return nil, configErrorf("privileged containers cannot run: %s", why)
	case len(sec.CapAdd) > 0:
		return nil, configErrorf("capabilities.add cannot be applied: %s", why)
	case len(sec.CapDrop) > 0 && os.Geteuid() == 0:
		return nil, configErrorf("capabilities.drop cannot be applied: %s", why)
	case sec.ReadOnlyRootFilesystem:
		return nil, configErrorf("readOnlyRootFilesystem cannot be applied: %s", why)
	}
	if spec.Resources.MemoryLimit > 0 || spec.Resources.CPULimitMillis > 0 {
		warnings = append(warnings, fmt.Sprintf("resource limits are not enforced: %s", why))
	}
	return warnings, nil
}
