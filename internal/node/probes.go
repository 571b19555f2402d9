package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"quartet.dev/quartet/internal/node/runtime"
)

type probeKind string

const (
	probeReadiness probeKind = "Readiness"
	probeLiveness  probeKind = "Liveness"
	probeStartup   probeKind = "Startup"
)

// probeResults are the verdicts of one instance's probes, read by observe.
type probeResults struct {
	id             string
	started        bool
	ready          bool
	livenessFailed bool
	startupFailed  bool
}

type probeSet struct{ cancel context.CancelFunc }

func (p *probeSet) stop() { p.cancel() }

// probeCounter turns probe outcomes into a verdict with the probe's
// thresholds: successThreshold successes in a row make it succeed,
// failureThreshold failures in a row make it fail.
type probeCounter struct {
	successThreshold int32
	failureThreshold int32
	verdict          bool
	successes        int32
	failures         int32
}

func newProbeCounter(p *v1.Probe, initial bool) probeCounter {
	c := probeCounter{successThreshold: p.SuccessThreshold, failureThreshold: p.FailureThreshold, verdict: initial}
	if c.successThreshold < 1 {
		c.successThreshold = 1
	}
	if c.failureThreshold < 1 {
		c.failureThreshold = 3
	}
	return c
}

// observe records one outcome and reports whether the verdict changed.
func (c *probeCounter) observe(ok bool) bool {
	if ok {
		c.successes++
		c.failures = 0
		if !c.verdict && c.successes >= c.successThreshold {
			c.verdict = true
			return true
		}
		return false
	}
	c.failures++
	c.successes = 0
	if c.verdict && c.failures >= c.failureThreshold {
		c.verdict = false
		return true
	}
	return false
}

// startProbes starts the probes of a process instance; each runs in its own
// goroutine until the instance ends or its verdict ends the instance.
func (h *Host) startProbes(rec *podRecord, pod *v1.Pod, c *v1.Container, inst runtime.Instance) {
	res := &probeResults{id: inst.ID(), started: c.StartupProbe == nil, ready: c.ReadinessProbe == nil}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.results[c.Name] = res
	if old := rec.probers[c.Name]; old != nil {
		old.stop()
		delete(rec.probers, c.Name)
	}
	if c.StartupProbe == nil && c.ReadinessProbe == nil && c.LivenessProbe == nil {
		return
	}
	h.mu.Lock()
	parent := h.runCtx
	h.mu.Unlock()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	rec.probers[c.Name] = &probeSet{cancel: cancel}
	for _, p := range []struct {
		kind  probeKind
		probe *v1.Probe
	}{{probeStartup, c.StartupProbe}, {probeReadiness, c.ReadinessProbe}, {probeLiveness, c.LivenessProbe}} {
		if p.probe != nil {
			go h.runProbe(ctx, rec, pod, c, inst, res, p.kind, p.probe)
		}
	}
}

func (h *Host) runProbe(ctx context.Context, rec *podRecord, pod *v1.Pod, c *v1.Container, inst runtime.Instance, res *probeResults, kind probeKind, probe *v1.Probe) {
	initial := kind == probeLiveness // liveness starts healthy, the others not yet
	counter := newProbeCounter(probe, initial)
	period := time.Duration(probe.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	timeout := time.Duration(probe.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	if d := inst.StartedAt().Add(time.Duration(probe.InitialDelaySeconds) * time.Second).Sub(h.clock.Now()); d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-h.clock.After(d):
		}
	}
	ticker := h.clock.NewTicker(period)
	defer ticker.Stop()
	for {
		rec.mu.Lock()
		started := res.started
		rec.mu.Unlock()
		switch {
		case kind == probeStartup && started:
			return
		case kind != probeStartup && !started:
			// Readiness and liveness wait for the startup probe.
		default:
			ok, msg := h.probeOnce(ctx, rec, pod, c, inst, probe, timeout)
			if ctx.Err() != nil {
				return
			}
			if !ok {
				h.podEventLocked(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: reasonUnhealthy,
					Message: fmt.Sprintf("%s probe failed: %s", kind, msg)})
			}
			if counter.observe(ok) {
				rec.mu.Lock()
				switch kind {
				case probeReadiness:
					res.ready = counter.verdict
				case probeLiveness:
					res.livenessFailed = !counter.verdict
				case probeStartup:
					if counter.verdict {
						res.started = true
					}
				}
				rec.mu.Unlock()
				rec.worker.wake()
				if kind == probeLiveness && !counter.verdict {
					return
				}
			}
			if kind == probeStartup && !ok && counter.failures >= counter.failureThreshold {
				rec.mu.Lock()
				res.startupFailed = true
				rec.mu.Unlock()
				rec.worker.wake()
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// podEventLocked emits an event from a goroutine other than the sync
// worker (no one-shot keys there).
func (h *Host) podEventLocked(rec *podRecord, pod *v1.Pod, e plannedEvent) {
	ref := &v1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	if e.Container != "" {
		ref.FieldPath = fieldPath(pod, e.Container)
	}
	rec.agent.recorder.Event(ref, e.Type, e.Reason, e.Message)
}

// probeOnce runs a probe once. Network probes without a host go to the pod's
// IP when it has a network of its own, else to 127.0.0.1 (a pod on the
// host's network).
func (h *Host) probeOnce(ctx context.Context, rec *podRecord, pod *v1.Pod, c *v1.Container, inst runtime.Instance, p *v1.Probe, timeout time.Duration) (bool, string) {
	switch {
	case p.Exec != nil:
		code, out, err := h.exec(ctx, inst, p.Exec.Command, timeout)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			msg := strings.TrimSpace(string(out))
			if msg == "" {
				msg = fmt.Sprintf("command %q exited with %d", strings.Join(p.Exec.Command, " "), code)
			}
			return false, msg
		}
		return true, ""
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := resolvePort(g.Port, c)
		if err != nil {
			return false, err.Error()
		}
		host := g.Host
		if host == "" {
			host = rec.probeHost()
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
		if pu, err := url.Parse(path); err == nil {
			u.Path, u.RawQuery = pu.Path, pu.RawQuery
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "kube-probe/1.37")
		for _, hh := range g.HTTPHeaders {
			if strings.EqualFold(hh.Name, "host") {
				req.Host = hh.Value
			} else {
				req.Header.Add(hh.Name, hh.Value)
			}
		}
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, like the kubelet's
			DisableKeepAlives: true,
		}}
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return true, ""
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return false, err.Error()
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = rec.probeHost()
		}
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case p.GRPC != nil:
		h.podEventLocked(rec, pod, plannedEvent{Container: c.Name, Type: v1.EventTypeWarning, Reason: "ProbeWarning",
			Message: "gRPC probes are not run by quartet's node agent; the probe counts as passing"})
		return true, ""
	}
	return false, "probe has no handler"
}

func resolvePort(port intstr.IntOrString, c *v1.Container) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %s in %s", port.StrVal, c.Name)
}

// exec runs argv beside a running instance through its runtime's
// ExecStream, as exec probes and hooks do: combined output (the first 10
// KiB, as the kubelet keeps), killed after timeout.
func (h *Host) exec(ctx context.Context, inst runtime.Instance, argv []string, timeout time.Duration) (int, []byte, error) {
	rt, err := h.runtimeFor(inst)
	if err != nil {
		return -1, nil, err
	}
	if timeout <= 0 {
		timeout = time.Second
	}
	ectx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out limitedBuffer
	code, err := rt.ExecStream(ectx, inst, runtime.ExecOptions{Argv: argv, Stdout: &out, Stderr: &out})
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return -1, out.Bytes(), fmt.Errorf("command timed out after %s", timeout)
	}
	return code, out.Bytes(), err
}

// limitedBuffer keeps the first 10 KiB written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 10*1024 - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
