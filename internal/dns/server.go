package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

const (
	// DefaultClusterDomain is the cluster domain when Config leaves it empty.
	DefaultClusterDomain = "cluster.local"
	// DefaultAddress listens on a free loopback port.
	DefaultAddress = "127.0.0.1:0"
	// DefaultTTL is the TTL of every record, in seconds.
	DefaultTTL = 5
	// maxUDPSize is the largest UDP response this server sends, and the EDNS
	// buffer size it advertises.
	maxUDPSize = 4096
	// forwardTimeout bounds one exchange with one upstream server.
	forwardTimeout = 2 * time.Second
)

// Config is what the control plane gives the DNS server.
type Config struct {
	// Client needs list and watch on services, namespaces and
	// discovery.k8s.io endpointslices.
	Client kubernetes.Interface
	// Address is host:port for both UDP and TCP; port 0 picks a free port
	// that is free for both. Empty means 127.0.0.1:0.
	Address string
	// ClusterDomain is the zone answered; empty means cluster.local.
	ClusterDomain string
	// Upstream are servers ("host" or "host:port") that names outside the
	// cluster domain, and reverse names of addresses the cluster does not
	// know, are forwarded to, tried in order. Without upstreams such names
	// are answered REFUSED (forward names) or NXDOMAIN (reverse names).
	Upstream []string
	// TTL of every answer in seconds; 0 means DefaultTTL (5).
	TTL uint32
}

// Server is a running cluster DNS server.
type Server struct {
	addr      string
	resolver  *resolver
	upstreams []string
	udp, tcp  *dns.Server

	done chan struct{}
	mu   sync.Mutex
	err  error
}

// Start validates cfg, listens on UDP and TCP, fills its caches from the
// apiserver and serves until ctx is done. It returns once it is listening with
// synced caches, or an error if it cannot.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("dns: Config.Client is required")
	}
	zone, err := normalizeZone(cfg.ClusterDomain)
	if err != nil {
		return nil, err
	}
	upstreams, err := normalizeUpstreams(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	address := cfg.Address
	if address == "" {
		address = DefaultAddress
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	logger := klog.FromContext(ctx).WithName("dns")
	ctx = klog.NewContext(ctx, logger)

	pc, ln, err := listen(address)
	if err != nil {
		return nil, err
	}
	closeListeners := func() {
		_ = pc.Close()
		_ = ln.Close()
	}

	ix := newIndex(zone, uint32(time.Now().Unix()))
	factory := newFactory(cfg.Client)
	synced, err := watch(ctx, factory, ix)
	if err != nil {
		closeListeners()
		return nil, fmt.Errorf("dns: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		closeListeners()
		factory.Shutdown()
		return nil, errNotSynced(ctx)
	}

	s := &Server{
		addr:      ln.Addr().String(),
		resolver:  &resolver{ix: ix, ttl: ttl},
		upstreams: upstreams,
		done:      make(chan struct{}),
	}
	if err := s.serve(ctx, pc, ln, factory.Shutdown); err != nil {
		return nil, fmt.Errorf("dns: serve: %w", err)
	}
	logger.Info("Cluster DNS listening", "address", s.addr, "zone", strings.TrimSuffix(zone, "."), "upstreams", upstreams)
	return s, nil
}

// serve answers on pc (UDP) and ln (TCP) until ctx ends or the server
// fails, then calls stopped. It returns once both are serving, or with why
// one could not.
func (s *Server) serve(ctx context.Context, pc net.PacketConn, ln net.Listener, stopped func()) error {
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS), UDPSize: maxUDPSize}
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serveDNS)}
	var wg sync.WaitGroup
	var up []chan struct{}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		var once sync.Once
		srv.NotifyStartedFunc = func() { once.Do(func() { close(started) }) }
		up = append(up, started)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				s.fail(err)
			}
			once.Do(func() { close(started) }) // serving ended before it started
		}()
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
		wg.Wait()
		stopped()
		s.fail(nil)
	}()
	for _, started := range up {
		<-started
	}
	return s.failed()
}

// Addr is the bound address, "127.0.0.1:PORT", for UDP and TCP alike.
func (s *Server) Addr() string { return s.addr }

// Done is closed when the server has stopped: its context ended or serving
// failed. Err then says why.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is the error that stopped the server, or nil if it stopped because its
// context ended (or has not stopped).
func (s *Server) Err() error { return s.failed() }

// fail records the first error and closes done once.
func (s *Server) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	s.err = err
	close(s.done)
}

func (s *Server) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// listen binds UDP and TCP on one port. With port 0 it retries a few times if
// the port the kernel picked for UDP is taken for TCP.
func listen(address string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: address %q: %w", address, err)
	}
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", address)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen udp %s: %w", address, err)
		}
		bound := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(bound)))
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		if port != "0" || attempt >= 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("dns: listen tcp %s: %w", net.JoinHostPort(host, strconv.Itoa(bound)), err)
		}
	}
}

func normalizeZone(domain string) (string, error) {
	if domain == "" {
		domain = DefaultClusterDomain
	}
	zone := fqdn(strings.ToLower(domain))
	if zone == "." {
		return "", fmt.Errorf("dns: cluster domain %q: the root zone cannot be the cluster domain", domain)
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return "", fmt.Errorf("dns: cluster domain %q is not a domain name", domain)
	}
	return zone, nil
}

func normalizeUpstreams(in []string) ([]string, error) {
	var out []string
	for _, u := range in {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		host, port, err := net.SplitHostPort(u)
		if err != nil {
			host, port = strings.TrimSuffix(strings.TrimPrefix(u, "["), "]"), "53"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("dns: upstream %q: bad port %q", u, port)
		}
		if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
			return nil, fmt.Errorf("dns: upstream %q: %q is neither an IP address nor a host name", u, host)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// validHostname accepts letters, digits, '-' and '.' in non-empty labels.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !alnum && c != '-' {
				return false
			}
		}
	}
	return true
}

// serveDNS answers one query.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	udp := w.LocalAddr().Network() == "udp"
	resp := s.answer(req, udp)
	if resp == nil {
		return
	}
	_ = w.WriteMsg(resp)
}

// answer builds the response to req; udp selects truncation to the client's
// buffer size. It returns nil for messages that get no answer (responses).
func (s *Server) answer(req *dns.Msg, udp bool) *dns.Msg {
	if req.Response {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = len(s.upstreams) > 0
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return s.finish(req, m, udp)
	case len(req.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return s.finish(req, m, udp)
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return s.finish(req, m, udp)
	}

	res := s.resolver.resolve(q.Name, q.Qtype)
	if res.notOurs && len(s.upstreams) > 0 {
		if up := s.forward(req, udp); up != nil {
			up.Id = req.Id
			return up
		}
		m.Rcode = dns.RcodeServerFailure
		return s.finish(req, m, udp)
	}
	m.Authoritative = !res.notOurs
	m.Rcode = res.rcode
	m.Answer = res.answer
	m.Extra = res.extra
	if res.soa != "" {
		m.Ns = []dns.RR{s.resolver.soa(res.soa, res.soa)}
	}
	if res.chase != "" && len(s.upstreams) > 0 {
		s.chase(m, res.chase, q.Qtype, udp)
	}
	return s.finish(req, m, udp)
}

// finish adds EDNS and truncates UDP answers to what the client accepts.
func (s *Server) finish(req, m *dns.Msg, udp bool) *dns.Msg {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
		m.SetEdns0(maxUDPSize, false)
	}
	if udp {
		m.Truncate(min(max(size, dns.MinMsgSize), maxUDPSize))
	} else {
		m.Truncate(dns.MaxMsgSize)
	}
	return m
}

// forward asks the upstreams in order, over the transport the client used,
// and returns the first answer; nil if none answers.
func (s *Server) forward(req *dns.Msg, udp bool) *dns.Msg {
	network := "tcp"
	if udp {
		network = "udp"
	}
	c := &dns.Client{Net: network, Timeout: forwardTimeout, UDPSize: maxUDPSize}
	for _, u := range s.upstreams {
		resp, _, err := c.Exchange(req, u)
		if err == nil && resp != nil {
			return resp
		}
	}
	return nil
}

// chase appends the upstream records of an ExternalName target.
func (s *Server) chase(m *dns.Msg, target string, qtype uint16, udp bool) {
	q := new(dns.Msg)
	q.SetQuestion(target, qtype)
	q.RecursionDesired = true
	if resp := s.forward(q, udp); resp != nil && resp.Rcode == dns.RcodeSuccess {
		m.Answer = append(m.Answer, resp.Answer...)
	}
}
