package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/process"
)

// configError is a container configuration the agent cannot satisfy (a
// missing ConfigMap key, a bad fieldRef): the container waits with reason
// CreateContainerConfigError and this message.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...interface{}) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// podHostname is the pod's hostname as the kubelet derives it: spec.hostname
// or the pod name, cut to 63 characters.
func podHostname(pod *v1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// podFQDN is hostname.subdomain.namespace.svc.domain when the pod has a subdomain.
func podFQDN(pod *v1.Pod, domain string) string {
	if pod.Spec.Subdomain == "" {
		return ""
	}
	return fmt.Sprintf("%s.%s.%s.svc.%s", podHostname(pod), pod.Spec.Subdomain, pod.Namespace, domain)
}

// objectCache fetches ConfigMaps and Secrets once per container start.
type objectCache struct {
	// client is the pod's node's: the Node authorizer lets it read only
	// what pods bound to the node refer to.
	client     kubernetes.Interface
	ns         string
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
}

func (o *objectCache) configMap(ctx context.Context, name string) (*v1.ConfigMap, error) {
	if cm, ok := o.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := o.client.CoreV1().ConfigMaps(o.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, configErrorf("configmap %q not found", name)
		}
		return nil, err
	}
	if o.configMaps == nil {
		o.configMaps = map[string]*v1.ConfigMap{}
	}
	o.configMaps[name] = cm
	return cm, nil
}

func (o *objectCache) secret(ctx context.Context, name string) (*v1.Secret, error) {
	if s, ok := o.secrets[name]; ok {
		return s, nil
	}
	s, err := o.client.CoreV1().Secrets(o.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, configErrorf("secret %q not found", name)
		}
		return nil, err
	}
	if o.secrets == nil {
		o.secrets = map[string]*v1.Secret{}
	}
	o.secrets[name] = s
	return s, nil
}

// envList keeps variables in the order they were first set.
type envList struct {
	order []string
	vals  map[string]string
}

func (e *envList) set(k, v string) {
	if e.vals == nil {
		e.vals = map[string]string{}
	}
	if _, ok := e.vals[k]; !ok {
		e.order = append(e.order, k)
	}
	e.vals[k] = v
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.order))
	for _, k := range e.order {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// apiServerEnv is where in-cluster clients reach the apiserver: for a pod
// with a network of its own, the kubernetes Service (HostConfig.
// KubernetesService); for a pod on the host's network, the address the agent
// itself uses (the Service's ClusterIP may not route from the host).
func (h *Host) apiServerEnv(sandboxed bool) (string, string) {
	if sandboxed {
		host, port, err := net.SplitHostPort(h.cfg.KubernetesService)
		if err != nil {
			return "", ""
		}
		return host, port
	}
	rc, ok := h.client.CoreV1().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil || rc.Get().URL() == nil {
		return "", ""
	}
	u := rc.Get().URL()
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Hostname(), "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return host, port
}

// containerEnv resolves a container's environment as the kubelet does:
// image defaults, envFrom in order, then env, with $(VAR) references
// expanded against what is defined before.
func (h *Host) containerEnv(ctx context.Context, objs *objectCache, pod *v1.Pod, c *v1.Container, podIP string, sandboxed bool, img runtime.ImageConfig, kind runtime.Kind) ([]string, error) {
	var env envList
	env.set("PATH", process.DefaultPath)
	// An image's environment is the base the container's is laid over.
	for _, kv := range img.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env.set(k, v)
		}
	}
	env.set("HOSTNAME", podHostname(pod))
	switch {
	case kind == runtime.KindOCI:
		// HOME is the image user's home (the runtime sets it) unless the
		// image or the container says otherwise.
	case os.Geteuid() != 0 && os.Getenv("HOME") != "":
		env.set("HOME", os.Getenv("HOME"))
	default:
		env.set("HOME", "/root")
	}
	if host, port := h.apiServerEnv(sandboxed); host != "" {
		// The kubelet's variables of the kubernetes Service.
		addr := net.JoinHostPort(host, port)
		env.set("KUBERNETES_SERVICE_HOST", host)
		env.set("KUBERNETES_SERVICE_PORT", port)
		env.set("KUBERNETES_SERVICE_PORT_HTTPS", port)
		env.set("KUBERNETES_PORT", "tcp://"+addr)
		env.set("KUBERNETES_PORT_"+port+"_TCP", "tcp://"+addr)
		env.set("KUBERNETES_PORT_"+port+"_TCP_PROTO", "tcp")
		env.set("KUBERNETES_PORT_"+port+"_TCP_PORT", port)
		env.set("KUBERNETES_PORT_"+port+"_TCP_ADDR", host)
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := objs.configMap(ctx, ef.ConfigMapRef.Name)
			if err != nil {
				if isConfigNotFound(err) && ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
					continue
				}
				return nil, err
			}
			for _, k := range sortedKeys(cm.Data) {
				env.set(ef.Prefix+k, cm.Data[k])
			}
		case ef.SecretRef != nil:
			s, err := objs.secret(ctx, ef.SecretRef.Name)
			if err != nil {
				if isConfigNotFound(err) && ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
					continue
				}
				return nil, err
			}
			keys := make([]string, 0, len(s.Data))
			for k := range s.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				env.set(ef.Prefix+k, string(s.Data[k]))
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env.set(e.Name, expansion.Expand(e.Value, expansion.MappingFuncFor(env.vals)))
			continue
		}
		v, skip, err := h.envValueFrom(ctx, objs, pod, c, podIP, e.ValueFrom)
		if err != nil {
			return nil, err
		}
		if !skip {
			env.set(e.Name, v)
		}
	}
	return env.list(), nil
}

func isConfigNotFound(err error) bool {
	ce, ok := err.(*configError)
	return ok && strings.HasSuffix(ce.msg, "not found")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (h *Host) envValueFrom(ctx context.Context, objs *objectCache, pod *v1.Pod, c *v1.Container, podIP string, src *v1.EnvVarSource) (string, bool, error) {
	switch {
	case src.FieldRef != nil:
		v, err := podFieldValue(pod, src.FieldRef.FieldPath, podIP, h.cfg.NodeIP)
		return v, false, err
	case src.ResourceFieldRef != nil:
		v, err := h.resourceFieldValue(pod, c, src.ResourceFieldRef)
		return v, false, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm, err := objs.configMap(ctx, ref.Name)
		if err != nil {
			if optional && isConfigNotFound(err) {
				return "", true, nil
			}
			return "", false, err
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if b, ok := cm.BinaryData[ref.Key]; ok {
				return string(b), false, nil
			}
			if optional {
				return "", true, nil
			}
			return "", false, configErrorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, false, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s, err := objs.secret(ctx, ref.Name)
		if err != nil {
			if optional && isConfigNotFound(err) {
				return "", true, nil
			}
			return "", false, err
		}
		b, ok := s.Data[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			return "", false, configErrorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(b), false, nil
	}
	return "", false, configErrorf("unsupported valueFrom source")
}

// podFieldValue resolves a downward-API fieldRef.
func podFieldValue(pod *v1.Pod, path, podIP, nodeIP string) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return nodeIP, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	}
	return "", configErrorf("unsupported fieldRef %q", path)
}

// subscript parses "prefix['key']".
func subscript(path, prefix string) (string, bool) {
	if !strings.HasPrefix(path, prefix+"['") || !strings.HasSuffix(path, "']") {
		return "", false
	}
	return path[len(prefix)+2 : len(path)-2], true
}

// formatMap renders labels or annotations as the downward API does: sorted
// key="value" lines, values quoted.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	return b.String()
}

// resourceFieldValue resolves a resourceFieldRef; an unset limit reads as
// the node's allocatable, as in the kubelet.
func (h *Host) resourceFieldValue(pod *v1.Pod, c *v1.Container, ref *v1.ResourceFieldSelector) (string, error) {
	if ref.ContainerName != "" {
		c = findContainer(pod, ref.ContainerName)
		if c == nil {
			return "", configErrorf("container %q not found for resourceFieldRef", ref.ContainerName)
		}
	}
	alloc := machineCapacity(h.cfg.DataDir, nil)
	var q resource.Quantity
	var ok bool
	switch ref.Resource {
	case "limits.cpu":
		q, ok = c.Resources.Limits[v1.ResourceCPU]
		if !ok {
			q = alloc[v1.ResourceCPU]
		}
	case "limits.memory":
		q, ok = c.Resources.Limits[v1.ResourceMemory]
		if !ok {
			q = alloc[v1.ResourceMemory]
		}
	case "limits.ephemeral-storage":
		q, ok = c.Resources.Limits[v1.ResourceEphemeralStorage]
		if !ok {
			q = alloc[v1.ResourceEphemeralStorage]
		}
	case "requests.cpu":
		q = c.Resources.Requests[v1.ResourceCPU]
	case "requests.memory":
		q = c.Resources.Requests[v1.ResourceMemory]
	case "requests.ephemeral-storage":
		q = c.Resources.Requests[v1.ResourceEphemeralStorage]
	default:
		return "", configErrorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if strings.HasSuffix(ref.Resource, ".cpu") {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// containerSpec resolves everything a container instance needs to start
// under the runtime kind, whose image runs img unless c says otherwise.
//
// A subPath is opened safely inside its volume and staged by a private bind
// mount of exactly what was opened: held collects the unstaging, which the
// caller runs once the instance has started.
func (h *Host) containerSpec(ctx context.Context, rec *podRecord, pod *v1.Pod, c *v1.Container, kind runtime.Kind, img runtime.ImageConfig, held *[]func()) (*runtime.ContainerSpec, error) {
	objs := &objectCache{client: h.podClient(pod), ns: pod.Namespace}
	env, err := h.containerEnv(ctx, objs, pod, c, rec.state.PodIP, rec.netNSPath() != "", img, kind)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	mapping := expansion.MappingFuncFor(vars)
	command := make([]string, len(c.Command))
	for i, s := range c.Command {
		command[i] = expansion.Expand(s, mapping)
	}
	args := make([]string, len(c.Args))
	for i, s := range c.Args {
		args[i] = expansion.Expand(s, mapping)
	}
	argv := runtime.Argv(command, args, img)
	if len(argv) == 0 {
		return nil, configErrorf("container %s has no command and image %q has none to run", c.Name, c.Image)
	}
	workingDir := c.WorkingDir
	if workingDir == "" {
		workingDir = img.WorkingDir
	}
	var mounts []runtime.Mount
	for _, m := range c.VolumeMounts {
		src, ok := rec.volumes[m.Name]
		if !ok {
			return nil, configErrorf("volume %q of volumeMount %s is not defined", m.Name, m.MountPath)
		}
		sub := m.SubPath
		if m.SubPathExpr != "" {
			sub = expansion.Expand(m.SubPathExpr, mapping)
		}
		if sub != "" {
			clean := filepath.Clean(sub)
			if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
				return nil, configErrorf("subPath %q must be a relative path within the volume", sub)
			}
			f, err := openSubPath(src, clean)
			if err != nil {
				return nil, configErrorf("%v", err)
			}
			src = f.Name()
			if kind != runtime.KindProcess || h.isolated {
				unstage, err := stageSubPath(f, filepath.Join(rec.containerDir(c.Name), "subpaths", strconv.Itoa(len(mounts))))
				if err != nil {
					f.Close()
					return nil, err
				}
				*held = append(*held, unstage)
				src = filepath.Join(rec.containerDir(c.Name), "subpaths", strconv.Itoa(len(mounts)))
			}
			f.Close()
		}
		mounts = append(mounts, runtime.Mount{HostPath: src, ContainerPath: m.MountPath, ReadOnly: m.ReadOnly})
	}
	mounts = append(mounts, rec.etcFiles...)
	id := newContainerID()
	spec := &runtime.ContainerSpec{
		ID:           id,
		PodUID:       string(pod.UID),
		PodNamespace: pod.Namespace,
		PodName:      pod.Name,
		Name:         c.Name,
		Image:        c.Image,
		ImageID:      img.ID,
		Argv:         argv,
		Env:          env,
		WorkingDir:   workingDir,
		Mounts:       mounts,
		Hostname:     podHostname(pod),
		LogPath:      rec.logPath(c.Name, string(kind)+"://"+id),
		Stdin:        c.Stdin,
		StdinOnce:    c.StdinOnce,
		TTY:          c.TTY,
		StateDir:     filepath.Join(rec.containerDir(c.Name), "state"),
	}
	if pod.Spec.HostNetwork {
		spec.Hostname = ""
	} else {
		spec.NetNSPath = rec.netNSPath()
	}
	if err := os.MkdirAll(rec.containerDir(c.Name), 0o750); err != nil {
		return nil, err
	}
	return spec, nil
}

// runAll runs the clean-ups of a container's start.
func runAll(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// terminationMessage is the message of a process container that ended: with
// terminationMessagePolicy FallbackToLogsOnError and a failure, the tail of
// its log (80 lines, at most 2048 bytes), as the kubelet does.
func terminationMessage(rec *podRecord, c *v1.Container, a *attempt) string {
	if c.TerminationMessagePolicy != v1.TerminationMessageFallbackToLogsOnError || a.ExitCode == 0 {
		return ""
	}
	data, err := os.ReadFile(rec.logPath(c.Name, a.ID))
	if err != nil {
		return ""
	}
	return tailLogText(data, 80, 2048)
}

// newContainerID returns a fresh random container ID (64 hex digits).
func newContainerID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
