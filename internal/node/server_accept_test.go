package node

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

func TestAcceptClient(t *testing.T) {
	chain := func(cn string) [][]*x509.Certificate {
		return [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: cn}}}}
	}
	cases := map[string]struct {
		names  []string
		chains [][]*x509.Certificate
		ok     bool
	}{
		"the apiserver":         {[]string{"kube-apiserver-kubelet-client"}, chain("kube-apiserver-kubelet-client"), true},
		"the admin":             {[]string{"kube-apiserver-kubelet-client"}, chain("quartet-admin"), false},
		"no chain":              {[]string{"kube-apiserver-kubelet-client"}, nil, false},
		"any when unrestricted": {nil, chain("quartet-admin"), true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := acceptClient(tc.names, tc.chains); (err == nil) != tc.ok {
				t.Errorf("acceptClient = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
