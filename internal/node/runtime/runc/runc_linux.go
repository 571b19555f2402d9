package runc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	seccompprofiles "github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/node/logs"
	"quartet.dev/quartet/internal/node/runtime"
)

// DefaultCapabilities is the capability set a container that is not
// privileged starts from (containerd's default, which Kubernetes' add and
// drop apply to).
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Config configures a Manager.
type Config struct {
	// StateRoot is libcontainer's state directory: one per data dir, so
	// that the next start finds what a crashed run left. It must not lie
	// inside the quartet binary's directory (see datadir.Dir.Containers);
	// New logs a warning when it does. A root named quartet-* in its
	// parent is removed with its parent at Shutdown.
	StateRoot string
	// CgroupParent is the cgroup every container's cgroup is created under
	// (see CgroupParentFor).
	CgroupParent string
	// Masked are host paths that containers whose root is the host's must
	// not see (quartet's data dir): an empty read-only directory covers them.
	Masked []string
	Clock  clock.PassiveClock
}

// CgroupParentFor names the parent cgroup of a data dir's containers after
// the data dir, so that two clusters never share one.
func CgroupParentFor(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return "quartet-" + hex.EncodeToString(sum[:])[:12]
}

// Manager starts and tracks containers.
type Manager struct {
	cfg   Config
	clock clock.PassiveClock

	mu        sync.Mutex
	instances map[*Instance]struct{}
	// pauses are the pods' pause containers, stopped after the others.
	pauses map[*Instance]struct{}
	wg     sync.WaitGroup
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.StateRoot == "" || cfg.CgroupParent == "" {
		return nil, errors.New("runc: no state root or cgroup parent")
	}
	if err := os.MkdirAll(cfg.StateRoot, 0o700); err != nil {
		return nil, err
	}
	if bin := binaryDirHolding(cfg.StateRoot); bin != "" {
		klog.Warningf("runc: the containers' state dir %s is inside quartet's binary's directory %s: every container start and exec copies the binary into memory (move the binary or the data dir)", cfg.StateRoot, bin)
	}
	c := cfg.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	return &Manager{cfg: cfg, clock: c, instances: map[*Instance]struct{}{}, pauses: map[*Instance]struct{}{}}, nil
}

// Available reports whether this process can run containers, and why not.
func Available() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "quartet is not running as root"
	}
	for _, ns := range []string{"mnt", "pid", "ipc", "uts"} {
		if _, err := os.Stat("/proc/self/ns/" + ns); err != nil {
			return false, fmt.Sprintf("the kernel has no %s namespaces", ns)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		return false, "no cgroup filesystem at /sys/fs/cgroup"
	}
	return true, ""
}

// Root is a container's root filesystem.
type Root struct {
	// Path is the root directory. With Host it is an empty directory of
	// quartet's own that the host's top-level entries are mirrored into
	// (inside the container's mount namespace only).
	Path string
	// Host mirrors the host's filesystem, read-only, with a private /tmp.
	Host bool
	// ReadOnly mounts the root read-only (readOnlyRootFilesystem).
	ReadOnly bool
}

// Instance is one started container.
type Instance struct {
	id        string
	started   time.Time
	spec      *runtime.ContainerSpec
	container *libcontainer.Container
	init      *libcontainer.Process
	// stdin is the container's stdin when the spec keeps it open (attach);
	// console is the controlling side of its terminal when it has one.
	stdin   *os.File
	console *os.File
	// stdout and stderr reach the clients attached to the instance.
	stdout, stderr runtime.Fanout
	// stdinTaken is set once an attached client has sent stdin (StdinOnce).
	stdinTaken bool

	mu     sync.Mutex
	exit   runtime.ExitStatus
	exited bool
	done   chan struct{}
}

// ID implements runtime.Instance.
func (i *Instance) ID() string { return i.id }

// StartedAt implements runtime.Instance.
func (i *Instance) StartedAt() time.Time { return i.started }

// Done is closed once the instance has ended and its cgroup is gone.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Pid is the container init's pid on the host.
func (i *Instance) Pid() int {
	pid, _ := i.init.Pid()
	return pid
}

// Exited implements runtime.Instance.
func (i *Instance) Exited() (runtime.ExitStatus, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.exit, i.exited
}

// Signal implements runtime.Instance: the signal goes to the container's
// init; SIGKILL ends every process of the container (its PID namespace).
// The init of a container with a PID namespace of its own is signalled
// through its pidfd alone: libcontainer's Signal also reads the cgroup's
// freezer state, which waits on the kernel's cgroup locks while other
// containers are being removed (seconds for a thousand at shutdown). In a
// shared PID namespace libcontainer kills the cgroup's every process.
func (i *Instance) Signal(sig syscall.Signal) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.exited {
		return nil
	}
	var err error
	if i.spec.PIDNamespacePath == "" {
		err = i.init.Signal(sig)
	} else {
		err = i.container.Signal(sig)
	}
	if err != nil && !errors.Is(err, libcontainer.ErrNotRunning) && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Start creates and starts a container for spec; kind prefixes its ID.
func (m *Manager) Start(spec *runtime.ContainerSpec, kind runtime.Kind, root Root, onExit func()) (*Instance, error) {
	return m.start(spec, kind, root, onExit, m.instances)
}

// start starts a container and keeps it in set (instances or pauses)
// while it runs.
func (m *Manager) start(spec *runtime.ContainerSpec, kind runtime.Kind, root Root, onExit func(), set map[*Instance]struct{}) (*Instance, error) {
	if len(spec.Argv) == 0 {
		return nil, &runtime.StartError{Message: "no command specified"}
	}
	if spec.ID == "" {
		return nil, errors.New("runc: no container ID")
	}
	logw, err := logs.Create(spec.LogPath, m.clock)
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	inst := &Instance{id: string(kind) + "://" + spec.ID, spec: spec, done: make(chan struct{})}
	type result struct{ err error }
	started := make(chan result, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		// The thread that starts the container is its init's parent for
		// the parent-death signal: it is kept until the container ends and
		// then dies with this goroutine (never unlocked).
		goruntime.LockOSThread()
		stdoutR, stderrR, err := m.create(inst, spec, root)
		// With a terminal, the container's whole output is the terminal's.
		if inst.console != nil {
			stdoutR = inst.console
		}
		if err != nil {
			logw.Close()
			started <- result{err}
			return
		}
		inst.started = m.clock.Now()
		oom, _ := inst.container.NotifyOOM()
		m.mu.Lock()
		set[inst] = struct{}{}
		m.mu.Unlock()
		var copiers sync.WaitGroup
		copiers.Add(1)
		go func() { defer copiers.Done(); _ = logw.Copy(logs.Stdout, io.TeeReader(stdoutR, &inst.stdout)) }()
		if stderrR != nil {
			copiers.Add(1)
			go func() { defer copiers.Done(); _ = logw.Copy(logs.Stderr, io.TeeReader(stderrR, &inst.stderr)) }()
		}
		started <- result{nil}

		ps, _ := inst.init.Wait()
		// The init has ended: whatever else ran in its PID namespace is
		// gone too (in a shared one, Destroy kills what is left in the
		// cgroup); the cgroup and the state go now.
		_ = inst.container.Destroy()
		copied := make(chan struct{})
		go func() { copiers.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
			stdoutR.Close()
			stderrR.Close()
			<-copied
		}
		stdoutR.Close()
		stderrR.Close()
		logw.Close()
		if inst.stdin != nil {
			inst.stdin.Close()
		}
		code := exitCode(ps)
		reason := runtime.ExitReason(code)
		if code == 128+int32(unix.SIGKILL) && oomFired(oom) {
			reason = "OOMKilled"
		}
		inst.mu.Lock()
		inst.exited = true
		inst.exit = runtime.ExitStatus{ExitCode: code, Reason: reason, FinishedAt: m.clock.Now()}
		inst.mu.Unlock()
		m.mu.Lock()
		delete(set, inst)
		m.mu.Unlock()
		close(inst.done)
		if onExit != nil {
			onExit()
		}
	}()
	res := <-started
	if res.err != nil {
		return nil, res.err
	}
	return inst, nil
}

func oomFired(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case _, ok := <-ch:
		return ok
	case <-time.After(100 * time.Millisecond):
		return false
	}
}

// create builds the libcontainer config, creates the container and runs its
// init; it returns the read ends of the init's stdout and stderr.
func (m *Manager) create(inst *Instance, spec *runtime.ContainerSpec, root Root) (stdoutR, stderrR *os.File, err error) {
	ociSpec, err := m.ociSpec(spec, root)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: spec.ID, Spec: ociSpec})
	if err != nil {
		return nil, nil, fmt.Errorf("container config: %w", err)
	}
	cfg.ParentDeathSignal = int(unix.SIGKILL)
	c, err := libcontainer.Create(m.cfg.StateRoot, spec.ID, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating container: %w", err)
	}
	if spec.TTY {
		return nil, nil, m.createWithTerminal(inst, c, ociSpec)
	}
	var stdin io.Reader
	var stdinR *os.File
	if spec.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			_ = c.Destroy()
			return nil, nil, err
		}
		stdinR, inst.stdin, stdin = r, w, r
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		_ = c.Destroy()
		return nil, nil, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		_ = c.Destroy()
		return nil, nil, err
	}
	p := &libcontainer.Process{
		Args:   spec.Argv,
		Env:    spec.Env,
		Cwd:    ociSpec.Process.Cwd,
		UID:    int(ociSpec.Process.User.UID),
		GID:    int(ociSpec.Process.User.GID),
		Stdin:  stdin,
		Stdout: stdoutW,
		Stderr: stderrW,
		Init:   true,
	}
	for _, g := range ociSpec.Process.User.AdditionalGids {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	err = c.Run(p)
	stdoutW.Close()
	stderrW.Close()
	if stdinR != nil {
		stdinR.Close()
	}
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		if inst.stdin != nil {
			inst.stdin.Close()
		}
		_ = c.Destroy()
		return nil, nil, &runtime.StartError{Message: startMessage(err)}
	}
	inst.container, inst.init = c, p
	return stdoutR, stderrR, nil
}

// createWithTerminal runs the init of a container whose spec asks for a
// terminal (tty: true): its stdin, stdout and stderr are the terminal, whose
// controlling side the instance keeps for its log and for attach.
func (m *Manager) createWithTerminal(inst *Instance, c *libcontainer.Container, ociSpec *specs.Spec) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		_ = c.Destroy()
		return err
	}
	parentSock := os.NewFile(uintptr(fds[0]), "console-parent")
	childSock := os.NewFile(uintptr(fds[1]), "console-child")
	defer parentSock.Close()
	defer childSock.Close()
	p := &libcontainer.Process{
		Args:          inst.spec.Argv,
		Env:           inst.spec.Env,
		Cwd:           ociSpec.Process.Cwd,
		UID:           int(ociSpec.Process.User.UID),
		GID:           int(ociSpec.Process.User.GID),
		ConsoleSocket: childSock,
		ConsoleWidth:  80,
		ConsoleHeight: 24,
		Init:          true,
	}
	for _, g := range ociSpec.Process.User.AdditionalGids {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	if err := c.Run(p); err != nil {
		_ = c.Destroy()
		return &runtime.StartError{Message: startMessage(err)}
	}
	console, err := recvFile(parentSock)
	if err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		_ = c.Destroy()
		return fmt.Errorf("container terminal: %w", err)
	}
	inst.container, inst.init, inst.console = c, p, console
	return nil
}

// startMessage shortens libcontainer's error to what a user acts on, as
// runc's "exec: "x": executable file not found in $PATH".
func startMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"unable to start container process: ", "runc create failed: "} {
		if i := strings.LastIndex(msg, p); i >= 0 {
			msg = msg[i+len(p):]
		}
	}
	return msg
}

func exitCode(ps *os.ProcessState) int32 {
	if ps == nil {
		return 137
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int32(ws.Signal())
		}
		return int32(ws.ExitStatus())
	}
	return int32(ps.ExitCode())
}

// ociSpec is the container as an OCI runtime spec, which specconv turns
// into libcontainer's config as runc does.
func (m *Manager) ociSpec(spec *runtime.ContainerSpec, root Root) (*specs.Spec, error) {
	sec := spec.Security
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	user := specs.User{}
	if spec.RunAsUser != nil {
		user.UID = uint32(*spec.RunAsUser)
	}
	if spec.RunAsGroup != nil {
		user.GID = uint32(*spec.RunAsGroup)
	}
	for _, g := range sec.SupplementalGroups {
		user.AdditionalGids = append(user.AdditionalGids, uint32(g))
	}
	caps, err := capabilitySet(sec)
	if err != nil {
		return nil, &runtime.StartError{Message: err.Error()}
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: root.Path, Readonly: root.Host || root.ReadOnly || sec.ReadOnlyRootFilesystem},
		Process: &specs.Process{
			Args:            spec.Argv,
			Env:             spec.Env,
			Cwd:             cwd,
			User:            user,
			NoNewPrivileges: sec.NoNewPrivileges,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Hostname: spec.Hostname,
		Linux: &specs.Linux{
			CgroupsPath: "/" + m.cfg.CgroupParent + "/" + spec.ID,
			Resources:   &specs.LinuxResources{},
		},
	}
	if sec.Seccomp == runtime.SeccompRuntimeDefault && !sec.Privileged {
		if ok, why := SeccompAvailable(); !ok {
			return nil, &runtime.StartError{Message: "seccompProfile RuntimeDefault cannot be applied: " + why}
		}
		// Docker's default profile, which containerd's RuntimeDefault is
		// derived from; syscalls the container's capabilities allow are
		// added by them, as there.
		if s.Linux.Seccomp, err = seccompprofiles.GetDefaultProfile(s); err != nil {
			return nil, &runtime.StartError{Message: "seccomp: " + err.Error()}
		}
	}
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace, Path: spec.PIDNamespacePath},
		{Type: specs.IPCNamespace, Path: spec.IPCNamespacePath}}
	switch {
	case spec.UTSNamespacePath != "":
		// The pod's UTS namespace already has the pod's hostname.
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace, Path: spec.UTSNamespacePath})
		s.Hostname = ""
	case spec.Hostname != "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	if spec.NetNSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath})
	}
	s.Linux.Namespaces = ns

	const noexec = "noexec"
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", noexec, "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", noexec, "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		shmMount(spec.ShmPath),
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", noexec, "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", noexec, "nodev", "ro"}},
	}
	if sec.Privileged {
		s.Mounts[5].Options = []string{"nosuid", noexec, "nodev", "rw"}
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind", "rw"}})
	} else {
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
		s.Linux.MaskedPaths = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}
		s.Linux.ReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	}
	if root.Host {
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, m.cfg.Masked...)
	}
	if root.Host {
		mirror, err := mirrorHost(root.Path)
		if err != nil {
			return nil, err
		}
		s.Mounts = append(s.Mounts, mirror...)
		// A private /tmp, as a container has.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}})
	}
	vols, err := volumeMounts(spec, root)
	if err != nil {
		return nil, err
	}
	s.Mounts = append(s.Mounts, vols...)

	if r := spec.Resources; r.MemoryLimit > 0 || r.CPULimitMillis > 0 {
		if r.MemoryLimit > 0 {
			limit := r.MemoryLimit
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		}
		if r.CPULimitMillis > 0 {
			period := uint64(100000)
			quota := r.CPULimitMillis * 100
			s.Linux.Resources.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
		}
	}
	return s, nil
}

// shmMount is the container's /dev/shm: the pod's (a tmpfs the pause
// container's owner mounted on the host) when it has one, else its own.
func shmMount(pod string) specs.Mount {
	if pod != "" {
		return specs.Mount{Destination: "/dev/shm", Type: "bind", Source: pod, Options: []string{"rbind", "nosuid", "noexec", "nodev", "rw"}}
	}
	return specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}
}

// capabilitySet is the container default set (all capabilities when
// privileged) with the securityContext's add and drop applied ("ALL" in
// either, as Kubernetes allows).
func capabilitySet(sec runtime.Security) ([]string, error) {
	all := map[string]bool{}
	for _, c := range capability.ListKnown() {
		all["CAP_"+strings.ToUpper(c.String())] = true
	}
	set := map[string]bool{}
	if sec.Privileged {
		for c := range all {
			set[c] = true
		}
	} else {
		for _, c := range DefaultCapabilities {
			set[c] = true
		}
	}
	norm := func(c string) (string, error) {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !all[c] {
			return "", fmt.Errorf("unknown capability %q", strings.TrimPrefix(c, "CAP_"))
		}
		return c, nil
	}
	for _, c := range sec.CapAdd {
		if strings.EqualFold(c, "ALL") {
			for c := range all {
				set[c] = true
			}
			continue
		}
		n, err := norm(c)
		if err != nil {
			return nil, err
		}
		set[n] = true
	}
	for _, c := range sec.CapDrop {
		if strings.EqualFold(c, "ALL") {
			set = map[string]bool{}
			continue
		}
		n, err := norm(c)
		if err != nil {
			return nil, err
		}
		delete(set, n)
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	return out, nil
}

// mirrorHost lays the host's top-level entries into dir (symlinks as
// symlinks, directories and files as recursive read-only binds), leaving
// /proc, /sys, /dev and /tmp to the container's own.
func mirrorHost(dir string) ([]specs.Mount, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		return nil, err
	}
	var mounts []specs.Mount
	for _, e := range entries {
		name := e.Name()
		switch name {
		case "proc", "sys", "dev", "tmp":
			continue
		}
		src := "/" + name
		fi, err := os.Lstat(src)
		if err != nil {
			continue
		}
		dst := filepath.Join(dir, name)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				continue
			}
			if cur, err := os.Readlink(dst); err == nil && cur == target {
				continue
			}
			_ = os.Remove(dst)
			if err := os.Symlink(target, dst); err != nil {
				return nil, err
			}
		case fi.IsDir(), fi.Mode().IsRegular():
			mounts = append(mounts, specs.Mount{Destination: src, Type: "bind", Source: src, Options: []string{"rbind", "rro"}})
		}
	}
	return mounts, nil
}

// volumeMounts binds the volumes at their mount paths. Under the host's
// read-only filesystem a mount point that does not exist cannot be made; the
// nearest existing directory is covered by an overlay whose upper layer is
// in the instance's state dir, so nothing on the host changes.
func volumeMounts(spec *runtime.ContainerSpec, root Root) ([]specs.Mount, error) {
	var out []specs.Mount
	overlaid := map[string]bool{}
	for _, m := range spec.Mounts {
		dst := filepath.Clean(m.ContainerPath)
		if !filepath.IsAbs(dst) {
			return nil, &runtime.StartError{Message: fmt.Sprintf("mount path %q is not absolute", m.ContainerPath)}
		}
		if root.Host && strings.Count(dst, "/") > 1 {
			if anc := missingUnder(dst); anc != "" && !overlaid[anc] {
				if strings.ContainsAny(anc, ",:\\") || spec.StateDir == "" {
					return nil, &runtime.StartError{Message: fmt.Sprintf("cannot create the mount point %s under the host's read-only %s", dst, anc)}
				}
				n := len(overlaid)
				upper := filepath.Join(spec.StateDir, fmt.Sprintf("ovl%d", n), "upper")
				work := filepath.Join(spec.StateDir, fmt.Sprintf("ovl%d", n), "work")
				for _, d := range []string{upper, work} {
					if err := os.MkdirAll(d, 0o755); err != nil {
						return nil, err
					}
				}
				out = append(out, specs.Mount{Destination: anc, Type: "overlay", Source: "overlay",
					Options: []string{"lowerdir=" + anc, "upperdir=" + upper, "workdir=" + work}})
				overlaid[anc] = true
			}
		}
		opts := []string{"rbind", "rw"}
		if m.ReadOnly {
			opts = []string{"rbind", "ro"}
		}
		out = append(out, specs.Mount{Destination: dst, Type: "bind", Source: m.HostPath, Options: opts})
	}
	return out, nil
}

// missingUnder returns the deepest existing host directory above p (below
// the top level) when p itself does not exist on the host, else "".
func missingUnder(p string) string {
	if _, err := os.Lstat(p); err == nil {
		return ""
	}
	anc := filepath.Dir(p)
	for strings.Count(anc, "/") > 1 {
		if fi, err := os.Stat(anc); err == nil && fi.IsDir() {
			return anc
		}
		anc = filepath.Dir(anc)
	}
	if fi, err := os.Stat(anc); err == nil && fi.IsDir() && anc != "/" {
		return anc
	}
	return ""
}

// ExecStream runs a command in a running instance's namespaces and cgroup,
// as the container's user, with its environment and working dir.
func (m *Manager) ExecStream(ctx context.Context, inst *Instance, opts runtime.ExecOptions) (int, error) {
	if len(opts.Argv) == 0 {
		return -1, errors.New("exec: no command")
	}
	if _, done := inst.Exited(); done {
		return -1, errors.New("container is not running")
	}
	spec := inst.spec
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	p := &libcontainer.Process{Args: opts.Argv, Env: spec.Env, Cwd: cwd, Init: false}
	if spec.RunAsUser != nil {
		p.UID = int(*spec.RunAsUser)
	}
	if spec.RunAsGroup != nil {
		p.GID = int(*spec.RunAsGroup)
	}
	var term *os.File
	var parentSock *os.File
	if opts.TTY {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		parentSock = os.NewFile(uintptr(fds[0]), "console-parent")
		childSock := os.NewFile(uintptr(fds[1]), "console-child")
		defer parentSock.Close()
		defer childSock.Close()
		p.ConsoleSocket = childSock
	} else {
		p.Stdin, p.Stdout, p.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	}
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		if err := inst.container.Run(p); err != nil {
			res <- result{-1, &runtime.StartError{Message: startMessage(err)}}
			return
		}
		if parentSock != nil {
			t, err := recvFile(parentSock)
			if err != nil {
				_ = p.Signal(unix.SIGKILL)
				_, _ = p.Wait()
				res <- result{-1, fmt.Errorf("exec: terminal: %w", err)}
				return
			}
			term = t
		}
		stop := make(chan struct{})
		var copied sync.WaitGroup
		if term != nil {
			if opts.Stdin != nil {
				go func() { _, _ = io.Copy(term, opts.Stdin) }()
			}
			if opts.Stdout != nil {
				copied.Add(1)
				go func() { defer copied.Done(); _, _ = io.Copy(opts.Stdout, term) }()
			}
			if opts.Resize != nil {
				go func() {
					for {
						select {
						case sz, ok := <-opts.Resize:
							if !ok {
								return
							}
							_ = unix.IoctlSetWinsize(int(term.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
						case <-stop:
							return
						}
					}
				}()
			}
		}
		go func() {
			select {
			case <-ctx.Done():
				_ = p.Signal(unix.SIGKILL)
			case <-stop:
			}
		}()
		ps, _ := p.Wait()
		close(stop)
		if term != nil {
			copied.Wait()
			term.Close()
		}
		res <- result{int(exitCode(ps)), nil}
	}()
	r := <-res
	if r.err == nil && ctx.Err() != nil {
		return -1, ctx.Err()
	}
	return r.code, r.err
}

// Attach connects a client to a running container's terminal, or to its
// stdin (when the spec keeps it open) and output.
func (m *Manager) Attach(ctx context.Context, inst *Instance, opts runtime.AttachOptions) error {
	if _, done := inst.Exited(); done {
		return errors.New("container is not running")
	}
	var in io.Writer
	switch {
	case inst.console != nil:
		in = inst.console
	case inst.stdin != nil:
		in = inst.stdin
	}
	out := opts.Stdout
	outFailed, detachOut := inst.stdout.Add(out)
	defer detachOut()
	errFailed, detachErr := inst.stderr.Add(opts.Stderr)
	defer detachErr()

	stdinDone := make(chan struct{})
	if opts.Stdin != nil && in != nil {
		inst.mu.Lock()
		inst.stdinTaken = true
		inst.mu.Unlock()
		go func() {
			defer close(stdinDone)
			_, _ = io.Copy(in, opts.Stdin)
		}()
	}
	if opts.Resize != nil && inst.console != nil {
		go func() {
			for {
				select {
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					_ = unix.IoctlSetWinsize(int(inst.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
				case <-inst.done:
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	// The session lasts until the container ends or the client goes; a
	// client's end of stdin closes a StdinOnce container's stdin at once.
	for {
		select {
		case <-inst.done:
			return nil
		case <-ctx.Done():
			m.closeStdinOnce(inst)
			return nil
		case <-outFailed:
			m.closeStdinOnce(inst)
			return nil
		case <-errFailed:
			m.closeStdinOnce(inst)
			return nil
		case <-stdinDone:
			m.closeStdinOnce(inst)
			stdinDone = nil
		}
	}
}

// closeStdinOnce closes the stdin of a StdinOnce container after its first
// attached client with stdin has gone, so that it reads EOF.
func (m *Manager) closeStdinOnce(inst *Instance) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if !inst.spec.StdinOnce || !inst.stdinTaken || inst.exited {
		return
	}
	if inst.stdin != nil {
		_ = inst.stdin.Close()
	}
}

// KillLeftovers destroys every container a previous run left in the state
// root (killing all its processes and removing its cgroup), and returns how
// many were still running.
func (m *Manager) KillLeftovers() (int, error) {
	entries, err := os.ReadDir(m.cfg.StateRoot)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, err
	}
	killed := 0
	for _, e := range entries {
		c, err := libcontainer.Load(m.cfg.StateRoot, e.Name())
		if err != nil {
			_ = os.RemoveAll(filepath.Join(m.cfg.StateRoot, e.Name()))
			continue
		}
		if st, err := c.Status(); err == nil && st != libcontainer.Stopped {
			killed++
			_ = c.Signal(unix.SIGKILL)
			// Killing is asynchronous: wait for the init to be gone.
			for i := 0; i < 500; i++ {
				if st, err := c.Status(); err != nil || st == libcontainer.Stopped {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if err := c.Destroy(); err != nil {
			return killed, fmt.Errorf("removing container %s left by a previous run: %w", e.Name(), err)
		}
	}
	return killed, nil
}

// Shutdown sends SIGTERM to every container, SIGKILL to what is left after
// grace (at once to a container whose init cannot receive SIGTERM), then
// ends the pods' pause containers (a pause that ended first would kill the
// containers of its PID namespace without their grace), waits for them all
// to be removed, and removes the parent cgroup. Signals go to many
// containers at once and each container is removed by its own goroutine.
func (m *Manager) Shutdown(grace time.Duration) {
	var deaf, rest []*Instance
	for _, i := range m.running(m.instances) {
		if i.deafToTERM() {
			deaf = append(deaf, i)
		} else {
			rest = append(rest, i)
		}
	}
	runtime.SignalAll(deaf, unix.SIGKILL)
	runtime.Stop(rest, grace)
	runtime.SignalAll(m.running(m.pauses), unix.SIGKILL)
	m.wg.Wait()
	m.removeParentCgroup()
	m.removeStateRoot()
}

// removeStateRoot removes the state root once every container is gone, and
// its parent when it is quartet's own directory under /run
// (/run/quartet-<id>); what is left in it stays for the next start.
func (m *Manager) removeStateRoot() {
	if os.Remove(m.cfg.StateRoot) != nil {
		return
	}
	if parent := filepath.Dir(m.cfg.StateRoot); strings.HasPrefix(filepath.Base(parent), "quartet-") {
		_ = os.Remove(parent)
	}
}

// binaryDirHolding returns the directory of the running binary when dir
// lies inside it (libcontainer's overlayfs seal of the binary then fails),
// or "".
func binaryDirHolding(dir string) string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	bin := filepath.Dir(exe)
	if rel, err := filepath.Rel(bin, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return bin
	}
	return ""
}

// deafToTERM reports whether SIGTERM cannot reach the container's init:
// PID 1 of its own namespace with neither a handler for it nor it blocked,
// so the kernel drops it (a `sleep` as the container's command). Waiting
// the grace for it to end would be waiting for nothing.
func (i *Instance) deafToTERM() bool {
	if i.spec.PIDNamespacePath != "" {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", i.Pid()))
	if err != nil {
		return false
	}
	term := uint64(1) << (unix.SIGTERM - 1)
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "SigCgt" && k != "SigBlk") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil || mask&term != 0 {
			return false
		}
	}
	return true
}

func (m *Manager) running(set map[*Instance]struct{}) []*Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	insts := make([]*Instance, 0, len(set))
	for i := range set {
		insts = append(insts, i)
	}
	return insts
}

// removeParentCgroup removes the (empty) parent cgroup in every hierarchy.
func (m *Manager) removeParentCgroup() {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + m.cfg.CgroupParent)
	if d := "/sys/fs/cgroup/" + m.cfg.CgroupParent; dirExists(d) {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		_ = unix.Rmdir(d)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// recvFile receives the terminal's controlling side that the container's
// process sends over the console socket (one file descriptor).
func recvFile(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, errors.New("no terminal received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("no terminal received")
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
