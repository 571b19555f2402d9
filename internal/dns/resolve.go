package dns

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// SchemaVersion is the version of the Kubernetes DNS specification served,
// published as TXT at dns-version.<zone>.
const SchemaVersion = "1.1.0"

// result is the answer to one question before it becomes a message.
type result struct {
	rcode  int
	answer []dns.RR
	extra  []dns.RR
	// soa names the zone whose SOA goes in the authority section (NXDOMAIN
	// and NODATA answers); empty for none.
	soa string
	// notOurs marks a name outside the cluster domain or an unknown reverse
	// name: the server forwards it when it has upstreams, else answers rcode.
	notOurs bool
	// chase is an ExternalName target outside the zone whose records the
	// server may fetch from upstream and append.
	chase string
}

const (
	reverseV4 = "in-addr.arpa."
	reverseV6 = "ip6.arpa."
)

// resolver answers questions from an index.
type resolver struct {
	ix  *index
	ttl uint32
}

// resolve answers one question. name is the question name as asked (its case
// is kept in owner names); lookups are case-insensitive.
func (r *resolver) resolve(name string, qtype uint16) result {
	lower := strings.ToLower(fqdn(name))
	zone := r.ix.zone
	switch {
	case lower == zone || strings.HasSuffix(lower, "."+zone):
		r.ix.mu.RLock()
		defer r.ix.mu.RUnlock()
		return r.inZone(name, strings.TrimSuffix(strings.TrimSuffix(lower, zone), "."), qtype, 0)
	case strings.HasSuffix(lower, "."+reverseV4) || lower == reverseV4:
		return r.reverse(name, lower, reverseV4, qtype)
	case strings.HasSuffix(lower, "."+reverseV6) || lower == reverseV6:
		return r.reverse(name, lower, reverseV6, qtype)
	}
	return result{rcode: dns.RcodeRefused, notOurs: true}
}

func (r *resolver) nxdomain() result {
	return result{rcode: dns.RcodeNameError, soa: r.ix.zone}
}

func (r *resolver) nodata() result {
	return result{rcode: dns.RcodeSuccess, soa: r.ix.zone}
}

func wants(qtype, t uint16) bool { return qtype == t || qtype == dns.TypeANY }

// inZone answers rel, the name relative to the zone ("" is the apex). The
// caller holds the read lock. depth bounds CNAME chasing inside the zone.
func (r *resolver) inZone(owner, rel string, qtype uint16, depth int) result {
	if rel == "" {
		return r.apex(owner, qtype)
	}
	labels := strings.Split(rel, ".")
	n := len(labels)
	switch labels[n-1] {
	case "dns-version":
		if n != 1 {
			return r.nxdomain()
		}
		if !wants(qtype, dns.TypeTXT) {
			return r.nodata()
		}
		return result{answer: []dns.RR{&dns.TXT{Hdr: r.hdr(owner, dns.TypeTXT), Txt: []string{SchemaVersion}}}}
	case "dns":
		// ns.dns.<zone> is the name server named by the apex NS record; it
		// has the addresses of the kube-dns Service, when that exists.
		switch {
		case n == 1:
			return r.nodata()
		case n == 2 && labels[0] == "ns":
			if svc := r.ix.services[serviceKey("kube-system", "kube-dns")]; svc != nil && svc.kind == kindClusterIP {
				return r.addresses(owner, svc.addrs, qtype)
			}
			return r.nodata()
		}
		return r.nxdomain()
	case "svc":
		return r.svc(owner, labels[:n-1], qtype, depth)
	case "pod":
		return r.pod(owner, labels[:n-1], qtype)
	}
	return r.nxdomain()
}

func (r *resolver) apex(owner string, qtype uint16) result {
	var res result
	if wants(qtype, dns.TypeSOA) {
		res.answer = append(res.answer, r.soa(owner, r.ix.zone))
	}
	if wants(qtype, dns.TypeNS) {
		res.answer = append(res.answer, &dns.NS{Hdr: r.hdr(owner, dns.TypeNS), Ns: "ns.dns." + r.ix.zone})
	}
	if len(res.answer) == 0 {
		return r.nodata()
	}
	return res
}

// svc answers names under svc.<zone>; labels excludes "svc".
func (r *resolver) svc(owner string, labels []string, qtype uint16, depth int) result {
	n := len(labels)
	switch n {
	case 0:
		return r.nodata()
	case 1:
		if r.ix.namespaces[labels[0]] {
			return r.nodata()
		}
		return r.nxdomain()
	}
	if n > 5 {
		return r.nxdomain()
	}
	rec := r.ix.services[labels[n-2]+"."+labels[n-1]]
	if rec == nil {
		return r.nxdomain()
	}
	switch n {
	case 2: // <service>.<ns>
		switch rec.kind {
		case kindExternalName:
			return r.cname(owner, rec.externalName, qtype, depth)
		case kindHeadless:
			if len(rec.addrs) == 0 {
				// The specification: a headless Service without ready
				// endpoints is NXDOMAIN.
				return r.nxdomain()
			}
		}
		return r.addresses(owner, rec.addrs, qtype)
	case 3: // <hostname>.<service>.<ns> or _<proto>.<service>.<ns>
		first := labels[0]
		if strings.HasPrefix(first, "_") {
			if rec.protos[first] {
				return r.nodata()
			}
			return r.nxdomain()
		}
		if rec.kind != kindHeadless {
			return r.nxdomain()
		}
		addrs, ok := rec.hosts[first]
		if !ok {
			return r.nxdomain()
		}
		return r.addresses(owner, addrs, qtype)
	case 4: // _<port>._<proto>.<service>.<ns>
		targets := rec.srv[labels[0]+"."+labels[1]]
		if len(targets) == 0 {
			return r.nxdomain()
		}
		if !wants(qtype, dns.TypeSRV) {
			return r.nodata()
		}
		return r.srv(owner, rec, targets)
	}
	return r.nxdomain()
}

// srv answers SRV records and adds the targets' addresses in the additional
// section. Weights share 100 between the targets.
func (r *resolver) srv(owner string, rec *serviceRecords, targets []srvTarget) result {
	var res result
	weight := uint16(100 / len(targets))
	if weight == 0 {
		weight = 1
	}
	added := map[string]bool{}
	for _, t := range targets {
		res.answer = append(res.answer, &dns.SRV{Hdr: r.hdr(owner, dns.TypeSRV), Priority: 0, Weight: weight, Port: t.port, Target: t.target})
		if added[t.target] {
			continue
		}
		added[t.target] = true
		var addrs []netip.Addr
		switch {
		case t.target == rec.fqdn:
			addrs = rec.addrs
		case rec.kind == kindHeadless:
			addrs = rec.hosts[strings.TrimSuffix(t.target, "."+rec.fqdn)]
		}
		for _, ip := range addrs {
			res.extra = append(res.extra, r.addressRR(t.target, ip))
		}
	}
	return res
}

// cname answers an ExternalName Service: the CNAME, then the target's records
// when the target is inside the zone (at most 8 links), or a request to chase
// it upstream.
func (r *resolver) cname(owner, target string, qtype uint16, depth int) result {
	res := result{answer: []dns.RR{&dns.CNAME{Hdr: r.hdr(owner, dns.TypeCNAME), Target: target}}}
	if qtype == dns.TypeCNAME || qtype == dns.TypeANY {
		return res
	}
	zone := r.ix.zone
	if target == zone || strings.HasSuffix(target, "."+zone) {
		if depth >= 8 {
			return res
		}
		next := r.inZone(target, strings.TrimSuffix(strings.TrimSuffix(target, zone), "."), qtype, depth+1)
		res.answer = append(res.answer, next.answer...)
		res.extra = append(res.extra, next.extra...)
		res.rcode = next.rcode
		res.soa = next.soa
		return res
	}
	res.chase = target
	return res
}

// pod answers <a-b-c-d>.<ns>.pod.<zone> with the address spelled in the name,
// for any address, in any namespace that exists (the specification's
// deprecated pod records, as CoreDNS's "pods insecure" serves them).
func (r *resolver) pod(owner string, labels []string, qtype uint16) result {
	switch len(labels) {
	case 0:
		return r.nodata()
	case 1:
		if r.ix.namespaces[labels[0]] {
			return r.nodata()
		}
		return r.nxdomain()
	case 2:
		ip, ok := undashed(labels[0])
		if !ok || !r.ix.namespaces[labels[1]] {
			return r.nxdomain()
		}
		return r.addresses(owner, []netip.Addr{ip}, qtype)
	}
	return r.nxdomain()
}

// addresses answers A and/or AAAA from addrs; a name with addresses of the
// other family only is NODATA.
func (r *resolver) addresses(owner string, addrs []netip.Addr, qtype uint16) result {
	var res result
	for _, ip := range addrs {
		if (ip.Is4() && wants(qtype, dns.TypeA)) || (ip.Is6() && wants(qtype, dns.TypeAAAA)) {
			res.answer = append(res.answer, r.addressRR(owner, ip))
		}
	}
	if len(res.answer) == 0 {
		return r.nodata()
	}
	return res
}

func (r *resolver) addressRR(owner string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		b := ip.As4()
		return &dns.A{Hdr: r.hdr(owner, dns.TypeA), A: net.IP(b[:])}
	}
	b := ip.As16()
	return &dns.AAAA{Hdr: r.hdr(owner, dns.TypeAAAA), AAAA: net.IP(b[:])}
}

// reverse answers PTR for ClusterIPs and the ready endpoints of headless
// Services. Other reverse names are not ours.
func (r *resolver) reverse(owner, lower, zone string, qtype uint16) result {
	ip, ok := parseReverse(strings.TrimSuffix(lower, zone), zone)
	if ok {
		r.ix.mu.RLock()
		defer r.ix.mu.RUnlock()
		if byService := r.ix.reverse[ip]; len(byService) > 0 {
			if !wants(qtype, dns.TypePTR) {
				return result{soa: zone}
			}
			var res result
			for _, names := range byService {
				for _, n := range names {
					res.answer = append(res.answer, &dns.PTR{Hdr: r.hdr(owner, dns.TypePTR), Ptr: n})
				}
			}
			return res
		}
	}
	return result{rcode: dns.RcodeNameError, soa: zone, notOurs: true}
}

// parseReverse reads the address of a full reverse name; rel is the name
// without the reverse zone, with its trailing dot.
func parseReverse(rel, zone string) (netip.Addr, bool) {
	rel = strings.TrimSuffix(rel, ".")
	labels := strings.Split(rel, ".")
	if zone == reverseV4 {
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if len(labels) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, l := range labels {
		if len(l) != 1 {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(l, 16, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		pos := 31 - i
		if pos%2 == 0 {
			b[pos/2] |= byte(v) << 4
		} else {
			b[pos/2] |= byte(v)
		}
	}
	return netip.AddrFrom16(b), true
}

func (r *resolver) hdr(owner string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: r.ttl}
}

// soa is the start of authority for zone, owned by owner; its minimum (the
// negative-caching TTL) equals the record TTL.
func (r *resolver) soa(owner, zone string) dns.RR {
	return &dns.SOA{
		Hdr:     r.hdr(owner, dns.TypeSOA),
		Ns:      "ns.dns." + r.ix.zone,
		Mbox:    "hostmaster." + r.ix.zone,
		Serial:  r.ix.serial.Load(),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  r.ttl,
	}
}
