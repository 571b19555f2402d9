package dns

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// render writes records as "owner TYPE rdata", sorted, without TTL and class.
func render(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		f := strings.Split(rr.String(), "\t")
		out = append(out, f[0]+" "+f[3]+" "+strings.Join(f[4:], " "))
	}
	slices.Sort(out)
	return out
}

func TestResolve(t *testing.T) {
	s, _ := startServer(t, Config{}, clusterObjects()...)
	const z = ".cluster.local."
	cases := map[string]struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string
		// soa: an SOA in the authority section (NXDOMAIN and NODATA).
		soa bool
	}{
		"ClusterIP A": {
			name: "api.default.svc" + z, qtype: dns.TypeA,
			answer: []string{"api.default.svc.cluster.local. A 10.96.0.20"},
		},
		"case-insensitive, owner as asked": {
			name: "API.Default.SVC.Cluster.Local.", qtype: dns.TypeA,
			answer: []string{"API.Default.SVC.Cluster.Local. A 10.96.0.20"},
		},
		"ClusterIP AAAA on an IPv4 Service is NODATA": {
			name: "api.default.svc" + z, qtype: dns.TypeAAAA, soa: true,
		},
		"ClusterIP TXT is NODATA": {
			name: "api.default.svc" + z, qtype: dns.TypeTXT, soa: true,
		},
		"dual-stack ClusterIP AAAA": {
			name: "dual.default.svc" + z, qtype: dns.TypeAAAA,
			answer: []string{"dual.default.svc.cluster.local. AAAA fd00::30"},
		},
		"headless A: one per ready endpoint": {
			name: "web.default.svc" + z, qtype: dns.TypeA,
			answer: []string{"web.default.svc.cluster.local. A 10.0.0.10", "web.default.svc.cluster.local. A 10.0.0.11"},
		},
		"headless AAAA from the IPv6 slice": {
			name: "web.default.svc" + z, qtype: dns.TypeAAAA,
			answer: []string{"web.default.svc.cluster.local. AAAA fd00::10"},
		},
		"pod hostname in a headless Service": {
			name: "web-0.web.default.svc" + z, qtype: dns.TypeA,
			answer: []string{"web-0.web.default.svc.cluster.local. A 10.0.0.10"},
		},
		"pod hostname AAAA": {
			name: "web-0.web.default.svc" + z, qtype: dns.TypeAAAA,
			answer: []string{"web-0.web.default.svc.cluster.local. AAAA fd00::10"},
		},
		"pod hostname with an unknown ready condition resolves": {
			name: "web-1.web.default.svc" + z, qtype: dns.TypeA,
			answer: []string{"web-1.web.default.svc.cluster.local. A 10.0.0.11"},
		},
		"not-ready pod hostname is NXDOMAIN": {
			name: "web-2.web.default.svc" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"pod hostname that has only IPv4 asked AAAA is NODATA": {
			name: "web-1.web.default.svc" + z, qtype: dns.TypeAAAA, soa: true,
		},
		"hostname under a ClusterIP Service is NXDOMAIN": {
			name: "web-0.api.default.svc" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"headless SRV: one per ready endpoint, with addresses": {
			name: "_http._tcp.web.default.svc" + z, qtype: dns.TypeSRV,
			answer: []string{
				"_http._tcp.web.default.svc.cluster.local. SRV 0 50 8080 web-0.web.default.svc.cluster.local.",
				"_http._tcp.web.default.svc.cluster.local. SRV 0 50 8080 web-1.web.default.svc.cluster.local.",
			},
			extra: []string{
				"web-0.web.default.svc.cluster.local. A 10.0.0.10",
				"web-0.web.default.svc.cluster.local. AAAA fd00::10",
				"web-1.web.default.svc.cluster.local. A 10.0.0.11",
			},
		},
		"ClusterIP SRV: one target, the Service": {
			name: "_https._tcp.api.default.svc" + z, qtype: dns.TypeSRV,
			answer: []string{"_https._tcp.api.default.svc.cluster.local. SRV 0 100 443 api.default.svc.cluster.local."},
			extra:  []string{"api.default.svc.cluster.local. A 10.96.0.20"},
		},
		"ClusterIP SRV over UDP": {
			name: "_dns._udp.api.default.svc" + z, qtype: dns.TypeSRV,
			answer: []string{"_dns._udp.api.default.svc.cluster.local. SRV 0 100 53 api.default.svc.cluster.local."},
			extra:  []string{"api.default.svc.cluster.local. A 10.96.0.20"},
		},
		"SRV with the wrong protocol is NXDOMAIN": {
			name: "_https._udp.api.default.svc" + z, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soa: true,
		},
		"SRV name asked A is NODATA": {
			name: "_http._tcp.web.default.svc" + z, qtype: dns.TypeA, soa: true,
		},
		"protocol label alone is NODATA": {
			name: "_tcp.api.default.svc" + z, qtype: dns.TypeSRV, soa: true,
		},
		"unused protocol label is NXDOMAIN": {
			name: "_sctp.api.default.svc" + z, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soa: true,
		},
		"ExternalName SRV points at the external name": {
			name: "_https._tcp.ext.default.svc" + z, qtype: dns.TypeSRV,
			answer: []string{"_https._tcp.ext.default.svc.cluster.local. SRV 0 100 443 www.example.com."},
		},
		"PTR for a ClusterIP": {
			name: "20.0.96.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"20.0.96.10.in-addr.arpa. PTR api.default.svc.cluster.local."},
		},
		"PTR for a headless endpoint": {
			name: "10.0.0.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"10.0.0.10.in-addr.arpa. PTR web-0.web.default.svc.cluster.local."},
		},
		"PTR for an endpoint without hostname": {
			name: "50.0.0.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"50.0.0.10.in-addr.arpa. PTR 10-0-0-50.anon.default.svc.cluster.local."},
		},
		"PTR for an IPv6 ClusterIP": {
			name: "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. PTR dual.default.svc.cluster.local."},
		},
		"PTR for a not-ready endpoint is NXDOMAIN": {
			name: "12.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: true,
		},
		"PTR for an unknown address without upstream is NXDOMAIN": {
			name: "9.9.9.9.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: true,
		},
		"known address asked A in the reverse zone is NODATA": {
			name: "20.0.96.10.in-addr.arpa.", qtype: dns.TypeA, soa: true,
		},
		"ExternalName is a CNAME": {
			name: "ext.default.svc" + z, qtype: dns.TypeA,
			answer: []string{"ext.default.svc.cluster.local. CNAME www.example.com."},
		},
		"ExternalName inside the zone is followed": {
			name: "alias.default.svc" + z, qtype: dns.TypeA,
			answer: []string{"alias.default.svc.cluster.local. CNAME api.default.svc.cluster.local.", "api.default.svc.cluster.local. A 10.96.0.20"},
		},
		"ExternalName asked CNAME": {
			name: "alias.default.svc" + z, qtype: dns.TypeCNAME,
			answer: []string{"alias.default.svc.cluster.local. CNAME api.default.svc.cluster.local."},
		},
		"headless Service without endpoints is NXDOMAIN": {
			name: "empty.default.svc" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"publishNotReadyAddresses publishes a not-ready endpoint": {
			name: "notready.default.svc" + z, qtype: dns.TypeA,
			answer: []string{"notready.default.svc.cluster.local. A 10.0.0.40"},
		},
		"endpoint without hostname answers at its dashed address": {
			name: "10-0-0-50.anon.default.svc" + z, qtype: dns.TypeA,
			answer: []string{"10-0-0-50.anon.default.svc.cluster.local. A 10.0.0.50"},
		},
		"pod A record": {
			name: "10-1-2-3.default.pod" + z, qtype: dns.TypeA,
			answer: []string{"10-1-2-3.default.pod.cluster.local. A 10.1.2.3"},
		},
		"pod AAAA record": {
			name: "fd00--1.default.pod" + z, qtype: dns.TypeAAAA,
			answer: []string{"fd00--1.default.pod.cluster.local. AAAA fd00::1"},
		},
		"pod IPv4 record asked AAAA is NODATA": {
			name: "10-1-2-3.default.pod" + z, qtype: dns.TypeAAAA, soa: true,
		},
		"pod record in a missing namespace is NXDOMAIN": {
			name: "10-1-2-3.nope.pod" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"pod record that is not an address is NXDOMAIN": {
			name: "10-1-2.default.pod" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"missing Service is NXDOMAIN": {
			name: "nosuch.default.svc" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"Service in another namespace is NXDOMAIN": {
			name: "api.other.svc" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"namespace name is NODATA": {
			name: "default.svc" + z, qtype: dns.TypeA, soa: true,
		},
		"missing namespace is NXDOMAIN": {
			name: "nope.svc" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"svc label is NODATA": {
			name: "svc" + z, qtype: dns.TypeA, soa: true,
		},
		"too many labels is NXDOMAIN": {
			name: "a.b._http._tcp.web.default.svc" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"unknown label under the zone is NXDOMAIN": {
			name: "foo" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"search-path miss is NXDOMAIN": {
			name: "www.example.com.default.svc" + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true,
		},
		"zone SOA": {
			name: "cluster.local.", qtype: dns.TypeSOA,
			answer: []string{"cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 5"},
		},
		"zone NS": {
			name: "cluster.local.", qtype: dns.TypeNS,
			answer: []string{"cluster.local. NS ns.dns.cluster.local."},
		},
		"name server address is kube-dns's": {
			name: "ns.dns" + z, qtype: dns.TypeA,
			answer: []string{"ns.dns.cluster.local. A 10.96.0.10"},
		},
		"schema version": {
			name: "dns-version" + z, qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. TXT "1.1.0"`},
		},
		"outside the zone without upstream is REFUSED": {
			name: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := ask(s, tc.name, tc.qtype)
			if m.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			answer := render(m.Answer)
			for i, a := range answer {
				if strings.Contains(a, " SOA ") {
					f := strings.Fields(a)
					f[4] = "SERIAL"
					answer[i] = strings.Join(f, " ")
				}
			}
			if diff := cmp.Diff(tc.answer, answer); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.extra, render(withoutOPT(m.Extra))); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
			gotSOA := len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA
			if gotSOA != tc.soa {
				t.Errorf("authority = %v, want SOA: %v", m.Ns, tc.soa)
			}
			for _, rr := range append(append([]dns.RR{}, m.Answer...), m.Ns...) {
				if rr.Header().Ttl != DefaultTTL {
					t.Errorf("TTL of %s = %d, want %d", rr, rr.Header().Ttl, DefaultTTL)
				}
			}
			if strings.HasSuffix(strings.ToLower(tc.name), z) && !m.Authoritative {
				t.Error("answer from the cluster zone is not authoritative")
			}
		})
	}
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

func TestResolveRejectsMalformedRequests(t *testing.T) {
	s, _ := startServer(t, Config{}, namespace("default"))
	notify := new(dns.Msg)
	notify.SetNotify("cluster.local.")
	if m := s.answer(notify, true); m.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY rcode = %s", dns.RcodeToString[m.Rcode])
	}
	empty := new(dns.Msg)
	if m := s.answer(empty, true); m.Rcode != dns.RcodeFormatError {
		t.Errorf("no question rcode = %s", dns.RcodeToString[m.Rcode])
	}
	chaos := new(dns.Msg)
	chaos.SetQuestion("version.bind.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	if m := s.answer(chaos, true); m.Rcode != dns.RcodeRefused {
		t.Errorf("CHAOS rcode = %s", dns.RcodeToString[m.Rcode])
	}
	resp := new(dns.Msg)
	resp.SetQuestion("api.default.svc.cluster.local.", dns.TypeA)
	resp.Response = true
	if m := s.answer(resp, true); m != nil {
		t.Errorf("answered a response: %v", m)
	}
}

func TestUndashed(t *testing.T) {
	for label, want := range map[string]string{
		"10-0-0-1": "10.0.0.1", "fd00--1": "fd00::1", "2001-db8--a-b": "2001:db8::a:b",
		"10-0-0": "", "a-b-c-d": "", "10-0-0-256": "", "": "", "--": "::", "fe80--1-eth0": "",
	} {
		ip, ok := undashed(label)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != want {
			t.Errorf("undashed(%q) = %q, want %q", label, got, want)
		}
	}
}

func TestParseReverse(t *testing.T) {
	for name, want := range map[string]string{
		"1.0.96.10.in-addr.arpa.":  "10.96.0.1",
		"1.0.96.in-addr.arpa.":     "",
		"01.0.96.10.in-addr.arpa.": "",
		"1.0.96.300.in-addr.arpa.": "",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.": "fd00::1",
		"1.0.0.ip6.arpa.": "",
		"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.": "",
	} {
		zone := reverseV4
		if strings.HasSuffix(name, reverseV6) {
			zone = reverseV6
		}
		ip, ok := parseReverse(strings.TrimSuffix(name, zone), zone)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != want {
			t.Errorf("parseReverse(%q) = %q, want %q", name, got, want)
		}
	}
}
