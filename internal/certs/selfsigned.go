package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// DefaultSelfSignedValidity is how long a generated self-signed certificate
// is valid.
const DefaultSelfSignedValidity = 365 * 24 * time.Hour

// selfSignedBackdate absorbs clock skew between the proxy and its clients.
const selfSignedBackdate = time.Hour

// DefaultHostnames returns the names a self-signed certificate covers when
// none are given: localhost, 127.0.0.1, ::1 and os.Hostname() if known.
func DefaultHostnames() []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	return names
}

// SelfSigned generates an ECDSA P-256 certificate, valid from now-1h for
// validity, whose SANs are hosts (IP literals become IP SANs, everything
// else DNS SANs). It is for development only: nothing trusts it.
func SelfSigned(hosts []string, now time.Time, validity time.Duration) (*tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = DefaultHostnames()
	}
	if validity <= 0 {
		validity = DefaultSelfSignedValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("self-signed: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("self-signed: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"Outrigger self-signed (not for production)"}},
		NotBefore:             now.Add(-selfSignedBackdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-signed for %q: create: %w", hosts, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("self-signed: parse: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
