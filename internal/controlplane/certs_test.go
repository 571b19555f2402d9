package controlplane

import (
	"crypto/x509"
	"net"
	"testing"

	"quartet.dev/quartet/internal/pki"
)

// TestServingCertNamesServingIPs checks that the apiserver's certificate
// verifies for the pod network's host address once it is asked for, also
// when the data dir already holds a certificate issued without it.
func TestServingCertNamesServingIPs(t *testing.T) {
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	verify := func(c *controlPlaneCerts, host string) error {
		_, err := c.serving.Cert.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool()})
		return err
	}
	old, err := issueControlPlaneCerts(ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", KubernetesServiceIP, "kubernetes.default.svc"} {
		if err := verify(old, host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if verify(old, "10.143.255.254") == nil {
		t.Fatal("a certificate without serving IPs verifies for 10.143.255.254")
	}
	certs, err := issueControlPlaneCerts(ca, []net.IP{net.ParseIP("10.143.255.254")})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", KubernetesServiceIP, "10.143.255.254"} {
		if err := verify(certs, host); err != nil {
			t.Errorf("after adding the pod network's address, %s: %v", host, err)
		}
	}
	again, err := issueControlPlaneCerts(ca, []net.IP{net.ParseIP("10.143.255.254")})
	if err != nil {
		t.Fatal(err)
	}
	if !again.serving.Cert.Equal(certs.serving.Cert) {
		t.Error("the same addresses issued a new certificate, want the one on disk kept")
	}
}
