package dns

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func ptrTo[T any](v T) *T { return &v }

func namespace(name string) *v1.Namespace {
	return &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func clusterIPService(ns, name string, ips []string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: ips[0], ClusterIPs: ips, Ports: ports},
	}
}

func headlessService(ns, name string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: v1.ClusterIPNone, ClusterIPs: []string{v1.ClusterIPNone}, Ports: ports},
	}
}

func externalService(ns, name, target string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: target, Ports: ports},
	}
}

func port(name string, proto v1.Protocol, number int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Protocol: proto, Port: number}
}

// endpoint is one address; hostname "" leaves the field unset.
type endpoint struct {
	ip       string
	hostname string
	ready    *bool
}

func slice(ns, service, name string, family discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: family,
		Ports:       ports,
	}
	for _, e := range eps {
		ep := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}}
		if e.hostname != "" {
			ep.Hostname = ptrTo(e.hostname)
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	return s
}

func slicePort(name string, proto v1.Protocol, number int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptrTo(name), Protocol: ptrTo(proto), Port: ptrTo(number)}
}

var (
	yes = ptrTo(true)
	no  = ptrTo(false)
)

// clusterObjects is the cluster the table tests query.
func clusterObjects() []runtime.Object {
	notReady := headlessService("default", "notready")
	notReady.Spec.PublishNotReadyAddresses = true
	return []runtime.Object{
		namespace("default"), namespace("kube-system"), namespace("other"),
		// The chapter's headless Service and a StatefulSet's three pods,
		// web-2 not ready yet.
		headlessService("default", "web", port("http", v1.ProtocolTCP, 80)),
		slice("default", "web", "web-abcde", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{slicePort("http", v1.ProtocolTCP, 8080)},
			endpoint{"10.0.0.10", "web-0", yes}, endpoint{"10.0.0.11", "web-1", nil}, endpoint{"10.0.0.12", "web-2", no}),
		slice("default", "web", "web-v6", discoveryv1.AddressTypeIPv6,
			[]discoveryv1.EndpointPort{slicePort("http", v1.ProtocolTCP, 8080)},
			endpoint{"fd00::10", "web-0", yes}),
		clusterIPService("default", "api", []string{"10.96.0.20"},
			port("https", v1.ProtocolTCP, 443), port("", v1.ProtocolTCP, 8080), port("dns", v1.ProtocolUDP, 53)),
		clusterIPService("default", "dual", []string{"10.96.0.30", "fd00::30"}),
		clusterIPService("kube-system", "kube-dns", []string{"10.96.0.10"}, port("dns", v1.ProtocolUDP, 53)),
		externalService("default", "ext", "www.example.com", port("https", v1.ProtocolTCP, 443)),
		externalService("default", "alias", "api.default.svc.cluster.local"),
		headlessService("default", "empty"),
		notReady,
		slice("default", "notready", "notready-1", discoveryv1.AddressTypeIPv4, nil, endpoint{"10.0.0.40", "", no}),
		headlessService("default", "anon"),
		slice("default", "anon", "anon-1", discoveryv1.AddressTypeIPv4, nil, endpoint{"10.0.0.50", "", yes}),
		slice("default", "anon", "anon-fqdn", discoveryv1.AddressTypeFQDN, nil, endpoint{"db.example.com", "", yes}),
	}
}

// startServer runs a server on a fake clientset holding objs until the test
// ends.
func startServer(t testing.TB, cfg Config, objs ...runtime.Object) (*Server, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(objs...)
	cfg.Client = client
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
		if err := s.Err(); err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return s, client
}

// ask answers one question in process, as if it came over TCP.
func ask(s *Server, name string, qtype uint16) *dns.Msg {
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	return s.answer(req, false)
}
