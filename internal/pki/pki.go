// Package pki keeps quartet's certificate authority and the certificates it
// issues. The CA is generated once per data dir and kept, so kubeconfigs
// written by an earlier run stay valid after a restart.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/util/keyutil"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 5 * 365 * 24 * time.Hour
	// renewBefore is how long before expiry a kept leaf certificate is reissued.
	renewBefore = 30 * 24 * time.Hour
)

// Authority is quartet's CA together with the directory its files live in.
type Authority struct {
	Dir  string
	Cert *x509.Certificate
	Key  crypto.Signer

	mu sync.Mutex
}

// CertFile is the path of the CA certificate in PEM.
func (a *Authority) CertFile() string { return filepath.Join(a.Dir, "ca.crt") }

// CertPEM returns the CA certificate in PEM.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw})
}

// Pool returns a pool holding just the CA.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// LoadOrCreate reads the CA from dir, or creates it (and dir) when absent.
func LoadOrCreate(dir string) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	a := &Authority{Dir: dir}
	certPath, keyPath := a.CertFile(), filepath.Join(dir, "ca.key")
	cert, key, err := readPair(certPath, keyPath)
	switch {
	case err == nil:
		a.Cert, a.Key = cert, key
		return a, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("reading the CA in %s: %w", dir, err)
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "quartet-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePair(certPath, keyPath, cert, key); err != nil {
		return nil, err
	}
	a.Cert, a.Key = cert, key
	return a, nil
}

// Leaf describes a certificate to issue.
type Leaf struct {
	// Name is the file stem under the authority's directory ("" keeps it in memory only).
	Name         string
	CommonName   string
	Organization []string
	Server       bool
	Client       bool
	DNSNames     []string
	IPs          []net.IP
}

// Issued is a certificate and its key, with the files they were written to.
type Issued struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
	Key               crypto.Signer
	CertPEM, KeyPEM   []byte
}

// TLS returns the pair as a tls.Certificate.
func (i *Issued) TLS() *tls.Certificate {
	return &tls.Certificate{Certificate: [][]byte{i.Cert.Raw}, PrivateKey: i.Key, Leaf: i.Cert}
}

// Issue returns the certificate named l.Name, reusing the one on disk when it
// was signed by this CA, still has the requested subject and names, and is not
// about to expire; otherwise it issues and writes a new one.
func (a *Authority) Issue(l Leaf) (*Issued, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := &Issued{}
	if l.Name != "" {
		out.CertFile = filepath.Join(a.Dir, l.Name+".crt")
		out.KeyFile = filepath.Join(a.Dir, l.Name+".key")
		if cert, key, err := readPair(out.CertFile, out.KeyFile); err == nil && a.fits(cert, l) {
			out.Cert, out.Key = cert, key
			return out.withPEM()
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: l.Organization},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     l.DNSNames,
		IPAddresses:  l.IPs,
	}
	if l.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, err
	}
	if out.Cert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	out.Key = key
	if l.Name != "" {
		if err := writePair(out.CertFile, out.KeyFile, out.Cert, key); err != nil {
			return nil, err
		}
	}
	return out.withPEM()
}

func (i *Issued) withPEM() (*Issued, error) {
	i.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.Cert.Raw})
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(i.Key)
	if err != nil {
		return nil, err
	}
	i.KeyPEM = keyPEM
	return i, nil
}

// fits says whether a kept certificate can be reused for l.
func (a *Authority) fits(c *x509.Certificate, l Leaf) bool {
	if c.CheckSignatureFrom(a.Cert) != nil || time.Until(c.NotAfter) < renewBefore {
		return false
	}
	if c.Subject.CommonName != l.CommonName || !slices.Equal(c.Subject.Organization, l.Organization) {
		return false
	}
	if !slices.Equal(c.DNSNames, l.DNSNames) || len(c.IPAddresses) != len(l.IPs) {
		return false
	}
	for i := range l.IPs {
		if !c.IPAddresses[i].Equal(l.IPs[i]) {
			return false
		}
	}
	return true
}

// ServiceAccountKey returns the path of the service-account signing key,
// creating it once.
func (a *Authority) ServiceAccountKey() (string, error) {
	path := filepath.Join(a.Dir, "sa.key")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	pemBytes, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return "", err
	}
	return path, writeAtomic(path, pemBytes, 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1))
}

func readPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not a signing key", keyPath)
	}
	return cert, signer, nil
}

func writePair(certPath, keyPath string, cert *x509.Certificate, key crypto.Signer) error {
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// writeAtomic writes through a temporary file and a rename, so a crash never
// leaves a half-written key behind.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteFileAtomic writes data to path with mode, through a rename.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeAtomic(path, data, mode)
}
