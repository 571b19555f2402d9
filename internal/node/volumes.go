package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"quartet.dev/quartet/internal/node/runtime"
)

// prepareVolumes makes every volume of the pod a directory on the host
// (under the pod's directory unless it has its own place: hostPath, a
// PersistentVolume's path) and writes the pod's /etc files.
func (h *Host) prepareVolumes(ctx context.Context, rec *podRecord, pod *v1.Pod) error {
	objs := &objectCache{client: h.podClient(pod), ns: pod.Namespace}
	vols := map[string]string{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		path, err := h.prepareVolume(ctx, objs, rec, pod, v, filepath.Join(rec.dir, "volumes", v.Name))
		if err != nil {
			return fmt.Errorf("MountVolume.SetUp failed for volume %q : %v", v.Name, err)
		}
		vols[v.Name] = path
	}
	etc, err := h.writeEtcFiles(rec, pod)
	if err != nil {
		return err
	}
	rec.volumes, rec.etcFiles = vols, etc
	return nil
}

func (h *Host) prepareVolume(ctx context.Context, objs *objectCache, rec *podRecord, pod *v1.Pod, v *v1.Volume, dir string) (string, error) {
	switch {
	case v.EmptyDir != nil:
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", err
		}
		return dir, os.Chmod(dir, 0o777)
	case v.HostPath != nil:
		return hostPathVolume(v.HostPath)
	case v.PersistentVolumeClaim != nil:
		return h.claimPath(ctx, pod, v.PersistentVolumeClaim.ClaimName)
	case v.Ephemeral != nil:
		return h.claimPath(ctx, pod, pod.Name+"-"+v.Name)
	case v.ConfigMap != nil:
		cm, err := objs.configMap(ctx, v.ConfigMap.Name)
		if err != nil {
			if v.ConfigMap.Optional != nil && *v.ConfigMap.Optional && isConfigNotFound(err) {
				return dir, writeAtomic(dir, nil)
			}
			return "", err
		}
		files, err := configMapFiles(cm, v.ConfigMap.Items, mode(v.ConfigMap.DefaultMode), v.ConfigMap.Optional)
		if err != nil {
			return "", err
		}
		return dir, writeAtomic(dir, files)
	case v.Secret != nil:
		s, err := objs.secret(ctx, v.Secret.SecretName)
		if err != nil {
			if v.Secret.Optional != nil && *v.Secret.Optional && isConfigNotFound(err) {
				return dir, writeAtomic(dir, nil)
			}
			return "", err
		}
		files, err := secretFiles(s, v.Secret.Items, mode(v.Secret.DefaultMode), v.Secret.Optional)
		if err != nil {
			return "", err
		}
		return dir, writeAtomic(dir, files)
	case v.DownwardAPI != nil:
		files, err := h.downwardFiles(pod, rec.state.PodIP, v.DownwardAPI.Items, mode(v.DownwardAPI.DefaultMode))
		if err != nil {
			return "", err
		}
		return dir, writeAtomic(dir, files)
	case v.Projected != nil:
		files, err := h.projectedFiles(ctx, objs, pod, rec.state.PodIP, v.Projected)
		if err != nil {
			return "", err
		}
		return dir, writeAtomic(dir, files)
	}
	return "", fmt.Errorf("volume type is not supported by quartet's node agent (supported: emptyDir, hostPath, persistentVolumeClaim, ephemeral, configMap, secret, downwardAPI, projected)")
}

func mode(m *int32) os.FileMode {
	if m == nil {
		return 0o644
	}
	return os.FileMode(*m)
}

// hostPathVolume checks (and for the *OrCreate types creates) a hostPath.
func hostPathVolume(hp *v1.HostPathVolumeSource) (string, error) {
	t := v1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	fi, err := os.Stat(hp.Path)
	switch t {
	case v1.HostPathDirectoryOrCreate:
		if os.IsNotExist(err) {
			return hp.Path, os.MkdirAll(hp.Path, 0o755)
		}
		if err == nil && !fi.IsDir() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a directory", hp.Path)
		}
	case v1.HostPathFileOrCreate:
		if os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			return hp.Path, f.Close()
		}
		if err == nil && !fi.Mode().IsRegular() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a file", hp.Path)
		}
	case v1.HostPathDirectory:
		if err != nil || !fi.IsDir() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a directory", hp.Path)
		}
	case v1.HostPathFile:
		if err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a file", hp.Path)
		}
	case v1.HostPathSocket:
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			return "", fmt.Errorf("hostPath type check failed: %s is not a socket file", hp.Path)
		}
	case v1.HostPathCharDev:
		if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			return "", fmt.Errorf("hostPath type check failed: %s is not a character device", hp.Path)
		}
	case v1.HostPathBlockDev:
		if err != nil || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
			return "", fmt.Errorf("hostPath type check failed: %s is not a block device", hp.Path)
		}
	default:
		if os.IsNotExist(err) {
			// Like a container runtime binding a missing path: create a directory.
			return hp.Path, os.MkdirAll(hp.Path, 0o755)
		}
	}
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	return hp.Path, nil
}

// claimPath resolves a PersistentVolumeClaim to its bound volume's
// directory: spec.local.path or spec.hostPath.path.
func (h *Host) claimPath(ctx context.Context, pod *v1.Pod, claim string) (string, error) {
	client := h.podClient(pod)
	pvc, err := client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("persistentvolumeclaim %q not found", claim)
		}
		return "", err
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != v1.ClaimBound {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound", claim)
	}
	pv, err := client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("persistentvolume %q of claim %q not found", pvc.Spec.VolumeName, claim)
		}
		return "", err
	}
	var path string
	switch {
	case pv.Spec.Local != nil:
		path = pv.Spec.Local.Path
	case pv.Spec.HostPath != nil:
		path = pv.Spec.HostPath.Path
	default:
		return "", fmt.Errorf("persistentvolume %q is neither a local nor a hostPath volume, which is all quartet's node agent can mount", pv.Name)
	}
	fi, err := os.Stat(path)
	if err != nil {
		if pv.Spec.HostPath != nil && os.IsNotExist(err) {
			return path, os.MkdirAll(path, 0o777)
		}
		return "", fmt.Errorf("path %s of persistentvolume %q: %v", path, pv.Name, err)
	}
	if !fi.IsDir() && pv.Spec.Local != nil {
		return "", fmt.Errorf("path %s of persistentvolume %q is not a directory", path, pv.Name)
	}
	return path, nil
}

type fileData struct {
	data []byte
	mode os.FileMode
}

func checkRelPath(p string) error {
	clean := filepath.Clean(p)
	if p == "" || filepath.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(filepath.Base(clean), "..") {
		return fmt.Errorf("invalid path %q", p)
	}
	return nil
}

func keyFiles(kind, ns, name string, data map[string][]byte, items []v1.KeyToPath, defMode os.FileMode, optional *bool) (map[string]fileData, error) {
	files := map[string]fileData{}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = fileData{data: v, mode: defMode}
		}
		return files, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("configuration error: %s %s/%s has no key %q", kind, ns, name, it.Key)
		}
		if err := checkRelPath(it.Path); err != nil {
			return nil, err
		}
		m := defMode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		files[it.Path] = fileData{data: v, mode: m}
	}
	return files, nil
}

func configMapFiles(cm *v1.ConfigMap, items []v1.KeyToPath, defMode os.FileMode, optional *bool) (map[string]fileData, error) {
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configmap", cm.Namespace, cm.Name, data, items, defMode, optional)
}

func secretFiles(s *v1.Secret, items []v1.KeyToPath, defMode os.FileMode, optional *bool) (map[string]fileData, error) {
	return keyFiles("secret", s.Namespace, s.Name, s.Data, items, defMode, optional)
}

func (h *Host) downwardFiles(pod *v1.Pod, podIP string, items []v1.DownwardAPIVolumeFile, defMode os.FileMode) (map[string]fileData, error) {
	files := map[string]fileData{}
	for _, it := range items {
		if err := checkRelPath(it.Path); err != nil {
			return nil, err
		}
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = podFieldValue(pod, it.FieldRef.FieldPath, podIP, h.cfg.NodeIP)
		case it.ResourceFieldRef != nil:
			var c *v1.Container
			if len(pod.Spec.Containers) > 0 {
				c = &pod.Spec.Containers[0]
			}
			v, err = h.resourceFieldValue(pod, c, it.ResourceFieldRef)
		}
		if err != nil {
			return nil, err
		}
		m := defMode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		files[it.Path] = fileData{data: []byte(v), mode: m}
	}
	return files, nil
}

func (h *Host) projectedFiles(ctx context.Context, objs *objectCache, pod *v1.Pod, podIP string, p *v1.ProjectedVolumeSource) (map[string]fileData, error) {
	defMode := mode(p.DefaultMode)
	files := map[string]fileData{}
	merge := func(f map[string]fileData) {
		for k, v := range f {
			files[k] = v
		}
	}
	for _, src := range p.Sources {
		switch {
		case src.ConfigMap != nil:
			cm, err := objs.configMap(ctx, src.ConfigMap.Name)
			if err != nil {
				if src.ConfigMap.Optional != nil && *src.ConfigMap.Optional && isConfigNotFound(err) {
					continue
				}
				return nil, err
			}
			f, err := configMapFiles(cm, src.ConfigMap.Items, defMode, src.ConfigMap.Optional)
			if err != nil {
				return nil, err
			}
			merge(f)
		case src.Secret != nil:
			s, err := objs.secret(ctx, src.Secret.Name)
			if err != nil {
				if src.Secret.Optional != nil && *src.Secret.Optional && isConfigNotFound(err) {
					continue
				}
				return nil, err
			}
			f, err := secretFiles(s, src.Secret.Items, defMode, src.Secret.Optional)
			if err != nil {
				return nil, err
			}
			merge(f)
		case src.DownwardAPI != nil:
			f, err := h.downwardFiles(pod, podIP, src.DownwardAPI.Items, defMode)
			if err != nil {
				return nil, err
			}
			merge(f)
		case src.ServiceAccountToken != nil:
			tok, err := h.serviceAccountToken(ctx, pod, src.ServiceAccountToken)
			if err != nil {
				return nil, err
			}
			if err := checkRelPath(src.ServiceAccountToken.Path); err != nil {
				return nil, err
			}
			m := defMode
			if p.DefaultMode == nil {
				m = 0o600
			}
			files[src.ServiceAccountToken.Path] = fileData{data: []byte(tok), mode: m}
		default:
			return nil, fmt.Errorf("projected volume source is not supported by quartet's node agent")
		}
	}
	return files, nil
}

func (h *Host) serviceAccountToken(ctx context.Context, pod *v1.Pod, src *v1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(3600)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		tr.Spec.Audiences = []string{src.Audience}
	}
	out, err := h.podClient(pod).CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to fetch token: %v", err)
	}
	return out.Status.Token, nil
}

// writeAtomic writes files into dir the way the kubelet's atomic writer lays
// them out: a timestamped directory, a ..data symlink to it and one
// symlink per top-level entry, so that an update swaps all files at once.
func writeAtomic(dir string, files map[string]fileData) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ts := ".." + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	tsDir := filepath.Join(dir, ts)
	if err := os.MkdirAll(tsDir, 0o755); err != nil {
		return err
	}
	top := map[string]bool{}
	for p, f := range files {
		if err := checkRelPath(p); err != nil {
			return err
		}
		full := filepath.Join(tsDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode); err != nil {
			return err
		}
		top[strings.SplitN(filepath.Clean(p), "/", 2)[0]] = true
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(ts, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".."):
			if name != ts && name != "..data" {
				_ = os.RemoveAll(filepath.Join(dir, name))
			}
		case !top[name]:
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	names := make([]string, 0, len(top))
	for n := range top {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		link := filepath.Join(dir, n)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", n), link); err != nil {
			return err
		}
	}
	return nil
}

// writeEtcFiles writes the pod's hosts, hostname and resolv.conf and returns
// the mounts that put them in its containers.
func (h *Host) writeEtcFiles(rec *podRecord, pod *v1.Pod) ([]runtime.Mount, error) {
	dir := filepath.Join(rec.dir, "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var mounts []runtime.Mount
	write := func(name, content, target string) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
		mounts = append(mounts, runtime.Mount{HostPath: p, ContainerPath: target})
		return nil
	}
	if !pod.Spec.HostNetwork {
		if err := write("hostname", podHostname(pod)+"\n", "/etc/hostname"); err != nil {
			return nil, err
		}
		if err := write("hosts", hostsFile(pod, rec.state.PodIP, h.cfg.ClusterDomain), "/etc/hosts"); err != nil {
			return nil, err
		}
	}
	dnsAddress, sandboxed := h.cfg.DNSAddress, rec.netNSPath() != ""
	if sandboxed {
		// In its own network the pod reaches cluster DNS at PodDNS.
		dnsAddress = ""
		if h.cfg.PodDNS != "" {
			dnsAddress = net.JoinHostPort(h.cfg.PodDNS, "53")
		}
	}
	resolv, ok, warning := resolvConf(pod, dnsAddress, h.cfg.ClusterDomain, sandboxed)
	if warning != "" {
		h.podEvent(rec, pod, plannedEvent{Key: "dns", Type: v1.EventTypeWarning, Reason: "DNSConfigForming", Message: warning})
	}
	if ok {
		if err := write("resolv.conf", resolv, "/etc/resolv.conf"); err != nil {
			return nil, err
		}
	}
	return mounts, nil
}

func hostsFile(pod *v1.Pod, podIP, domain string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if podIP != "" {
		if fqdn := podFQDN(pod, domain); fqdn != "" {
			fmt.Fprintf(&b, "%s\t%s\t%s\n", podIP, fqdn, podHostname(pod))
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", podIP, podHostname(pod))
		}
	}
	for _, ha := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "\n# Entries added by HostAliases.\n%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
	}
	return b.String()
}

// resolvConf renders the pod's resolv.conf by its dnsPolicy. ok is false when
// the pod keeps the host's. resolv.conf cannot name a port, so cluster DNS
// is used only when it listens on port 53; otherwise warning says why not.
// A sandboxed pod (one with a network of its own) cannot reach the host's
// loopback resolvers, so it always gets a file of its own, without them.
func resolvConf(pod *v1.Pod, dnsAddress, domain string, sandboxed bool) (content string, ok bool, warning string) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = v1.DNSClusterFirst
	}
	cluster := policy == v1.DNSClusterFirstWithHostNet || (policy == v1.DNSClusterFirst && !pod.Spec.HostNetwork)
	var servers, searches, options []string
	if cluster {
		host, port, err := net.SplitHostPort(dnsAddress)
		switch {
		case dnsAddress == "":
			cluster = false
		case err != nil || port != "53":
			cluster = false
			warning = fmt.Sprintf("cluster DNS at %s is not on port 53, which resolv.conf cannot express: the pod uses the host's resolv.conf", dnsAddress)
		default:
			servers = []string{host}
			searches = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
			options = []string{"ndots:5"}
			// The host's resolvers come second: a name cluster DNS refuses
			// (one outside the cluster domain, without --dns-upstream) is
			// asked there next, as resolvers move on after REFUSED.
			hostServers, _, _ := hostResolvConf(sandboxed)
			for _, s := range hostServers {
				if len(servers) < 3 && s != host {
					servers = append(servers, s)
				}
			}
		}
	}
	if !cluster && policy != v1.DNSNone && pod.Spec.DNSConfig == nil && !sandboxed {
		return "", false, warning
	}
	if !cluster && policy != v1.DNSNone {
		// The host's resolvers plus the pod's dnsConfig.
		servers, searches, options = hostResolvConf(sandboxed)
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = append(servers, dc.Nameservers...)
		searches = append(searches, dc.Searches...)
		for _, o := range dc.Options {
			if o.Value != nil {
				options = append(options, o.Name+":"+*o.Value)
			} else {
				options = append(options, o.Name)
			}
		}
	}
	var b strings.Builder
	if len(searches) > 0 {
		b.WriteString("search " + strings.Join(searches, " ") + "\n")
	}
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.String(), true, warning
}

// hostResolvConf reads the host's nameservers, search domains and options.
// For a pod with a network of its own, loopback nameservers are left out
// (the pod's loopback is its own); when that leaves none, systemd-resolved's
// upstream list is used instead, as the kubelet is told to on such hosts.
func hostResolvConf(sandboxed bool) (servers, searches, options []string) {
	servers, searches, options = readResolvConf("/etc/resolv.conf")
	if !sandboxed {
		return servers, searches, options
	}
	servers = nonLoopback(servers)
	if len(servers) == 0 {
		up, _, _ := readResolvConf("/run/systemd/resolve/resolv.conf")
		servers = nonLoopback(up)
	}
	return servers, searches, options
}

func nonLoopback(servers []string) []string {
	var out []string
	for _, s := range servers {
		if ip := net.ParseIP(s); ip != nil && !ip.IsLoopback() {
			out = append(out, s)
		}
	}
	return out
}

// readResolvConf reads the nameservers, search domains and options of a
// resolv.conf file.
func readResolvConf(path string) (servers, searches, options []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search":
			searches = append(searches, f[1:]...)
		case "options":
			options = append(options, f[1:]...)
		}
	}
	return servers, searches, options
}
