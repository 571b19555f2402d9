package kubeproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// EndpointSlices quartet writes for its in-process servers.
const ManagedBy = "network.quartet.dev"

// PublishEndpoints makes ip, with ports, the one endpoint of the Service
// namespace/service (one without a selector, served inside quartet): it
// writes the EndpointSlice named after the Service, so that kube-proxy
// routes the Service's ClusterIP there.
func PublishEndpoints(ctx context.Context, c kubernetes.Interface, namespace, service string, ip net.IP, ports []discoveryv1.EndpointPort) error {
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			discoveryv1.LabelManagedBy:   ManagedBy,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: new(true), Serving: new(true), Terminating: new(false)},
		}},
		Ports: ports,
	}
	slices := c.DiscoveryV1().EndpointSlices(namespace)
	have, err := slices.Get(ctx, service, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		if m := have.Labels[discoveryv1.LabelManagedBy]; m != ManagedBy {
			return fmt.Errorf("EndpointSlice %s/%s is managed by %q, not quartet: delete it to let quartet publish the Service's endpoint", namespace, service, m)
		}
		want.ResourceVersion = have.ResourceVersion
		_, err = slices.Update(ctx, want, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("EndpointSlice %s/%s: %w", namespace, service, err)
	}
	return nil
}

// UnpublishEndpoints removes what PublishEndpoints wrote.
func UnpublishEndpoints(ctx context.Context, c kubernetes.Interface, namespace, service string) error {
	err := c.DiscoveryV1().EndpointSlices(namespace).Delete(ctx, service, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Forward accepts TCP connections on listen and relays each to target,
// until ctx is done; it returns the bound address and a channel closed once
// every relay has ended. quartet uses it to put the apiserver, which listens
// on 127.0.0.1 only, on the pod bridge, as the kubernetes Service's endpoint.
func Forward(ctx context.Context, listen, target string) (string, <-chan struct{}, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", listen)
	if err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	go func() {
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	go func() {
		defer close(done)
		defer wg.Wait()
		for {
			in, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					klog.FromContext(ctx).Error(err, "Accepting a connection to forward", "listen", listen)
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
				if err != nil {
					in.Close()
					return
				}
				track(in, true)
				track(out, true)
				relay(in, out)
				track(in, false)
				track(out, false)
			}()
		}
	}()
	return ln.Addr().String(), done, nil
}

// relay copies both ways until both directions have ended.
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	half := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go half(a, b)
	go half(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
