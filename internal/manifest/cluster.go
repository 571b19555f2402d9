package manifest

import (
	"os"

	"k8s.io/client-go/tools/clientcmd"

	"quartet.dev/quartet/internal/datadir"
)

// ClientConfig finds a cluster the way quartet's commands do: the
// kubeconfig given, else $KUBECONFIG, else the one `quartet up` wrote in its
// data dir ($QUARTET_DATA_DIR or ~/.quartet) when it exists, else
// ~/.kube/config.
func ClientConfig(kubeconfig string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	switch {
	case kubeconfig != "":
		rules.ExplicitPath = kubeconfig
	case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "":
	default:
		if path := quartetKubeconfig(); path != "" {
			rules.ExplicitPath = path
		}
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
}

// quartetKubeconfig is the kubeconfig `quartet up` writes in its default
// data dir, if it exists.
func quartetKubeconfig() string {
	path := datadir.Dir(datadir.Default()).Kubeconfig()
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
