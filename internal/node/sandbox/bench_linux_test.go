package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// BenchmarkSandboxSetup measures issue 15's first target: a sandbox
// (namespace, veth, address, routes) ready, median per pod, and 100 of them
// one after another. Each iteration sets up 100 sandboxes on two nodes'
// podCIDRs, then tears them down. As root:
//
//	go test -run '^$' -bench SandboxSetup -benchtime 3x ./internal/node/sandbox
func BenchmarkSandboxSetup(b *testing.B) {
	needRoot(b)
	ctx := context.Background()
	m := startManager(b, b.TempDir())
	n := m.Network()
	const pods = 100
	var each []time.Duration
	var totals []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		for p := range pods {
			t0 := time.Now()
			uid := fmt.Sprintf("bench-%d-%d", i, p)
			if _, err := m.Setup(ctx, Pod{UID: uid, Namespace: "default", Name: uid, PodCIDR: subnet(n, 1+p%2)}); err != nil {
				b.Fatalf("setup %d: %v", p, err)
			}
			each = append(each, time.Since(t0))
		}
		totals = append(totals, time.Since(start))
		b.StopTimer()
		for p := range pods {
			if err := m.Teardown(ctx, fmt.Sprintf("bench-%d-%d", i, p)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(median(each).Microseconds())/1000, "ms-median/sandbox")
	b.ReportMetric(float64(slices.Max(each).Microseconds())/1000, "ms-max/sandbox")
	b.ReportMetric(median(totals).Seconds(), "s/100-sandboxes")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPodToPodRTT measures issue 15's second target: a TCP round trip
// (one byte each way on an open connection) between two pods on the
// machine, against the same over the host's loopback.
//
//	go test -run '^$' -bench PodToPodRTT ./internal/node/sandbox
func BenchmarkPodToPodRTT(b *testing.B) {
	needRoot(b)
	ctx := context.Background()
	m := startManager(b, b.TempDir())
	n := m.Network()
	a, err := m.Setup(ctx, Pod{UID: "rtt-a", Namespace: "default", Name: "a", PodCIDR: subnet(n, 1)})
	if err != nil {
		b.Fatal(err)
	}
	// The server is on another node's podCIDR: through the bridge, as
	// between pods of two nodes.
	s, err := m.Setup(ctx, Pod{UID: "rtt-b", Namespace: "default", Name: "b", PodCIDR: subnet(n, 2)})
	if err != nil {
		b.Fatal(err)
	}
	const trips = 2000
	var pod, loop []time.Duration
	for b.Loop() {
		pod = append(pod, roundTrips(b, s.NetNSPath, a.NetNSPath, net.JoinHostPort(s.IPs[0].String(), "0"), trips)...)
		loop = append(loop, roundTrips(b, "", "", "127.0.0.1:0", trips)...)
	}
	pm, lm := median(pod), median(loop)
	b.ReportMetric(float64(pm.Nanoseconds())/1000, "us-pod-rtt")
	b.ReportMetric(float64(lm.Nanoseconds())/1000, "us-loopback-rtt")
	b.ReportMetric(float64(pm)/float64(lm), "x-loopback")
	b.ReportMetric(0, "ns/op")
}

// roundTrips listens in the namespace server (or the host), dials from
// client, and times trips one-byte round trips.
func roundTrips(b *testing.B, server, client, listen string, trips int) []time.Duration {
	b.Helper()
	in := func(path string, f func() error) error {
		if path == "" {
			return f()
		}
		return ns.WithNetNSPath(path, func(ns.NetNS) error { return f() })
	}
	var ln net.Listener
	if err := in(server, func() (err error) { ln, err = net.Listen("tcp", listen); return err }); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	var c net.Conn
	if err := in(client, func() (err error) { c, err = net.Dial("tcp", ln.Addr().String()); return err }); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := []byte{0}
	out := make([]time.Duration, 0, trips)
	for range trips {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(t0))
	}
	return out
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkStop1000 measures the pod network's stop with 1,000 sandboxes
// (ten nodes' worth) set up: what `quartet up`'s pod network component
// does once the node agents have stopped. As root:
//
//	go test -run '^$' -bench Stop1000 -benchtime 1x ./internal/node/sandbox
func BenchmarkStop1000(b *testing.B) {
	needRoot(b)
	ctx := context.Background()
	const pods = 1000
	for b.Loop() {
		b.StopTimer()
		m := startManager(b, b.TempDir())
		n := m.Network()
		for p := range pods {
			uid := fmt.Sprintf("stop-%d", p)
			if _, err := m.Setup(ctx, Pod{UID: uid, Namespace: "default", Name: uid, PodCIDR: subnet(n, 1+p/100)}); err != nil {
				b.Fatalf("setup %d: %v", p, err)
			}
		}
		b.StartTimer()
		start := time.Now()
		m.Stop(ctx)
		b.ReportMetric(time.Since(start).Seconds(), "s/stop-1000")
	}
	b.ReportMetric(0, "ns/op")
}
