package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Config says what to serve and where.
type Config struct {
	// Client reads the cluster; it needs get, list and watch on what the
	// views draw (see ClusterRole).
	Client kubernetes.Interface
	// Address is a loopback host:port; "" takes a free port on 127.0.0.1.
	Address string
	// ControllerZone is the zone a CronJob without spec.timeZone is read
	// in: the CronJob controller's. Nil means this machine's.
	ControllerZone *time.Location
}

// Server is a running UI.
type Server struct {
	cfg   Config
	store *store
	auth  *auth
	srv   *http.Server
	addr  string
	done  chan struct{}
	mu    sync.Mutex
	err   error
}

// Views the API serves, by name.
var viewNames = []string{"statefulsets", "daemonsets", "jobs", "cronjobs", "cluster", "events"}

// clockViews change with the time alone, and are recomputed every tick.
var clockViews = map[string]bool{"cronjobs": true}

// Start lists the cluster, listens, and serves until ctx is done. It
// returns once the server accepts requests.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("ui: no cluster client")
	}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("ui address %q: %w", cfg.Address, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("ui address %q: the UI listens on a loopback address only", cfg.Address)
	}
	if cfg.ControllerZone == nil {
		cfg.ControllerZone = time.Local
	}
	l, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	s := &Server{cfg: cfg, store: newStore(cfg.Client), addr: l.Addr().String(), done: make(chan struct{})}
	_, port, _ := net.SplitHostPort(s.addr)
	s.auth = newAuth("quartet_ui_" + port)

	ctx, cancel := context.WithCancel(ctx)
	syncCtx, stopSync := context.WithTimeout(ctx, time.Minute)
	defer stopSync()
	if err := s.store.start(ctx, syncCtx); err != nil {
		cancel()
		s.store.shutdown()
		l.Close()
		return nil, fmt.Errorf("ui: %w", err)
	}
	s.srv = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		err := s.srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		cancel()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		s.store.shutdown()
		close(s.done)
	}()
	go func() {
		<-ctx.Done()
		sctx, stop := context.WithTimeout(context.Background(), 2*time.Second)
		defer stop()
		if err := s.srv.Shutdown(sctx); err != nil {
			_ = s.srv.Close() // streams are still open: end them
		}
	}()
	return s, nil
}

// Addr is the address the UI listens on.
func (s *Server) Addr() string { return s.addr }

// LoginURL mints a one-time login URL: opening it starts a browser
// session; opening it again is refused.
func (s *Server) LoginURL() string {
	return "http://" + s.addr + "/login?token=" + s.auth.newToken()
}

// Done is closed when the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is why the server stopped, nil when its context ended.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("GET /api/views/{view}", s.getView)
	mux.HandleFunc("GET /api/stream/{view}", s.stream)
	mux.HandleFunc("GET /api/yaml", s.yaml)
	mux.HandleFunc("GET /api/explain", s.explainObject)
	mux.Handle("GET /", s.assets())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !loopbackHost(r.Host) {
			http.Error(w, "quartet ui answers on a loopback address only", http.StatusMisdirectedRequest)
			return
		}
		if r.URL.Path != "/login" && !s.auth.valid(r) {
			s.refuse(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

const refusedPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>quartet ui: log in</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.5">
<h1>quartet ui: not logged in</h1>
<p>%s</p>
<p>Open the login URL that <code>quartet up</code> or <code>quartet ui</code> printed. Each login URL works once;
<code>quartet ui --kubeconfig FILE</code> prints a new one.</p></body></html>`

func (s *Server) refuse(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Path) >= 5 && r.URL.Path[:5] == "/api/" {
		http.Error(w, "not logged in: open the login URL quartet printed", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprintf(w, refusedPage, "This page needs a session, which a login URL starts.")
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	session, ok := s.auth.redeem(r.URL.Query().Get("token"))
	if !ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, refusedPage, "This login URL has been used already, or is not one this server made.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.auth.cookie, Value: session, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds()),
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// compute returns the named view's model for the request's parameters.
func (s *Server) compute(view string, q url.Values, now time.Time) (any, error) {
	snap := s.store.snapshot(now)
	ns, name := q.Get("namespace"), q.Get("name")
	switch view {
	case "statefulsets":
		return statefulSetsView(snap, ns, name), nil
	case "daemonsets":
		return daemonSetsView(snap), nil
	case "jobs":
		return jobsView(snap, ns, name), nil
	case "cronjobs":
		return cronJobsView(snap, ns, name, s.cfg.ControllerZone), nil
	case "cluster":
		return clusterView(snap, ns), nil
	case "events":
		return eventsView(snap, ns, q.Get("q")), nil
	}
	return nil, fmt.Errorf("no view %q (views: %v)", view, viewNames)
}

func (s *Server) getView(w http.ResponseWriter, r *http.Request) {
	v, err := s.compute(r.PathValue("view"), r.URL.Query(), time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v) // the client went away
}

// Stream pacing: a burst of watch events is drawn once, at most every
// minPush; a view that depends on the clock (the CronJob timeline) is
// redrawn every tick; a comment every keepAlive keeps an idle stream from
// being closed: by proxies, and by Firefox, which after a change in the
// machine's network (a pod's interface coming or going) closes every
// connection that sees no traffic for 5 s.
const (
	coalesce  = 15 * time.Millisecond
	minPush   = 100 * time.Millisecond
	tick      = 5 * time.Second
	keepAlive = 2 * time.Second
)

// stream sends the view's model as a server-sent event at once and again
// after every change that alters it.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	view, q := r.PathValue("view"), r.URL.Query()
	if _, err := s.compute(view, q, time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	logger := klog.FromContext(ctx)
	var last []byte
	var lastPush time.Time
	seq := 0
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	alive := time.NewTicker(keepAlive)
	defer alive.Stop()
	for {
		changed := s.store.wait()
		v, err := s.compute(view, q, time.Now())
		if err != nil {
			logger.Error(err, "ui view", "view", view)
			return
		}
		data, err := json.Marshal(v)
		if err != nil {
			logger.Error(err, "ui view", "view", view)
			return
		}
		if !bytes.Equal(data, last) {
			seq++
			if _, err := fmt.Fprintf(w, "id: %d\nevent: view\ndata: %s\n\n", seq, data); err != nil {
				return
			}
			flusher.Flush()
			last, lastPush = data, time.Now()
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				// Let the rest of a burst arrive, and pace the pushes.
				pause := max(coalesce, minPush-time.Since(lastPush))
				select {
				case <-ctx.Done():
					return
				case <-time.After(pause):
				}
				break wait
			case <-ticker.C:
				if clockViews[view] {
					break wait
				}
			case <-alive.C:
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
					return
				}
				flusher.Flush()
			}
		}
	}
}

// assets serves the built front end.
func (s *Server) assets() http.Handler {
	sub, err := fs.Sub(distFS, "dist")
	if err != nil {
		panic(err) // the embedded tree always has dist
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || r.URL.Path == "/index.html" {
			w.Header().Set("Cache-Control", "no-store")
		} else {
			w.Header().Set("Cache-Control", "private, max-age=3600")
		}
		files.ServeHTTP(w, r)
	})
}
