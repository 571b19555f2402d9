package manager

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func TestCheckVersion(t *testing.T) {
	cases := map[string]struct {
		info version.Info
		err  string
	}{
		"current":       {info: version.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2"}},
		"oldest":        {info: version.Info{Major: "1", Minor: "33", GitVersion: "v1.33.0"}},
		"provider plus": {info: version.Info{Major: "1", Minor: "34+", GitVersion: "v1.34.1-eks-1"}},
		"too old":       {info: version.Info{Major: "1", Minor: "32", GitVersion: "v1.32.9"}, err: "the apiserver is Kubernetes v1.32.9: quartet's controllers need 1.33 or newer"},
		"unreadable":    {info: version.Info{Major: "", Minor: "", GitVersion: "v0.0.0-master"}, err: "need 1.33 or newer"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			client := fake.NewClientset()
			client.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &tc.info
			got, err := CheckVersion(client)
			if tc.err == "" {
				if err != nil || got != tc.info.GitVersion {
					t.Errorf("CheckVersion(%+v) = %q, %v", tc.info, got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("CheckVersion(%+v) = %v, want an error with %q", tc.info, err, tc.err)
			}
		})
	}
}
