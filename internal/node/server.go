package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"quartet.dev/quartet/internal/node/logs"
)

// kubeletAPI routes the kubelet API's paths (after authorization).
func (a *agent) kubeletAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", a.containerLogs)
	for _, p := range []string{"/{namespace}/{pod}/{container}", "/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc("GET /exec"+p, a.serveExec)
		mux.HandleFunc("POST /exec"+p, a.serveExec)
		mux.HandleFunc("GET /attach"+p, a.serveAttach)
		mux.HandleFunc("POST /attach"+p, a.serveAttach)
		mux.HandleFunc("POST /run"+p, a.serveRun)
	}
	for _, p := range []string{"/{namespace}/{pod}", "/{namespace}/{pod}/{uid}"} {
		mux.HandleFunc("GET /portForward"+p, a.servePortForward)
		mux.HandleFunc("POST /portForward"+p, a.servePortForward)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return mux
}

// tlsCertCache holds a node's serving certificate until it nears expiry.
type tlsCertCache struct {
	mu      sync.Mutex
	cert    *tls.Certificate
	refresh time.Time
}

func (a *agent) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := a.cert
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.cert != nil && now.Before(c.refresh) {
		return c.cert, nil
	}
	cert, err := a.host.cfg.ServingCert(a.name)
	if err != nil {
		return nil, err
	}
	c.cert, c.refresh = cert, now.Add(24*time.Hour)
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf != nil {
		// Ask again when four fifths of its life have passed.
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		c.refresh = leaf.NotBefore.Add(life * 4 / 5)
	}
	return cert, nil
}

// newKubeletServer serves the part of the kubelet API quartet implements:
// containerLogs, exec, attach, run and portForward (what `kubectl logs`,
// `exec`, `attach`, `cp` and `port-forward` reach through the apiserver) and
// healthz. Every request is authenticated and authorized as a kubelet does
// it (see kubeletAuth).
func newKubeletServer(a *agent) (*http.Server, error) {
	auth, err := newKubeletAuth(a.nodeClient(), a.host.cfg.ClientCAs, a.host.cfg.ClientNames)
	if err != nil {
		return nil, err
	}
	return &http.Server{
		Handler: auth.filter(a.name, a.kubeletAPI()),
		TLSConfig: &tls.Config{
			GetCertificate: a.certificate,
			// A certificate is checked when given; requests without one
			// may carry a bearer token, or get 401.
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  a.host.cfg.ClientCAs,
			MinVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}, nil
}

type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (f *flushWriter) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f *flushWriter) Flush() {
	if f.f != nil {
		f.f.Flush()
	}
}

func queryBool(q map[string][]string, key string) bool {
	v := ""
	if vs := q[key]; len(vs) > 0 {
		v = vs[0]
	}
	return v == "true" || v == "1"
}

// containerLogs serves GET /containerLogs/{namespace}/{pod}/{container}.
func (a *agent) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	q := r.URL.Query()
	if tail := q.Get("tail"); tail != "" && q.Get("tailLines") == "" && tail != "all" {
		q.Set("tailLines", tail)
	}
	var opts logs.Options
	var err error
	opts.Follow = queryBool(q, "follow")
	opts.Timestamps = queryBool(q, "timestamps")
	previous := queryBool(q, "previous")
	if opts.TailLines, err = logs.ParseInt64(q.Get("tailLines")); err != nil {
		http.Error(w, `{"message": "Unable to decode query."}`, http.StatusBadRequest)
		return
	}
	if opts.LimitBytes, err = logs.ParseInt64(q.Get("limitBytes")); err != nil {
		http.Error(w, `{"message": "Unable to decode query."}`, http.StatusBadRequest)
		return
	}
	if s := q.Get("sinceSeconds"); s != "" {
		secs, err := logs.ParseInt64(s)
		if err != nil || *secs < 1 {
			http.Error(w, `{"message": "Invalid request."}`, http.StatusUnprocessableEntity)
			return
		}
		t := time.Now().Add(-time.Duration(*secs) * time.Second)
		opts.Since = &t
	} else if s := q.Get("sinceTime"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			http.Error(w, `{"message": "Unable to decode query."}`, http.StatusBadRequest)
			return
		}
		opts.Since = &t
	}
	opts.Stream = q.Get("stream")

	obj, exists, _ := a.host.podInformer.GetIndexer().GetByKey(ns + "/" + name)
	pod, _ := obj.(*v1.Pod)
	if !exists || pod == nil || pod.Spec.NodeName != a.name {
		http.Error(w, fmt.Sprintf("pod %q does not exist", name), http.StatusNotFound)
		return
	}
	if findContainer(pod, container) == nil {
		http.Error(w, fmt.Sprintf("container %q not found in pod %q", container, name), http.StatusNotFound)
		return
	}
	rec := a.host.record(pod.UID)
	status := &pod.Status
	if rec != nil {
		rec.mu.Lock()
		if rec.served != nil {
			status = rec.served
		}
		rec.mu.Unlock()
	}
	id, err := logContainerID(status, container, name, previous)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	out := &flushWriter{w: w}
	out.f, _ = w.(http.Flusher)

	if strings.HasPrefix(id, "sim://") {
		_ = logs.WriteRecords(out, simLogRecords(pod, status, container, id), opts)
		return
	}
	if rec == nil {
		http.Error(w, fmt.Sprintf("log of container %q in pod %q is not on this node", container, name), http.StatusNotFound)
		return
	}
	path := rec.logPath(container, id)
	if _, err := os.Stat(path); err != nil {
		http.Error(w, fmt.Sprintf("log of container %q in pod %q is gone: %v", container, name, err), http.StatusNotFound)
		return
	}
	finished := func() bool {
		rec.mu.Lock()
		inst := rec.instances[container]
		rec.mu.Unlock()
		if inst == nil || inst.ID() != id {
			return true
		}
		_, done := inst.Exited()
		return done
	}
	_ = logs.Serve(r.Context(), out, path, opts, finished, 100*time.Millisecond)
}

// logContainerID picks the instance whose log is asked for, with the
// kubelet's messages when there is none.
func logContainerID(status *v1.PodStatus, container, podName string, previous bool) (string, error) {
	var cs *v1.ContainerStatus
	for _, list := range [][]v1.ContainerStatus{status.InitContainerStatuses, status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == container {
				cs = &list[i]
			}
		}
	}
	if cs == nil {
		return "", fmt.Errorf("container %q in pod %q is not available", container, podName)
	}
	last := cs.LastTerminationState.Terminated
	switch {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, podName)
		}
		return last.ContainerID, nil
	case cs.State.Running != nil:
		return cs.ContainerID, nil
	case cs.State.Terminated != nil:
		if id := cs.State.Terminated.ContainerID; id != "" {
			return id, nil
		}
		if last != nil && last.ContainerID != "" {
			return last.ContainerID, nil
		}
		return "", fmt.Errorf("container %q in pod %q is terminated", container, podName)
	case last != nil:
		if last.ContainerID == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", container, podName)
		}
		return last.ContainerID, nil
	case cs.State.Waiting != nil:
		return "", fmt.Errorf("container %q in pod %q is waiting to start: %s", container, podName, cs.State.Waiting.Reason)
	}
	return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", container, podName)
}

// simLogRecords is the log of a simulated container: a line when it started
// and one when it ended, so that `kubectl logs` says what happened.
func simLogRecords(pod *v1.Pod, status *v1.PodStatus, container, id string) []logs.Record {
	var image string
	if c := findContainer(pod, container); c != nil {
		image = c.Image
	}
	var started, finished time.Time
	code := int32(-1)
	for _, list := range [][]v1.ContainerStatus{status.InitContainerStatuses, status.ContainerStatuses} {
		for _, cs := range list {
			if cs.Name != container {
				continue
			}
			for _, st := range []v1.ContainerState{cs.State, cs.LastTerminationState} {
				switch {
				case st.Running != nil && cs.ContainerID == id:
					started = st.Running.StartedAt.Time
				case st.Terminated != nil && st.Terminated.ContainerID == id:
					started, finished, code = st.Terminated.StartedAt.Time, st.Terminated.FinishedAt.Time, st.Terminated.ExitCode
				}
			}
		}
	}
	recs := []logs.Record{{Time: started, Stream: logs.Stdout,
		Line: []byte(fmt.Sprintf("quartet: container %q (image %q) is simulated; no process runs", container, image))}}
	if code >= 0 {
		recs = append(recs, logs.Record{Time: finished, Stream: logs.Stdout,
			Line: []byte(fmt.Sprintf("quartet: simulated container %q exited with code %d", container, code))})
	}
	return recs
}

// tailLogText returns the last lines of a CRI log's content, at most
// maxBytes, as plain text.
func tailLogText(data []byte, lines, maxBytes int) string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		rec, err := logs.ParseRecord([]byte(l))
		if err != nil {
			continue
		}
		out = append(out, string(rec.Line))
	}
	if len(out) > lines {
		out = out[len(out)-lines:]
	}
	s := strings.Join(out, "\n")
	if len(s) > maxBytes {
		s = s[len(s)-maxBytes:]
	}
	return s
}
