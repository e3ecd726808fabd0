package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ParsePair parses a PEM certificate chain (leaf first, intermediates after)
// and a PEM private key, and checks that the key matches the leaf. The
// returned certificate has Leaf set. It never returns a partially usable
// certificate: every certificate of the chain must parse.
func ParsePair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	if len(bytes.TrimSpace(certPEM)) == 0 {
		return nil, errors.New("certificate PEM is empty")
	}
	if len(bytes.TrimSpace(keyPEM)) == 0 {
		return nil, errors.New("private key PEM is empty")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse key pair: %w", err)
	}
	if len(pair.Certificate) == 0 {
		return nil, errors.New("certificate PEM holds no certificate")
	}
	if pair.Leaf == nil {
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("parse leaf certificate: %w", err)
		}
		pair.Leaf = leaf
	}
	// X509KeyPair parses only the leaf; a corrupt intermediate would be sent
	// to every client and break verification, so refuse it here.
	for i, der := range pair.Certificate[1:] {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("parse chain certificate %d: %w", i+1, err)
		}
	}
	return &pair, nil
}

// ParseCAPool parses a PEM bundle of CA certificates. Blocks that are not
// CERTIFICATE blocks are ignored; a bundle without any certificate, or with
// a certificate that does not parse, is an error. It also returns the
// earliest NotAfter among the certificates (for the expiry metric).
func ParseCAPool(bundle []byte) (*x509.CertPool, time.Time, error) {
	pool := x509.NewCertPool()
	var earliest time.Time
	n := 0
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("parse CA certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		if earliest.IsZero() || c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
		n++
	}
	if n == 0 {
		return nil, time.Time{}, errors.New("no PEM CERTIFICATE block found")
	}
	return pool, earliest, nil
}

// CheckValidity reports whether the leaf is within its validity period at
// now.
func CheckValidity(leaf *x509.Certificate, now time.Time) error {
	if leaf == nil {
		return errors.New("no leaf certificate")
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate in the
// colon-separated upper-case form printed by
// `openssl x509 -noout -fingerprint -sha256`.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(h)/2)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
