// Package cluster starts and stops `quartet up` processes for black-box
// tests, scenarios and benchmarks: each in its own temp data dir on a free
// port, stopped by pid, with a check that nothing is left behind.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"quartet.dev/quartet/internal/datadir"
)

// ReadyLine starts the line `quartet up` prints once the cluster is ready.
const ReadyLine = "quartet is ready"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a quartet binary built the way `make build`
// builds it: $QUARTET_BIN when set, otherwise one built once per test
// process into a temp dir.
func Binary() (string, error) {
	buildOnce.Do(func() {
		if p := os.Getenv("QUARTET_BIN"); p != "" {
			binPath, buildErr = filepath.Abs(p)
			return
		}
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		out, err := exec.Command("make", "-s", "-C", root, "print-ldflags").Output()
		if err != nil {
			buildErr = fmt.Errorf("make print-ldflags: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "quartet-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "quartet")
		tags, err := exec.Command("make", "-s", "-C", root, "print-tags").Output()
		if err != nil {
			buildErr = fmt.Errorf("make print-tags: %w", err)
			return
		}
		cmd := exec.Command("go", "build", "-tags", strings.TrimSpace(string(tags)), "-ldflags", strings.TrimSpace(string(out)), "-o", binPath, "./cmd/quartet")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, b)
		}
	})
	return binPath, buildErr
}

// RepoRoot is the directory holding go.mod.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the repository")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Options say how to start a cluster.
type Options struct {
	// Args are extra `quartet up` flags, e.g. "--workload-controllers=upstream".
	Args []string
	// DataDir reuses a data dir (for restart tests); empty makes a new one.
	DataDir string
	// APIPort reuses a port; 0 picks a free one.
	APIPort int
	// Log receives the process's output; nil discards it.
	Log io.Writer
	// ReadyTimeout bounds the wait for the ready line (default 2 minutes).
	ReadyTimeout time.Duration
	// Bin is the quartet binary to run; empty means Binary().
	Bin string
	// Credential, when set, runs `quartet up` as that user (the binary and
	// the data dir must be reachable by it).
	Credential *syscall.Credential
}

// Cluster is one running `quartet up`.
type Cluster struct {
	DataDir    string
	APIPort    int
	Kubeconfig string
	Bin        string
	Output     *syncBuffer
	opts       Options
	ownDir     bool
	cmd        *exec.Cmd
	exited     chan struct{}
	exitErr    error
}

// Start runs `quartet up` and waits for its ready line.
func Start(opts Options) (*Cluster, error) {
	EnableSubreaper()
	bin := opts.Bin
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	var err error
	c := &Cluster{Bin: bin, DataDir: opts.DataDir, APIPort: opts.APIPort, Output: &syncBuffer{}}
	if c.DataDir == "" {
		if c.DataDir, err = os.MkdirTemp("", "quartet-test-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	}
	if c.APIPort == 0 {
		if c.APIPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	c.Kubeconfig = datadir.Dir(c.DataDir).Kubeconfig()
	c.opts = opts
	if err := c.launch(); err != nil {
		if c.ownDir {
			os.RemoveAll(c.DataDir)
		}
		return nil, err
	}
	return c, nil
}

// Restart starts a stopped cluster again on the same data dir and port.
func (c *Cluster) Restart() error {
	select {
	case <-c.exited:
	default:
		return errors.New("restart: the cluster is still running")
	}
	c.Output.WriteString("--- restart ---\n")
	return c.launch()
}

// launch runs `quartet up` and waits for its ready line.
func (c *Cluster) launch() error {
	opts := c.opts
	bin := c.Bin
	args := append([]string{"up", "--data-dir", c.DataDir, "--api-port", strconv.Itoa(c.APIPort)}, opts.Args...)
	c.cmd = exec.Command(bin, args...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: opts.Credential}
	c.cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		return err
	}
	c.exited = make(chan struct{})
	go func() {
		c.exitErr = c.cmd.Wait()
		pw.Close()
		close(c.exited)
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text() + "\n"
			c.Output.WriteString(line)
			if opts.Log != nil {
				io.WriteString(opts.Log, line)
			}
			if !signalled && strings.HasPrefix(line, ReadyLine) {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	select {
	case <-ready:
		return nil
	case <-c.exited:
		return fmt.Errorf("quartet up exited before ready (%v):\n%s", c.exitErr, c.Output.String())
	case <-time.After(timeout):
		_, _ = c.Stop()
		return fmt.Errorf("quartet up not ready within %s:\n%s", timeout, c.Output.String())
	}
}

// Pid is the process id of `quartet up`.
func (c *Cluster) Pid() int { return c.cmd.Process.Pid }

// RESTConfig is a cluster-admin client config.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 1000, 2000
	return rc, nil
}

// Client is a cluster-admin clientset.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	rc, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// Kubectl runs `quartet kubectl args...` against the cluster and returns
// its combined output.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Bin, append([]string{"kubectl"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Quartet runs another quartet subcommand (e.g. "node", "add", "node-4").
func (c *Cluster) Quartet(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "QUARTET_DATA_DIR="+c.DataDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("quartet %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Stop sends SIGTERM, waits up to 15 s for the process to exit (then
// SIGKILLs its process group), and returns how long the exit took. It does
// not remove the data dir; Cleanup does.
func (c *Cluster) Stop() (time.Duration, error) {
	start := time.Now()
	select {
	case <-c.exited:
		return 0, nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM) // it may have exited meanwhile
	select {
	case <-c.exited:
		return time.Since(start), nil
	case <-time.After(45 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		return time.Since(start), fmt.Errorf("quartet up did not exit within 45s of SIGTERM")
	}
}

// Exited reports whether the process has exited (without waiting).
func (c *Cluster) Exited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// ExitErr is the process's exit status once it has exited.
func (c *Cluster) ExitErr() error {
	<-c.exited
	return c.exitErr
}

// Cleanup stops the cluster, removes a data dir it created, and returns an
// error if any process it started is still alive.
func (c *Cluster) Cleanup() error {
	_, stopErr := c.Stop()
	left := Leftovers(c.Pid())
	if c.ownDir {
		os.RemoveAll(c.DataDir)
	}
	if len(left) > 0 {
		return fmt.Errorf("processes left behind by quartet up (pid %d): %s", c.Pid(), strings.Join(left, "; "))
	}
	return stopErr
}

// FreePort returns an unused loopback TCP port below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range), chosen at random. A port from that
// range can be taken by any outgoing connection's local end while a test
// has its cluster stopped, and the restart on the same port then fails with
// "address already in use"; below it, only another listener can take it.
func FreePort() (int, error) {
	low := ephemeralLow()
	for range 100 {
		port := freePortFloor + rand.IntN(low-freePortFloor)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePortFloor keeps FreePort's ports clear of the well-known and
// registered ports services on the machine use most.
const freePortFloor = 10000

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when
// it cannot be read, Linux's default).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > freePortFloor+1000 {
				return n
			}
		}
	}
	return 32768
}

var subreaperOnce sync.Once

// EnableSubreaper makes this test process the reaper of orphaned
// descendants, so a process that outlives `quartet up` is found by
// Leftovers instead of escaping to init.
func EnableSubreaper() {
	subreaperOnce.Do(func() {
		const prSetChildSubreaper = 36
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0) // best effort: without it orphans escape to init
	})
}

// Leftovers lists live processes (other than this test process's own
// helpers) that descend from pid or were reparented to this test process
// after pid exited, and the process group pid led.
func Leftovers(pid int) []string {
	self := os.Getpid()
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == self {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid pgrp ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		if p == pid || ppid == pid || pgrp == pid || (ppid == self && isQuartetDescendant(p)) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			left = append(left, fmt.Sprintf("pid %d: %s", p, strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")))
		}
	}
	return left
}

// isQuartetDescendant tells an orphan reparented to the test process from
// the test's own children (go build, kubectl), which the test waits for.
func isQuartetDescendant(pid int) bool {
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return false
	}
	return bytes.Contains(env, []byte("QUARTET_POD="))
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) WriteString(p string) {
	s.mu.Lock()
	s.b.WriteString(p)
	s.mu.Unlock()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ListeningTCP lists the TCP addresses ("127.0.0.1:6443") that process pid
// listens on, read from /proc.
func ListeningTCP(pid int) ([]string, error) {
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "net", table))
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			out = append(out, procAddr(f[1]))
		}
	}
	return out, nil
}

// procAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080".
func procAddr(s string) string {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return s
	}
	p, _ := strconv.ParseUint(port, 16, 16)
	b := make([]byte, 0, len(host)/2)
	for i := 0; i+8 <= len(host); i += 8 {
		w, _ := strconv.ParseUint(host[i:i+8], 16, 32)
		b = append(b, byte(w), byte(w>>8), byte(w>>16), byte(w>>24)) // each 32-bit word is in host (little-endian) order
	}
	return net.JoinHostPort(net.IP(b).String(), strconv.FormatUint(p, 10))
}
