// Package process is the runtime that runs each container as a real host
// program, with stdout and stderr kept in a CRI-format log file.
//
// When quartet runs as root on Linux, each instance is a container run by
// runc's libcontainer (package runc) whose root filesystem is the host's,
// read-only: its own mount, PID, IPC and UTS namespaces, a private /tmp,
// every volume bind-mounted at its mountPath, quartet's data dir hidden, its
// own cgroup (limits enforced, every process found and killed after any
// crash) and the container default capability set unless privileged.
//
// Without root, an instance is a plain host process in its own process
// group: whatever it leaves in the group is killed when it ends, when the
// pod goes, and when quartet exits (PR_SET_PDEATHSIG covers a crash of
// quartet itself); a process that leaves its group is not followed.
package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"quartet.dev/quartet/internal/node/logs"
	"quartet.dev/quartet/internal/node/runtime"
	"quartet.dev/quartet/internal/node/runtime/runc"
)

// DefaultPath is the PATH a container gets when its env has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config configures the process runtime.
type Config struct {
	// Containers, when set, runs every instance as a container whose root
	// is the host's filesystem, read-only (it needs root; see Isolation).
	// Nil runs plain host processes.
	Containers *runc.Manager
	Clock      clock.PassiveClock
	// Images is the image map (nil: the built-in one only).
	Images *Images
	// StateRoot is the directory under which instances' StateDirs live;
	// KillLeftovers looks there for what a previous run left behind.
	StateRoot string
}

// Runtime is the process runtime.
type Runtime struct {
	containers *runc.Manager
	clock      clock.PassiveClock
	images     *Images
	stateRoot  string

	mu        sync.Mutex
	instances map[*Instance]struct{}
	wg        sync.WaitGroup
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a process runtime.
func New(cfg Config) *Runtime {
	c := cfg.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	im := cfg.Images
	if im == nil {
		im = NewImages("")
	}
	return &Runtime{containers: cfg.Containers, clock: c, images: im, stateRoot: cfg.StateRoot, instances: map[*Instance]struct{}{}}
}

// Image implements runtime.Runtime: a container runs when it has a command
// or its image is in the image map.
func (r *Runtime) Image(_ context.Context, image string, command []string) (runtime.ImageConfig, error) {
	entry, mapped := r.images.Lookup(image)
	if !mapped {
		if len(command) > 0 {
			return runtime.ImageConfig{}, nil
		}
		msg := fmt.Sprintf("Container image %q has no local entrypoint for the process runtime: give the container a command, map the image in the image map, or run quartet with --runtime auto or sim", image)
		if r.images.path != "" {
			msg = fmt.Sprintf("Container image %q has no local entrypoint for the process runtime: give the container a command, map the image in %s, or run quartet with --runtime auto or sim", image, r.images.path)
		}
		return runtime.ImageConfig{}, &runtime.UnrunnableError{Message: msg}
	}
	cfg := runtime.ImageConfig{Entrypoint: entry.Entrypoint, Cmd: entry.Cmd, WorkingDir: entry.WorkingDir}
	if len(command) == 0 && len(cfg.Entrypoint) == 0 && len(cfg.Cmd) == 0 {
		return cfg, &runtime.UnrunnableError{Message: fmt.Sprintf("Container image %q is mapped to nothing to run in the image map", image)}
	}
	return cfg, nil
}

// Isolation reports whether this process can run instances as containers,
// and why not when it cannot.
func Isolation() (bool, string) { return runc.Available() }

// Kind implements runtime.Runtime.
func (r *Runtime) Kind() runtime.Kind { return runtime.KindProcess }

// Isolated reports whether instances run as containers.
func (r *Runtime) Isolated() bool { return r.containers != nil }

// Instance is one running (or finished) container process.
type Instance struct {
	id      string
	started time.Time
	spec    *runtime.ContainerSpec

	mu     sync.Mutex
	pid    int
	exit   runtime.ExitStatus
	exited bool
	done   chan struct{}
}

// ID implements runtime.Instance.
func (i *Instance) ID() string { return i.id }

// StartedAt implements runtime.Instance.
func (i *Instance) StartedAt() time.Time { return i.started }

// Pid is the instance's main process (and process group) id.
func (i *Instance) Pid() int { return i.pid }

// Done is closed when the instance has ended and its processes are gone.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Exited implements runtime.Instance.
func (i *Instance) Exited() (runtime.ExitStatus, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.exit, i.exited
}

// Signal implements runtime.Instance: sig goes to the whole process group.
func (i *Instance) Signal(sig syscall.Signal) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.exited || i.pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-i.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// NewID returns a fresh random container ID (64 hex digits).
func NewID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lookPath finds argv0 the way a container runtime does: as given when it
// holds a slash, else in the PATH of env.
func lookPath(argv0 string, env []string, workingDir string) (string, error) {
	if argv0 == "" {
		return "", &runtime.StartError{Message: "exec: empty command"}
	}
	check := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return syscall.EACCES
		}
		return nil
	}
	if strings.Contains(argv0, "/") {
		p := argv0
		if !filepath.IsAbs(p) {
			wd := workingDir
			if wd == "" {
				wd = "/"
			}
			p = filepath.Join(wd, p)
		}
		if err := check(p); err != nil {
			return "", &runtime.StartError{Message: fmt.Sprintf("exec: %q: %v", argv0, unwrapPathErr(err))}
		}
		return p, nil
	}
	path := DefaultPath
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv[len("PATH="):]
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, argv0)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", &runtime.StartError{Message: fmt.Sprintf("exec: %q: executable file not found in $PATH", argv0)}
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Start implements runtime.Runtime.
func (r *Runtime) Start(ctx context.Context, spec *runtime.ContainerSpec, onExit func()) (runtime.Instance, error) {
	id := spec.ID
	if id == "" {
		id = NewID()
	}
	if spec.StateDir != "" {
		if err := os.MkdirAll(spec.StateDir, 0o750); err != nil {
			return nil, err
		}
	}
	if r.containers != nil {
		s := *spec
		s.ID = id
		inst, err := r.containers.Start(&s, runtime.KindProcess, runc.Root{Path: filepath.Join(spec.StateDir, "rootfs"), Host: true}, onExit)
		if err != nil {
			return nil, err
		}
		return inst, nil
	}
	logw, err := logs.Create(spec.LogPath, r.clock)
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	inst := &Instance{id: string(runtime.KindProcess) + "://" + id, spec: spec, done: make(chan struct{})}

	type startResult struct{ err error }
	started := make(chan startResult, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		// The thread that forks a process is its parent for PR_SET_PDEATHSIG,
		// so this goroutine keeps the thread until the process has ended; the
		// thread is never unlocked and dies with the goroutine (when isolated
		// it also carries the container's namespaces).
		goruntime.LockOSThread()
		if spec.Security.NoNewPrivileges {
			// Inherited by the process (allowPrivilegeEscalation: false).
			if err := setNoNewPrivs(); err != nil {
				logw.Close()
				started <- startResult{err}
				return
			}
		}
		cmd, stdoutR, stderrR, err := r.prepare(inst, spec)
		if err != nil {
			logw.Close()
			started <- startResult{err}
			return
		}
		err = cmd.Start()
		// The write ends belong to the child now.
		cmd.Stdout.(*os.File).Close()
		cmd.Stderr.(*os.File).Close()
		if cmd.Stdin != nil {
			cmd.Stdin.(*os.File).Close()
		}
		if err != nil {
			stdoutR.Close()
			stderrR.Close()
			logw.Close()
			started <- startResult{&runtime.StartError{Message: fmt.Sprintf("exec: %q: %v", spec.Argv[0], unwrapPathErr(err))}}
			return
		}
		inst.mu.Lock()
		inst.pid = cmd.Process.Pid
		inst.started = r.clock.Now()
		inst.mu.Unlock()
		writePidFile(spec.StateDir, cmd.Process.Pid)
		r.mu.Lock()
		r.instances[inst] = struct{}{}
		r.mu.Unlock()

		var copiers sync.WaitGroup
		copiers.Add(2)
		go func() { defer copiers.Done(); _ = logw.Copy(logs.Stdout, stdoutR) }()
		go func() { defer copiers.Done(); _ = logw.Copy(logs.Stderr, stderrR) }()
		started <- startResult{nil}

		werr := cmd.Wait()
		// A container ends with its main process: whatever it left behind in
		// its process group goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		copied := make(chan struct{})
		go func() { copiers.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
			// A process that left the group still holds the pipes.
			stdoutR.Close()
			stderrR.Close()
			<-copied
		}
		stdoutR.Close()
		stderrR.Close()
		logw.Close()
		removePidFile(spec.StateDir)

		code := exitCode(cmd, werr)
		inst.mu.Lock()
		inst.exited = true
		inst.exit = runtime.ExitStatus{ExitCode: code, Reason: runtime.ExitReason(code), FinishedAt: r.clock.Now()}
		inst.mu.Unlock()
		r.mu.Lock()
		delete(r.instances, inst)
		r.mu.Unlock()
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

// prepare builds the command of a plain host process.
func (r *Runtime) prepare(inst *Instance, spec *runtime.ContainerSpec) (*exec.Cmd, *os.File, *os.File, error) {
	if len(spec.Argv) == 0 {
		return nil, nil, nil, &runtime.StartError{Message: "exec: no command"}
	}
	attr := newSysProcAttr()
	workingDir := spec.WorkingDir
	if workingDir == "" {
		workingDir = "/"
	}
	if fi, err := os.Stat(workingDir); err != nil || !fi.IsDir() {
		return nil, nil, nil, &runtime.StartError{Message: fmt.Sprintf("workingDir %q does not exist on this host (without root, quartet cannot give the container its own filesystem view)", workingDir)}
	}
	path, err := lookPath(spec.Argv[0], spec.Env, workingDir)
	if err != nil {
		return nil, nil, nil, err
	}
	if os.Geteuid() == 0 && spec.RunAsUser != nil {
		gid := int64(0)
		if spec.RunAsGroup != nil {
			gid = *spec.RunAsGroup
		}
		attr.Credential = &syscall.Credential{Uid: uint32(*spec.RunAsUser), Gid: uint32(gid), NoSetGroups: true}
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, nil, err
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdin.Close()
		return nil, nil, nil, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdin.Close()
		stdoutR.Close()
		stdoutW.Close()
		return nil, nil, nil, err
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        spec.Argv,
		Env:         spec.Env,
		Dir:         workingDir,
		Stdin:       stdin,
		Stdout:      stdoutW,
		Stderr:      stderrW,
		SysProcAttr: attr,
	}
	return cmd, stdoutR, stderrR, nil
}

func exitCode(cmd *exec.Cmd, err error) int32 {
	if cmd.ProcessState == nil {
		return 128
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int32(ws.Signal())
		}
		return int32(ws.ExitStatus())
	}
	return int32(cmd.ProcessState.ExitCode())
}

// ExecStream implements runtime.Runtime: the command runs in the
// instance's container (or, for a plain process, beside it on the host),
// with its environment and working dir.
func (r *Runtime) ExecStream(ctx context.Context, inst runtime.Instance, opts runtime.ExecOptions) (int, error) {
	if ci, ok := inst.(*runc.Instance); ok && r.containers != nil {
		return r.containers.ExecStream(ctx, ci, opts)
	}
	pi, ok := inst.(*Instance)
	if !ok {
		return -1, fmt.Errorf("process runtime: not a process instance")
	}
	if len(opts.Argv) == 0 {
		return -1, fmt.Errorf("exec: no command")
	}
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	killed := make(chan struct{})
	go func() {
		// The thread is the command's parent for PR_SET_PDEATHSIG: it is
		// kept until the command has ended, and dies with this goroutine.
		goruntime.LockOSThread()
		attr := newSysProcAttr()
		wd := pi.spec.WorkingDir
		if wd == "" {
			wd = "/"
		}
		path, err := lookPath(opts.Argv[0], pi.spec.Env, wd)
		if err != nil {
			res <- result{-1, err}
			return
		}
		cmd := &exec.Cmd{Path: path, Args: opts.Argv, Env: pi.spec.Env, Dir: wd, SysProcAttr: attr}
		var term *os.File
		if opts.TTY {
			var tty *os.File
			term, tty, err = openPTY()
			if err != nil {
				res <- result{-1, err}
				return
			}
			defer term.Close()
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			setControllingTTY(attr)
			err = cmd.Start()
			tty.Close()
		} else {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
			err = cmd.Start()
		}
		if err != nil {
			res <- result{-1, &runtime.StartError{Message: fmt.Sprintf("exec: %q: %v", opts.Argv[0], unwrapPathErr(err))}}
			return
		}
		stop := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				close(killed)
			case <-stop:
			}
		}()
		var copied sync.WaitGroup
		if term != nil {
			if opts.Stdin != nil {
				go func() { _, _ = io.Copy(term, opts.Stdin) }()
			}
			if opts.Resize != nil {
				go func() {
					for {
						select {
						case sz, ok := <-opts.Resize:
							if !ok {
								return
							}
							_ = setTerminalSize(term, sz)
						case <-stop:
							return
						}
					}
				}()
			}
			if opts.Stdout != nil {
				copied.Add(1)
				go func() { defer copied.Done(); _, _ = io.Copy(opts.Stdout, term) }()
			}
		}
		werr := cmd.Wait()
		close(stop)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if term != nil {
			// Output still buffered in the terminal is read until EIO.
			copied.Wait()
		}
		res <- result{int(exitCode(cmd, werr)), nil}
	}()
	r2 := <-res
	select {
	case <-killed:
		return -1, ctx.Err()
	default:
	}
	return r2.code, r2.err
}

// Attach implements runtime.Runtime for containers (quartet as root). A
// plain host process has stdin from /dev/null and no terminal: there is
// nothing to attach to.
func (r *Runtime) Attach(ctx context.Context, inst runtime.Instance, opts runtime.AttachOptions) error {
	if ci, ok := inst.(*runc.Instance); ok && r.containers != nil {
		return r.containers.Attach(ctx, ci, opts)
	}
	return errors.New("attach needs quartet to run as root: without it a container is a plain host process with no stdin or terminal to attach to")
}

// Shutdown sends SIGTERM to every running instance, SIGKILL to what is left
// after grace, and returns once every instance has ended.
func (r *Runtime) Shutdown(grace time.Duration) {
	r.mu.Lock()
	insts := make([]*Instance, 0, len(r.instances))
	for i := range r.instances {
		insts = append(insts, i)
	}
	r.mu.Unlock()
	runtime.Stop(insts, grace)
	r.wg.Wait()
	if r.containers != nil {
		r.containers.Shutdown(grace)
	}
}

// pidFile records a running instance's pid and start time so that a later
// quartet on the same data dir can kill a process that outlived its parent.
const pidFile = "pid"

func writePidFile(dir string, pid int) {
	if dir == "" {
		return
	}
	st, err := procStartTime(pid)
	if err != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(dir, pidFile), []byte(fmt.Sprintf("%d %d\n", pid, st)), 0o640)
}

func removePidFile(dir string) {
	if dir != "" {
		_ = os.Remove(filepath.Join(dir, pidFile))
	}
}

// procStartTime reads a process's start time (clock ticks since boot) from /proc.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	if i < 0 {
		return 0, fmt.Errorf("malformed stat")
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is the state (field 3); the start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed stat")
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// KillLeftovers implements runtime.Runtime: containers a previous run left
// are destroyed with every process in their cgroups; plain processes
// recorded in pid files are killed with their process groups.
func (r *Runtime) KillLeftovers(context.Context) (int, error) {
	n := 0
	if r.containers != nil {
		k, err := r.containers.KillLeftovers()
		if err != nil {
			return k, err
		}
		n += k
	}
	if r.stateRoot != "" {
		n += killLeftovers(r.stateRoot)
	}
	return n, nil
}

// killLeftovers walks dir for pid files of instances a previous quartet
// started and kills the process groups that are still alive, so that a
// restarted quartet never runs a container twice. It returns how many it killed.
func killLeftovers(dir string) int {
	killed := 0
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != pidFile {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		var pid int
		var st uint64
		if _, err := fmt.Sscanf(string(b), "%d %d", &pid, &st); err != nil || pid <= 1 {
			return nil
		}
		if cur, err := procStartTime(pid); err == nil && cur == st {
			if syscall.Kill(-pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
		_ = os.Remove(path)
		return nil
	})
	return killed
}
