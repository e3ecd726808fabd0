// Package certstest generates real X.509 material for tests: a CA, server
// and client leaves signed by it, PEM encodings, and helpers that write them
// to disk the way operators and Kubernetes do. It is for tests only and
// never used by production code.
package certstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is the CA certificate in PEM form (a client-CA bundle).
	PEM []byte
}

// Leaf is a certificate issued by a CA.
type Leaf struct {
	Cert *x509.Certificate
	// CertPEM is the leaf certificate PEM.
	CertPEM []byte
	// KeyPEM is the PKCS#8 private key PEM.
	KeyPEM []byte
	key    crypto.Signer
}

// LeafOpts tunes an issued leaf; zero values give a server certificate for
// localhost, 127.0.0.1 and ::1 valid from an hour ago for a day.
type LeafOpts struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	NotBefore  time.Time
	NotAfter   time.Time
	// Client makes a client-auth certificate instead of a server one.
	Client bool
}

// NewCA creates a self-signed ECDSA P-256 CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("certstest: create CA: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certstest: parse CA: %v", err)
	}
	return &CA{Cert: c, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a new leaf with a fresh key and a random serial.
func (ca *CA) Issue(t testing.TB, o LeafOpts) *Leaf {
	t.Helper()
	key := newKey(t)
	if o.CommonName == "" {
		o.CommonName = "localhost"
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: o.CommonName},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	if o.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if len(tmpl.DNSNames) == 0 && len(tmpl.IPAddresses) == 0 {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("certstest: issue %q: %v", o.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certstest: parse leaf: %v", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("certstest: marshal key: %v", err)
	}
	return &Leaf{
		Cert:    c,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		key:     key,
	}
}

// TLS returns the leaf as a tls.Certificate (for a client).
func (l *Leaf) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.key, Leaf: l.Cert}
}

// WriteAtomic writes data to path through a temporary file and a rename,
// as editors and config tools do.
func WriteAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatalf("certstest: write %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("certstest: rename %s: %v", path, err)
	}
}

// WritePair writes the leaf to dir/tls.crt and dir/tls.key (atomically) and
// returns the two paths.
func WritePair(t testing.TB, dir string, l *Leaf) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	WriteAtomic(t, certFile, l.CertPEM)
	WriteAtomic(t, keyFile, l.KeyPEM)
	return certFile, keyFile
}

// SecretVolume reproduces a Kubernetes Secret volume in dir: each update
// goes to a new timestamped directory, a "..data_tmp" symlink to it is
// renamed atomically over "..data", and the visible files are symlinks
// "name -> ..data/name".
type SecretVolume struct {
	Dir string
	t   testing.TB
	gen int
	cur string
}

// NewSecretVolume creates the volume with its first content.
func NewSecretVolume(t testing.TB, dir string, files map[string][]byte) *SecretVolume {
	t.Helper()
	v := &SecretVolume{Dir: dir, t: t}
	v.Update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatalf("certstest: symlink %s: %v", name, err)
		}
	}
	return v
}

// Update swaps in new content the way the kubelet does.
func (v *SecretVolume) Update(files map[string][]byte) {
	t := v.t
	t.Helper()
	v.gen++
	ts := "..2026_11_26_12_00_00." + strconv.Itoa(v.gen)
	tsDir := filepath.Join(v.Dir, ts)
	if err := os.Mkdir(tsDir, 0o755); err != nil {
		t.Fatalf("certstest: mkdir %s: %v", tsDir, err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tsDir, name), data, 0o600); err != nil {
			t.Fatalf("certstest: write %s: %v", name, err)
		}
	}
	tmpLink := filepath.Join(v.Dir, "..data_tmp")
	if err := os.Symlink(ts, tmpLink); err != nil {
		t.Fatalf("certstest: symlink ..data_tmp: %v", err)
	}
	if err := os.Rename(tmpLink, filepath.Join(v.Dir, "..data")); err != nil {
		t.Fatalf("certstest: rename ..data: %v", err)
	}
	if v.cur != "" {
		if err := os.RemoveAll(filepath.Join(v.Dir, v.cur)); err != nil {
			t.Fatalf("certstest: remove old %s: %v", v.cur, err)
		}
	}
	v.cur = ts
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("certstest: key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("certstest: serial: %v", err)
	}
	return n
}
