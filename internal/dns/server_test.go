package dns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

// eventually polls the in-process answer for name until check passes.
func eventually(t *testing.T, s *Server, name string, qtype uint16, what string, check func(*dns.Msg) bool) {
	t.Helper()
	var last *dns.Msg
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		last = ask(s, name, qtype)
		return check(last), nil
	})
	if err != nil {
		t.Fatalf("%s %s: %s never happened; last answer:\n%v", name, dns.TypeToString[qtype], what, last)
	}
}

func nxdomain(m *dns.Msg) bool { return m.Rcode == dns.RcodeNameError }

func answers(want ...string) func(*dns.Msg) bool {
	return func(m *dns.Msg) bool {
		var got []string
		for _, rr := range m.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				got = append(got, rr.A.String())
			case *dns.AAAA:
				got = append(got, rr.AAAA.String())
			}
		}
		return m.Rcode == dns.RcodeSuccess && cmp.Equal(want, got)
	}
}

func TestRecordsFollowTheCluster(t *testing.T) {
	ctx := context.Background()
	s, client := startServer(t, Config{}, namespace("default"), headlessService("default", "web", port("http", v1.ProtocolTCP, 80)))
	const web0, web1 = "web-0.web.default.svc.cluster.local.", "web-1.web.default.svc.cluster.local."

	if m := ask(s, web0, dns.TypeA); !nxdomain(m) {
		t.Fatalf("web-0 before its endpoint exists: %v", m)
	}
	sl := slice("default", "web", "web-xyz", discoveryv1.AddressTypeIPv4,
		[]discoveryv1.EndpointPort{slicePort("http", v1.ProtocolTCP, 80)},
		endpoint{"10.0.0.10", "web-0", yes}, endpoint{"10.0.0.11", "web-1", yes})
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, sl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, s, web1, dns.TypeA, "web-1 resolves", answers("10.0.0.11"))

	// web-1 is deleted: the EndpointSlice controller drops its endpoint.
	sl.Endpoints = sl.Endpoints[:1]
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, s, web1, dns.TypeA, "removed pod stops resolving", nxdomain)
	eventually(t, s, "10.0.0.11.in-addr.arpa.", dns.TypePTR, "its PTR goes", nxdomain)
	if m := ask(s, web0, dns.TypeA); !answers("10.0.0.10")(m) {
		t.Errorf("web-0 after web-1 left: %v", m)
	}

	// web-0 turns not ready (terminating): it stops resolving too.
	sl.Endpoints[0].Conditions.Ready = no
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, s, web0, dns.TypeA, "not-ready pod stops resolving", nxdomain)
	eventually(t, s, "web.default.svc.cluster.local.", dns.TypeA, "Service without ready endpoints is NXDOMAIN", nxdomain)

	// A Service turned from headless into... gone.
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sl.Endpoints[0].Conditions.Ready = yes
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, s, "_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, "deleted Service's SRV goes", nxdomain)
	if m := ask(s, web0, dns.TypeA); !nxdomain(m) {
		t.Errorf("endpoint of a deleted Service still resolves: %v", m)
	}

	// A new Service and namespace appear.
	if _, err := client.CoreV1().Namespaces().Create(ctx, namespace("shop"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services("shop").Create(ctx, clusterIPService("shop", "cart", []string{"10.96.1.1"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, s, "cart.shop.svc.cluster.local.", dns.TypeA, "new Service resolves", answers("10.96.1.1"))
	eventually(t, s, "10-1-1-1.shop.pod.cluster.local.", dns.TypeA, "new namespace's pod records", answers("10.1.1.1"))
	eventually(t, s, "1.1.96.10.in-addr.arpa.", dns.TypePTR, "new Service's PTR", func(m *dns.Msg) bool { return len(m.Answer) == 1 })
}

func TestServesUDPAndTCP(t *testing.T) {
	objs := clusterObjects()
	// A headless Service with 200 ready pods: its answer does not fit in a
	// 512-byte UDP response.
	objs = append(objs, headlessService("default", "big"))
	var many []endpoint
	for i := range 200 {
		many = append(many, endpoint{fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), fmt.Sprintf("big-%d", i), yes})
	}
	objs = append(objs, slice("default", "big", "big-1", discoveryv1.AddressTypeIPv4, nil, many...))
	s, _ := startServer(t, Config{}, objs...)

	host, _, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q", s.Addr())
	}
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c := &dns.Client{Net: network, Timeout: 5 * time.Second}
			q := new(dns.Msg)
			q.SetQuestion("web-0.web.default.svc.cluster.local.", dns.TypeA)
			m, _, err := c.Exchange(q, s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if !answers("10.0.0.10")(m) || !m.Authoritative {
				t.Errorf("web-0: %v", m)
			}
			q.SetQuestion("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV)
			if m, _, err = c.Exchange(q, s.Addr()); err != nil || len(m.Answer) != 2 {
				t.Errorf("SRV: %v %v", m, err)
			}
			q.SetQuestion("nosuch.default.svc.cluster.local.", dns.TypeA)
			if m, _, err = c.Exchange(q, s.Addr()); err != nil || m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
				t.Errorf("NXDOMAIN: %v %v", m, err)
			}

			q.SetQuestion("big.default.svc.cluster.local.", dns.TypeA)
			m, _, err = c.Exchange(q, s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if network == "udp" {
				m.Compress = true
				if !m.Truncated || m.Len() > dns.MinMsgSize {
					t.Errorf("UDP answer of %d records, %d bytes, truncated %v", len(m.Answer), m.Len(), m.Truncated)
				}
			} else if m.Truncated || len(m.Answer) != 200 {
				t.Errorf("TCP answer of %d records, truncated %v", len(m.Answer), m.Truncated)
			}
		})
	}
	t.Run("udp with EDNS", func(t *testing.T) {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, UDPSize: 4096}
		q := new(dns.Msg)
		q.SetQuestion("big.default.svc.cluster.local.", dns.TypeA)
		q.SetEdns0(4096, false)
		m, _, err := c.Exchange(q, s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if m.Truncated || len(m.Answer) != 200 || m.IsEdns0() == nil {
			t.Errorf("EDNS answer of %d records, truncated %v, OPT %v", len(m.Answer), m.Truncated, m.IsEdns0())
		}
	})
}

// fakeUpstream answers every A question with 192.0.2.1 and every PTR with
// host.example.; it stops with the test.
func fakeUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.1")})
		case dns.TypePTR:
			m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "host.example."})
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestForwardsToUpstream(t *testing.T) {
	up := fakeUpstream(t)
	s, _ := startServer(t, Config{Upstream: []string{"127.0.0.1:1", up}}, clusterObjects()...)
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	exchange := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		m, _, err := c.Exchange(q, s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	if m := exchange("www.example.com.", dns.TypeA); !answers("192.0.2.1")(m) {
		t.Errorf("forwarded name: %v", m)
	}
	if m := exchange("9.9.9.9.in-addr.arpa.", dns.TypePTR); len(m.Answer) != 1 || !strings.Contains(m.Answer[0].String(), "host.example.") {
		t.Errorf("forwarded reverse name: %v", m)
	}
	if m := exchange("20.0.96.10.in-addr.arpa.", dns.TypePTR); len(m.Answer) != 1 || !strings.Contains(m.Answer[0].String(), "api.default.svc.cluster.local.") {
		t.Errorf("cluster reverse name went upstream: %v", m)
	}
	if m := exchange("nosuch.default.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeNameError || !m.RecursionAvailable {
		t.Errorf("cluster name went upstream: %v", m)
	}
	m := exchange("ext.default.svc.cluster.local.", dns.TypeA)
	if len(m.Answer) != 2 || m.Answer[0].Header().Rrtype != dns.TypeCNAME || !strings.Contains(m.Answer[1].String(), "192.0.2.1") {
		t.Errorf("ExternalName chased upstream: %v", m)
	}
}

func TestStartValidatesConfig(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	for name, cfg := range map[string]Config{
		"no client":    {},
		"bad domain":   {Client: client, ClusterDomain: "bad..domain"},
		"root domain":  {Client: client, ClusterDomain: "."},
		"bad address":  {Client: client, Address: "localhost"},
		"bad upstream": {Client: client, Upstream: []string{"a:b:c"}},
		"bad port":     {Client: client, Upstream: []string{"8.8.8.8:dns"}},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := Start(ctx, cfg); err == nil {
				t.Errorf("Start accepted %+v (listening on %s)", cfg, s.Addr())
			}
		})
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	s, _ := startServer(t, Config{}, namespace("default"))
	if other, err := Start(context.Background(), Config{Client: fake.NewClientset(), Address: s.Addr()}); err == nil {
		t.Errorf("second server on %s started at %s", s.Addr(), other.Addr())
	}
}

func TestCustomDomainAndTTL(t *testing.T) {
	s, _ := startServer(t, Config{ClusterDomain: "Corp.Example.", TTL: 30}, namespace("default"),
		clusterIPService("default", "api", []string{"10.96.0.20"}))
	m := ask(s, "api.default.svc.corp.example.", dns.TypeA)
	if !answers("10.96.0.20")(m) || m.Answer[0].Header().Ttl != 30 {
		t.Errorf("custom domain: %v", m)
	}
	if m := ask(s, "api.default.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeRefused {
		t.Errorf("cluster.local under another domain: %v", m)
	}
}

func TestNormalizeUpstreams(t *testing.T) {
	got, err := normalizeUpstreams([]string{"8.8.8.8", " 1.1.1.1:5353 ", "", "::1", "[fd00::1]:53", "dns.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"8.8.8.8:53", "1.1.1.1:5353", "[::1]:53", "[fd00::1]:53", "dns.example.com:53"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
