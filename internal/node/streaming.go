package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"quartet.dev/quartet/internal/node/runtime"
)

// The kubelet's streaming limits: a session that moves no data for
// streamIdleTimeout is closed (--streaming-connection-idle-timeout), and a
// client has streamCreationTimeout to open its streams.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// requestError is an answer given before a stream is opened: kubectl shows
// its text after "error: unable to upgrade connection: ".
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func writeRequestError(w http.ResponseWriter, err error) {
	var re *requestError
	if errors.As(err, &re) {
		http.Error(w, re.msg, re.code)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// streamPod finds the pod a streaming request names, on this node, and its
// record. A {uid} in the path must match the pod's.
func (a *agent) streamPod(r *http.Request) (*v1.Pod, *podRecord, error) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	obj, exists, _ := a.host.podInformer.GetIndexer().GetByKey(ns + "/" + name)
	pod, _ := obj.(*v1.Pod)
	if !exists || pod == nil || pod.Spec.NodeName != a.name {
		return nil, nil, &requestError{http.StatusNotFound, "pod does not exist"}
	}
	if uid := r.PathValue("uid"); uid != "" && uid != string(pod.UID) {
		return nil, nil, &requestError{http.StatusNotFound, "pod not found"}
	}
	rec := a.host.record(pod.UID)
	if rec == nil {
		return nil, nil, &requestError{http.StatusNotFound, "pod does not exist"}
	}
	return pod, rec, nil
}

// runningInstance returns the running instance of a container and its
// runtime, or the kubelet's error when there is none.
func (a *agent) runningInstance(pod *v1.Pod, rec *podRecord, container string) (runtime.Instance, runtime.Runtime, error) {
	if !podHasContainer(pod, container) {
		return nil, nil, &requestError{http.StatusNotFound, fmt.Sprintf("container not found (%q)", container)}
	}
	rec.mu.Lock()
	inst := rec.instances[container]
	rec.mu.Unlock()
	if inst == nil {
		return nil, nil, &requestError{http.StatusNotFound, fmt.Sprintf("container not found (%q)", container)}
	}
	if _, done := inst.Exited(); done {
		return nil, nil, &requestError{http.StatusNotFound, fmt.Sprintf("container not found (%q)", container)}
	}
	if runtime.KindOf(inst.ID()) == runtime.KindSim {
		return nil, nil, &requestError{http.StatusBadRequest, fmt.Sprintf(
			"container %q of pod %q is simulated (quartet runs no process for image %q): there is nothing to exec into or attach to; give it a command or map its image to run it",
			container, pod.Name, containerImage(pod, container))}
	}
	rt, err := a.host.runtimeFor(inst)
	if err != nil {
		return nil, nil, err
	}
	return inst, rt, nil
}

// podHasContainer reports whether the pod spec names the container
// (regular, init or ephemeral).
func podHasContainer(pod *v1.Pod, name string) bool {
	if findContainer(pod, name) != nil {
		return true
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func containerImage(pod *v1.Pod, name string) string {
	if c := findContainer(pod, name); c != nil {
		return c.Image
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return c.Image
		}
	}
	return ""
}

// serveExec serves /exec/{namespace}/{pod}[/{uid}]/{container}: what
// `kubectl exec` reaches through the apiserver's pods/exec.
func (a *agent) serveExec(w http.ResponseWriter, r *http.Request) {
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		http.Error(w, "you must specify a command", http.StatusBadRequest)
		return
	}
	t, ok := a.streamTarget(w, r)
	if !ok {
		return
	}
	remotecommand.ServeExec(w, r, t.exec, t.pod.Name, string(t.pod.UID), t.container, cmd, t.opts,
		streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// streamTarget is what exec and attach read from a request: the stream
// options, the pod, the container and its running instance. It answers the
// request with the error and returns false when one of them is missing.
func (a *agent) streamTarget(w http.ResponseWriter, r *http.Request) (target streamTarget, ok bool) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return target, false
	}
	pod, rec, err := a.streamPod(r)
	if err != nil {
		writeRequestError(w, err)
		return target, false
	}
	container := r.PathValue("container")
	inst, rt, err := a.runningInstance(pod, rec, container)
	if err != nil {
		writeRequestError(w, err)
		return target, false
	}
	return streamTarget{opts: opts, pod: pod, container: container, exec: containerExec{rt: rt, inst: inst}}, true
}

type streamTarget struct {
	opts      *remotecommand.Options
	pod       *v1.Pod
	container string
	exec      containerExec
}

// containerExec runs a command in one instance through its runtime's
// ExecStream (the path exec probes and hooks take too), or attaches to it.
type containerExec struct {
	rt   runtime.Runtime
	inst runtime.Instance
}

func (e containerExec) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser,
	tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	opts := runtime.ExecOptions{Argv: cmd, TTY: tty}
	if in != nil {
		opts.Stdin = in
	}
	if out != nil {
		opts.Stdout = out
	}
	if errw != nil {
		opts.Stderr = errw
	}
	if resize != nil {
		opts.Resize = translateResize(ctx, resize)
	}
	code, err := e.rt.ExecStream(ctx, e.inst, opts)
	if err != nil {
		if _, done := e.inst.Exited(); done {
			return errors.New("container is not running")
		}
		var se *runtime.StartError
		if !errors.As(err, &se) || !isExecFailure(se.Message) {
			return err
		}
		// The command could not start (not found, not executable): say
		// why on its stderr and end as a shell does, 127 or 126.
		msg := se.Message + "\n"
		switch {
		case !tty && opts.Stderr != nil:
			_, _ = io.WriteString(opts.Stderr, msg)
		case opts.Stdout != nil:
			_, _ = io.WriteString(opts.Stdout, strings.ReplaceAll(msg, "\n", "\r\n"))
		}
		code = startFailureCode(se.Message)
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// isExecFailure reports whether a start error is the command's own (runc's
// `exec: "x": ...`), not a failure to enter the container.
func isExecFailure(msg string) bool { return strings.HasPrefix(msg, `exec: "`) }

// startFailureCode is the exit code a shell gives a command that could not
// start: 127 when it does not exist, 126 when it cannot be executed.
func startFailureCode(msg string) int {
	m := strings.ToLower(msg)
	if strings.Contains(m, "not found") || strings.Contains(m, "no such file") {
		return 127
	}
	return 126
}

// translateResize turns the streaming library's resize events into the
// runtime's, until ctx ends or the events stop.
func translateResize(ctx context.Context, in <-chan remotecommand.TerminalSize) <-chan runtime.TerminalSize {
	out := make(chan runtime.TerminalSize, 1)
	go func() {
		defer close(out)
		for {
			select {
			case sz, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- runtime.TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// serveAttach serves /attach/{namespace}/{pod}[/{uid}]/{container}: what
// `kubectl attach` and `kubectl run -it` reach through pods/attach.
func (a *agent) serveAttach(w http.ResponseWriter, r *http.Request) {
	t, ok := a.streamTarget(w, r)
	if !ok {
		return
	}
	remotecommand.ServeAttach(w, r, t.exec, t.pod.Name, string(t.pod.UID), t.container, t.opts,
		streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// AttachContainer connects the client's streams to the instance's stdio.
func (e containerExec) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser,
	_ bool, resize <-chan remotecommand.TerminalSize) error {
	var opts runtime.AttachOptions
	if in != nil {
		opts.Stdin = in
	}
	if out != nil {
		opts.Stdout = out
	}
	if errw != nil {
		opts.Stderr = errw
	}
	if resize != nil {
		opts.Resize = translateResize(ctx, resize)
	}
	return e.rt.Attach(ctx, e.inst, opts)
}

// serveRun serves POST /run/{namespace}/{pod}[/{uid}]/{container}?cmd=...:
// the command's combined output, or 500 when it fails.
func (a *agent) serveRun(w http.ResponseWriter, r *http.Request) {
	pod, rec, err := a.streamPod(r)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	container := r.PathValue("container")
	inst, rt, err := a.runningInstance(pod, rec, container)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	cmd := strings.Fields(r.URL.Query().Get("cmd"))
	if len(cmd) == 0 {
		http.Error(w, "you must specify a command (cmd)", http.StatusBadRequest)
		return
	}
	var out bytes.Buffer
	code, err := rt.ExecStream(r.Context(), inst, runtime.ExecOptions{Argv: cmd, Stdout: &out, Stderr: &out})
	if err != nil {
		http.Error(w, fmt.Sprintf("command '%s' failed: %v", strings.Join(cmd, " "), err), http.StatusInternalServerError)
		return
	}
	if code != 0 {
		http.Error(w, fmt.Sprintf("command '%s' exited with %d: %s", strings.Join(cmd, " "), code, out.String()), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(out.Bytes())
}

// servePortForward serves /portForward/{namespace}/{pod}[/{uid}]: what
// `kubectl port-forward` reaches through the apiserver's pods/portforward.
func (a *agent) servePortForward(w http.ResponseWriter, r *http.Request) {
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, rec, err := a.streamPod(r)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	portforward.ServePortForward(w, r, podForwarder{rec: rec, pod: pod}, pod.Name, string(pod.UID), opts,
		streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// podForwarder connects forwarded streams to ports in a pod's network
// namespace.
type podForwarder struct {
	rec *podRecord
	pod *v1.Pod
}

func (f podForwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	if port < 1 || port > 65535 {
		return fmt.Errorf("invalid port %d", port)
	}
	netns, err := f.netNS()
	if err != nil {
		return err
	}
	conn, err := dialInNetNS(ctx, netns, int(port))
	if err != nil {
		return err
	}
	defer conn.Close()
	return pipe(ctx, stream, conn)
}

// netNS names the network namespace of the pod: that of one of its
// running processes (every container of a pod shares it). "" is this
// process's own, for host-network pods and plain host processes.
func (f podForwarder) netNS() (string, error) {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	sawSim := false
	for _, inst := range f.rec.instances {
		if _, done := inst.Exited(); done {
			continue
		}
		p, ok := inst.(interface{ Pid() int })
		if !ok || p.Pid() <= 0 {
			sawSim = sawSim || runtime.KindOf(inst.ID()) == runtime.KindSim
			continue
		}
		return fmt.Sprintf("/proc/%d/ns/net", p.Pid()), nil
	}
	if sawSim {
		return "", fmt.Errorf("pod %q runs no process (its containers are simulated): nothing listens in it", f.pod.Name)
	}
	return "", fmt.Errorf("pod %q has no running container", f.pod.Name)
}

// halfCloser is a connection whose sending side closes on its own.
type halfCloser interface{ CloseWrite() error }

// pipe copies both ways between the client's stream and the pod's
// connection. The client's end of input half-closes the connection, so
// the server in the pod sees EOF and can still answer; the copy ends when
// the pod's side has ended (or, a second after one side is done, anyway).
func pipe(ctx context.Context, stream io.ReadWriteCloser, conn io.ReadWriteCloser) error {
	toPod := make(chan error, 1)
	fromPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		if hc, ok := conn.(halfCloser); ok {
			_ = hc.CloseWrite()
		}
		toPod <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		fromPod <- err
	}()
	select {
	case err := <-fromPod:
		return err
	case err := <-toPod:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-fromPod:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
