package dns

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// benchCluster is 1,000 ClusterIP Services and one headless Service with
// three pods, across ten namespaces.
func benchCluster() []runtime.Object {
	var objs []runtime.Object
	for n := range 10 {
		objs = append(objs, namespace(fmt.Sprintf("ns-%d", n)))
	}
	for i := range 1000 {
		objs = append(objs, clusterIPService(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("svc-%d", i),
			[]string{fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)}, port("http", v1.ProtocolTCP, 80)))
	}
	objs = append(objs, namespace("default"), headlessService("default", "web", port("http", v1.ProtocolTCP, 80)),
		slice("default", "web", "web-1", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{slicePort("http", v1.ProtocolTCP, 80)},
			endpoint{"10.0.0.10", "web-0", yes}, endpoint{"10.0.0.11", "web-1", yes}, endpoint{"10.0.0.12", "web-2", yes}))
	return objs
}

var benchQuestions = []dns.Question{
	{Name: "web-0.web.default.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
	{Name: "svc-517.ns-7.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
	{Name: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
	{Name: "_http._tcp.web.default.svc.cluster.local.", Qtype: dns.TypeSRV, Qclass: dns.ClassINET},
	{Name: "nosuch.default.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
	{Name: "11.0.0.10.in-addr.arpa.", Qtype: dns.TypePTR, Qclass: dns.ClassINET},
}

// BenchmarkQueryUDP is one client asking one question at a time over one UDP
// socket, as a stub resolver does. It reports the median and 99th percentile
// round trip and the queries per second that one client achieves.
func BenchmarkQueryUDP(b *testing.B) {
	s, _ := startServer(b, Config{}, benchCluster()...)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	conn, err := c.Dial(s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	q := new(dns.Msg)
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		q.Id = dns.Id()
		q.Question = []dns.Question{benchQuestions[i%len(benchQuestions)]}
		t0 := time.Now()
		m, _, err := c.ExchangeWithConn(q, conn)
		durations = append(durations, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
			b.Fatalf("rcode %s", dns.RcodeToString[m.Rcode])
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds()), "µs-median")
	b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds()), "µs-p99")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "queries/s")
}

// BenchmarkQueryUDPParallel is one client process with several sockets in
// flight at once (GOMAXPROCS goroutines by default; -cpu sets it).
func BenchmarkQueryUDPParallel(b *testing.B) {
	s, _ := startServer(b, Config{}, benchCluster()...)
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		conn, err := c.Dial(s.Addr())
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		q := new(dns.Msg)
		for pb.Next() {
			i := next.Add(1)
			q.Id = dns.Id()
			q.Question = []dns.Question{benchQuestions[int(i)%len(benchQuestions)]}
			if _, _, err := c.ExchangeWithConn(q, conn); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

// BenchmarkResolve is the answer path without the network.
func BenchmarkResolve(b *testing.B) {
	s, _ := startServer(b, Config{}, benchCluster()...)
	req := new(dns.Msg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Question = []dns.Question{benchQuestions[i%len(benchQuestions)]}
		if m := s.answer(req, true); m == nil {
			b.Fatal("no answer")
		}
	}
}
