package dns

import (
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// serviceKind is how a Service appears in DNS.
type serviceKind int

const (
	kindClusterIP serviceKind = iota
	kindHeadless
	kindExternalName
)

// srvTarget is one SRV answer: a port on a host name inside the zone (or an
// ExternalName target outside it).
type srvTarget struct {
	port   uint16
	target string // fully qualified, lower case
}

// serviceRecords is everything one Service contributes to DNS, computed once
// per change of the Service or its EndpointSlices and never modified after.
type serviceRecords struct {
	kind serviceKind
	// fqdn is <service>.<ns>.svc.<zone>.
	fqdn string
	// addrs answers A/AAAA for fqdn: the ClusterIPs, or the ready endpoint
	// addresses of a headless Service.
	addrs []netip.Addr
	// externalName is the CNAME target of an ExternalName Service.
	externalName string
	// hosts maps an endpoint hostname label to its addresses (headless only).
	hosts map[string][]netip.Addr
	// srv maps "_<port>._<proto>" to its targets; protos holds each "_<proto>".
	srv    map[string][]srvTarget
	protos map[string]bool
	// ptr is the reverse records this Service contributes.
	ptr map[netip.Addr][]string

	// seen dedupes while building (large headless Services would otherwise
	// cost a quadratic scan); nil once built.
	seenAddr map[netip.Addr]bool
	seenSRV  map[srvKey]bool
}

type srvKey struct {
	key string
	t   srvTarget
}

// buildRecords computes the records of svc given the EndpointSlices labelled
// with its name. zone is the cluster domain, lower case, with a trailing dot.
func buildRecords(svc *v1.Service, endpointSlices []*discoveryv1.EndpointSlice, zone string) *serviceRecords {
	r := &serviceRecords{
		fqdn:   strings.ToLower(svc.Name + "." + svc.Namespace + ".svc." + zone),
		srv:    map[string][]srvTarget{},
		protos: map[string]bool{},
		ptr:    map[netip.Addr][]string{},

		seenAddr: map[netip.Addr]bool{},
		seenSRV:  map[srvKey]bool{},
	}
	defer func() { r.seenAddr, r.seenSRV = nil, nil }()
	switch {
	case svc.Spec.Type == v1.ServiceTypeExternalName:
		r.kind = kindExternalName
		r.externalName = fqdn(strings.ToLower(svc.Spec.ExternalName))
		for _, p := range svc.Spec.Ports {
			r.addSRV(p.Name, p.Protocol, srvTarget{port: uint16(p.Port), target: r.externalName})
		}
	case svc.Spec.ClusterIP == v1.ClusterIPNone:
		r.kind = kindHeadless
		r.hosts = map[string][]netip.Addr{}
		r.addEndpoints(svc, endpointSlices)
	default:
		r.kind = kindClusterIP
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, s := range ips {
			if ip, err := netip.ParseAddr(s); err == nil {
				ip = ip.Unmap()
				r.addAddr(ip)
				r.ptr[ip] = appendUnique(r.ptr[ip], r.fqdn)
			}
		}
		for _, p := range svc.Spec.Ports {
			r.addSRV(p.Name, p.Protocol, srvTarget{port: uint16(p.Port), target: r.fqdn})
		}
	}
	return r
}

// addEndpoints adds the ready endpoints of a headless Service: one address
// record at the Service name and one at <hostname>.<service> per address, SRV
// records per named port and endpoint, and a PTR record per address.
func (r *serviceRecords) addEndpoints(svc *v1.Service, endpointSlices []*discoveryv1.EndpointSlice) {
	for _, slice := range endpointSlices {
		if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		for _, ep := range slice.Endpoints {
			if !ready(svc, ep) {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				ip = ip.Unmap()
				host := endpointHostname(ep, ip)
				target := host + "." + r.fqdn
				r.addAddr(ip)
				r.hosts[host] = appendUnique(r.hosts[host], ip)
				r.ptr[ip] = appendUnique(r.ptr[ip], target)
				for _, p := range slice.Ports {
					if p.Name == nil || p.Port == nil {
						continue
					}
					proto := v1.ProtocolTCP
					if p.Protocol != nil {
						proto = *p.Protocol
					}
					r.addSRV(*p.Name, proto, srvTarget{port: uint16(*p.Port), target: target})
				}
			}
		}
	}
}

// addSRV records a target for a named port; unnamed ports have no SRV record.
func (r *serviceRecords) addSRV(name string, proto v1.Protocol, t srvTarget) {
	if name == "" {
		return
	}
	p := "_" + strings.ToLower(string(proto))
	key := "_" + strings.ToLower(name) + "." + p
	if !r.seenSRV[srvKey{key, t}] {
		r.seenSRV[srvKey{key, t}] = true
		r.srv[key] = append(r.srv[key], t)
	}
	r.protos[p] = true
}

func (r *serviceRecords) addAddr(ip netip.Addr) {
	if !r.seenAddr[ip] {
		r.seenAddr[ip] = true
		r.addrs = append(r.addrs, ip)
	}
}

// ready says whether an endpoint is published: its ready condition is true or
// unknown, or the Service publishes not-ready addresses.
func ready(svc *v1.Service, ep discoveryv1.Endpoint) bool {
	if svc.Spec.PublishNotReadyAddresses {
		return true
	}
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// endpointHostname is the endpoint's hostname field when set (a pod with
// hostname and a subdomain naming this Service), else a name derived from its
// address: 10.0.0.5 becomes 10-0-0-5, fd00::5 becomes fd00--5.
func endpointHostname(ep discoveryv1.Endpoint, ip netip.Addr) string {
	if ep.Hostname != nil && *ep.Hostname != "" {
		return strings.ToLower(*ep.Hostname)
	}
	return dashed(ip)
}

// dashed writes an address with its separators replaced by dashes.
func dashed(ip netip.Addr) string {
	return dasher.Replace(ip.String())
}

var dasher = strings.NewReplacer(".", "-", ":", "-")

// undashed parses a dashed address back; ok is false if it is not one.
func undashed(label string) (netip.Addr, bool) {
	if strings.Count(label, "-") == 3 {
		if ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ".")); err == nil && ip.Is4() {
			return ip, true
		}
	}
	ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":"))
	if err != nil || !ip.Is6() || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}

func appendUnique[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// fqdn adds the trailing dot if it is missing.
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}
