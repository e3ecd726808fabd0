package certs

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
)

func TestParsePair(t *testing.T) {
	ca := certstest.NewCA(t, "test CA")
	a := ca.Issue(t, certstest.LeafOpts{})
	b := ca.Issue(t, certstest.LeafOpts{})
	chain := append(append([]byte{}, a.CertPEM...), ca.PEM...)
	truncated := a.CertPEM[:len(a.CertPEM)/2]
	corruptIntermediate := append(append([]byte{}, a.CertPEM...),
		[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")...)

	tests := []struct {
		name      string
		cert, key []byte
		wantErr   string // substring; empty = success
		chainLen  int
	}{
		{name: "valid", cert: a.CertPEM, key: a.KeyPEM, chainLen: 1},
		{name: "valid with chain", cert: chain, key: a.KeyPEM, chainLen: 2},
		{name: "empty cert", cert: nil, key: a.KeyPEM, wantErr: "certificate PEM is empty"},
		{name: "whitespace cert", cert: []byte(" \n\t"), key: a.KeyPEM, wantErr: "certificate PEM is empty"},
		{name: "empty key", cert: a.CertPEM, key: []byte{}, wantErr: "private key PEM is empty"},
		{name: "garbage cert", cert: []byte("not a pem"), key: a.KeyPEM, wantErr: "parse key pair"},
		{name: "truncated cert", cert: truncated, key: a.KeyPEM, wantErr: "parse key pair"},
		{name: "mismatched key", cert: a.CertPEM, key: b.KeyPEM, wantErr: "does not match"},
		{name: "key as cert", cert: a.KeyPEM, key: a.KeyPEM, wantErr: "parse key pair"},
		{name: "cert as key", cert: a.CertPEM, key: a.CertPEM, wantErr: "parse key pair"},
		{name: "corrupt intermediate", cert: corruptIntermediate, key: a.KeyPEM, wantErr: "chain certificate 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParsePair(tt.cert, tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePair error = %v, want containing %q", err, tt.wantErr)
				}
				if c != nil {
					t.Fatalf("ParsePair returned a certificate with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePair: %v", err)
			}
			if c.Leaf == nil || c.Leaf.SerialNumber.Cmp(a.Cert.SerialNumber) != 0 {
				t.Fatalf("leaf not set to the issued certificate")
			}
			if len(c.Certificate) != tt.chainLen {
				t.Fatalf("chain length = %d, want %d", len(c.Certificate), tt.chainLen)
			}
		})
	}
}

func TestParseCAPool(t *testing.T) {
	ca1 := certstest.NewCA(t, "one")
	ca2 := certstest.NewCA(t, "two")
	leaf := ca1.Issue(t, certstest.LeafOpts{})
	tests := []struct {
		name    string
		bundle  []byte
		wantErr string
	}{
		{name: "one CA", bundle: ca1.PEM},
		{name: "two CAs", bundle: append(append([]byte{}, ca1.PEM...), ca2.PEM...)},
		{name: "CA with key block ignored", bundle: append(append([]byte{}, leaf.KeyPEM...), ca1.PEM...)},
		{name: "empty", bundle: nil, wantErr: "no PEM CERTIFICATE"},
		{name: "garbage", bundle: []byte("hello"), wantErr: "no PEM CERTIFICATE"},
		{name: "only a key", bundle: leaf.KeyPEM, wantErr: "no PEM CERTIFICATE"},
		{name: "corrupt cert", bundle: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), wantErr: "parse CA certificate 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, earliest, err := ParseCAPool(tt.bundle)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || pool == nil || earliest.IsZero() {
				t.Fatalf("ParseCAPool = %v, %v, %v", pool, earliest, err)
			}
		})
	}
}

func TestCheckValidity(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	now := time.Now()
	tests := []struct {
		name    string
		opts    certstest.LeafOpts
		wantErr string
	}{
		{name: "valid", opts: certstest.LeafOpts{}},
		{name: "expired", opts: certstest.LeafOpts{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}, wantErr: "expired"},
		{name: "not yet valid", opts: certstest.LeafOpts{NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}, wantErr: "not valid before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckValidity(ca.Issue(t, tt.opts).Cert, now)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("CheckValidity = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if CheckValidity(nil, now) == nil {
		t.Fatal("nil leaf accepted")
	}
}

func TestFingerprint(t *testing.T) {
	got := Fingerprint([]byte("abc"))
	// sha256("abc") = ba7816bf...
	if !strings.HasPrefix(got, "BA:78:16:BF:") || len(got) != 32*3-1 {
		t.Fatalf("Fingerprint = %q", got)
	}
}

func FuzzParsePair(f *testing.F) {
	ca := certstest.NewCA(f, "fuzz CA")
	a := ca.Issue(f, certstest.LeafOpts{})
	f.Add(a.CertPEM, a.KeyPEM)
	f.Add(append(append([]byte{}, a.CertPEM...), ca.PEM...), a.KeyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\n"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		c, err := ParsePair(certPEM, keyPEM)
		if err != nil {
			if c != nil {
				t.Fatal("certificate returned with error")
			}
			return
		}
		if c.Leaf == nil || len(c.Certificate) == 0 || c.PrivateKey == nil {
			t.Fatal("accepted pair is incomplete")
		}
		if !bytes.Equal(c.Leaf.Raw, c.Certificate[0]) {
			t.Fatal("leaf does not match the first certificate")
		}
	})
}

func FuzzParseCAPool(f *testing.F) {
	ca := certstest.NewCA(f, "fuzz CA")
	f.Add(ca.PEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, bundle []byte) {
		pool, earliest, err := ParseCAPool(bundle)
		if err == nil && (pool == nil || earliest.IsZero()) {
			t.Fatal("accepted bundle without pool or expiry")
		}
	})
}
