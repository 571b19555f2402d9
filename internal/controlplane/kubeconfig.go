package controlplane

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"quartet.dev/quartet/internal/pki"
)

// kubeconfigBytes renders a kubeconfig with the CA pinned and the client
// certificate embedded, so the file works on its own wherever it is copied.
func kubeconfigBytes(server string, ca *pki.Authority, client *pki.Issued, name string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["quartet"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.CertPEM()}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: client.CertPEM, ClientKeyData: client.KeyPEM}
	cfg.Contexts["quartet"] = &clientcmdapi.Context{Cluster: "quartet", AuthInfo: name}
	cfg.CurrentContext = "quartet"
	return clientcmd.Write(*cfg)
}

// writeKubeconfig writes a kubeconfig file with mode 0600.
func writeKubeconfig(path, server string, ca *pki.Authority, client *pki.Issued, name string) error {
	b, err := kubeconfigBytes(server, ca, client, name)
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(path, b, 0o600)
}

// restConfig is a client config for an identity issued by the CA.
func restConfig(server string, ca *pki.Authority, client *pki.Issued) *rest.Config {
	return &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   ca.CertPEM(),
			CertData: client.CertPEM,
			KeyData:  client.KeyPEM,
		},
	}
}
