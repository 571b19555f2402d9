// Package control is the local control channel of a running `quartet up`:
// an HTTP API on a unix socket in the data dir (mode 0600, so only the
// user who started quartet can use it), through which `quartet node add`
// and `quartet node remove` change the set of nodes while workloads run, and
// benchmarks take CPU and heap profiles of the process.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// NodeSpec is a node to add.
type NodeSpec struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Taints []corev1.Taint    `json:"taints,omitempty"`
}

// Nodes is what the channel needs from the node agents.
type Nodes interface {
	AddNode(ctx context.Context, spec NodeSpec) error
	RemoveNode(ctx context.Context, name string) error
	Nodes() []string
}

// ErrNotFound is returned by Nodes.RemoveNode for an unknown node.
var ErrNotFound = errors.New("no such node")

// ErrExists is returned by Nodes.AddNode for a node that already runs.
var ErrExists = errors.New("node already exists")

// Profiler records a CPU profile of the process, for benchmarks.
type Profiler interface {
	Start() error
	// Stop returns CPU seconds by component, as JSON-encodable data.
	Stop() (any, error)
}

// Serve listens on socket and serves the API until ctx is done.
func Serve(ctx context.Context, socket string, nodes Nodes, prof Profiler) (stopped <-chan error, err error) {
	os.Remove(socket) // a stale socket from a process that was killed; the data dir lock guards a live one
	l, err := net.Listen("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", socket, err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	srv := &http.Server{Handler: routes(nodes, prof), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		os.Remove(socket)
	}()
	return done, nil
}

// routes is the channel's API.
func routes(nodes Nodes, prof Profiler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nodes.Nodes())
	})
	mux.HandleFunc("POST /nodes", func(w http.ResponseWriter, r *http.Request) {
		var spec NodeSpec
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&spec); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
			return
		}
		if err := nodes.AddNode(r.Context(), spec); err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrExists):
				code = http.StatusConflict
			case isInvalid(err):
				code = http.StatusBadRequest
			}
			writeError(w, code, err)
			return
		}
		writeJSON(w, http.StatusCreated, spec)
	})
	mux.HandleFunc("DELETE /nodes/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := nodes.RemoveNode(r.Context(), r.PathValue("name")); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrNotFound) {
				code = http.StatusNotFound
			}
			writeError(w, code, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /debug/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		if err := prof.Start(); err != nil {
			writeError(w, http.StatusConflict, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /debug/cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		out, err := prof.Stop()
		if err != nil {
			writeError(w, http.StatusConflict, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /debug/cpu", func(w http.ResponseWriter, r *http.Request) {
		// A whole CPU profile (pprof's format) of the next ?seconds=N.
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs < 1 || secs > 600 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("seconds=%q: want a number of seconds from 1 to 600", r.URL.Query().Get("seconds")))
			return
		}
		var buf bytes.Buffer
		if err := pprof.StartCPUProfile(&buf); err != nil {
			writeError(w, http.StatusConflict, err)
			return
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(buf.Bytes()) // the client went away: nothing to do
	})
	mux.HandleFunc("GET /debug/heap", func(w http.ResponseWriter, r *http.Request) {
		// What is live, not what was allocated since the last cycle.
		runtime.GC()
		w.Header().Set("Content-Type", "application/octet-stream")
		_ = pprof.Lookup("heap").WriteTo(w, 0) // the client went away: nothing to do
	})
	return mux
}

// InvalidError marks a request the caller got wrong.
type InvalidError struct{ Err error }

func (e InvalidError) Error() string { return e.Err.Error() }
func (e InvalidError) Unwrap() error { return e.Err }

func isInvalid(err error) bool {
	var ie InvalidError
	return errors.As(err, &ie)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// Client talks to a running quartet through its socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the socket; it fails with a clear message
// when no quartet is running there.
func NewClient(socket string) (*Client, error) {
	if _, err := os.Stat(socket); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%s: permission denied (the data dir belongs to the user who runs `quartet up`)", socket)
		}
		return nil, fmt.Errorf("no running quartet: %s does not exist (is `quartet up` running with this --data-dir?)", socket)
	}
	return &Client{socket: socket, http: &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}}, nil
}

// AddNode asks quartet to add a node and returns once it is Ready.
func (c *Client) AddNode(ctx context.Context, spec NodeSpec) error {
	b, _ := json.Marshal(spec)
	return c.do(ctx, http.MethodPost, "/nodes", string(b), nil)
}

// RemoveNode asks quartet to stop a node's agent and delete the Node.
func (c *Client) RemoveNode(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/nodes/"+name, "", nil)
}

// StartCPUProfile starts a CPU profile of the quartet process.
func (c *Client) StartCPUProfile(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/debug/cpu/start", "", nil)
}

// StopCPUProfile stops it and decodes the CPU seconds by component into out.
func (c *Client) StopCPUProfile(ctx context.Context, out any) error {
	return c.do(ctx, http.MethodPost, "/debug/cpu/stop", "", out)
}

// HeapProfile returns a heap profile of the quartet process (pprof's
// protocol buffer format), taken right after a garbage collection.
func (c *Client) HeapProfile(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://quartet/debug/heap", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("heap profile: %s: %s", resp.Status, b)
	}
	return b, nil
}

// Nodes lists the nodes quartet's agents run.
func (c *Client) Nodes(ctx context.Context) ([]string, error) {
	var out []string
	err := c.do(ctx, http.MethodGet, "/nodes", "", &out)
	return out, err
}

func (c *Client) do(ctx context.Context, method, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://quartet"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s: permission denied (the control socket belongs to the user who runs `quartet up`)", c.socket)
	}
	if err != nil {
		return fmt.Errorf("talking to quartet at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e) // no JSON body: the status says it
		if e.Error == "" {
			e.Error = resp.Status
		}
		return errors.New(e.Error)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}
