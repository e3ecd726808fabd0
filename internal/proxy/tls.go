package proxy

import (
	"crypto/tls"

	"github.com/outrigger-sidecar/outrigger/internal/certs"
)

// tls12Suites are the only TLS 1.2 cipher suites offered: forward secret
// (ECDHE) and authenticated encryption (GCM, ChaCha20-Poly1305), so scanners
// find no CBC (LUCKY13) or static-RSA suites. TLS 1.3 suites are fixed by
// crypto/tls and all qualify.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// curves are the key exchanges offered: the hybrid post-quantum X25519MLKEM768
// (TLS 1.3 only), X25519, P-256 and P-384.
var curves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// serverTLSConfig builds the listener's TLS configuration. With a client-CA
// pool the returned config picks up a reloaded pool for each new handshake.
func serverTLSConfig(cfg *Config, store *certs.Store, cas *certs.CAPool) *tls.Config {
	base := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     tls12Suites,
		CurvePreferences: curves,
		GetCertificate:   store.GetCertificate,
		NextProtos:       []string{"http/1.1"},
	}
	if cfg.H2 {
		base.NextProtos = []string{"h2", "http/1.1"}
	}
	if cas == nil {
		return base
	}
	auth := tls.RequireAndVerifyClientCert
	if cfg.ClientAuth == ClientAuthOptional {
		auth = tls.VerifyClientCertIfGiven
	}
	return cas.ServerConfig(base, auth)
}
