package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// CAConfig selects the client-CA bundle.
type CAConfig struct {
	// File is the PEM bundle of CAs that may issue client certificates
	// (--client-ca).
	File string
	// CheckInterval, Debounce and NoWatch work as in Config.
	CheckInterval time.Duration
	Debounce      time.Duration
	NoWatch       bool
}

// CAPool holds the current client-CA pool and reloads it like a Store
// reloads its certificate. Its methods are safe for concurrent use.
type CAPool struct {
	cur atomic.Pointer[x509.CertPool]
	r   *reloader
}

// poolConfig is the per-handshake config built for one pool generation, so
// a handshake does not clone a tls.Config.
type poolConfig struct {
	pool *x509.CertPool
	cfg  *tls.Config
}

// NewCAPool loads the bundle; it fails if the file is unreadable or holds no
// parsable certificate.
func NewCAPool(cfg CAConfig, deps Deps) (*CAPool, error) {
	if cfg.File == "" {
		return nil, errors.New("certs: no client CA file given")
	}
	deps.defaults()
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("certs: register metrics: %w", err)
	}
	p := &CAPool{}
	p.r = &reloader{
		kind:     kindClientCA,
		files:    []string{cfg.File},
		interval: cfg.CheckInterval,
		debounce: cfg.Debounce,
		noWatch:  cfg.NoWatch,
		logger:   deps.Logger,
		m:        m,
		now:      deps.Now,
	}
	p.r.apply = p.apply
	p.r.init()
	if err := p.r.load(reasonInitial); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *CAPool) apply(data [][]byte, _ bool) (loadInfo, error) {
	pool, earliest, err := ParseCAPool(data[0])
	if err != nil {
		return loadInfo{}, err
	}
	p.cur.Store(pool)
	return loadInfo{notAfter: earliest}, nil
}

// Pool returns the current pool.
func (p *CAPool) Pool() *x509.CertPool { return p.cur.Load() }

// Reload asks the Run loop to re-read the bundle now; it does not block.
func (p *CAPool) Reload() { p.r.request(reasonExplicit) }

// Run watches the bundle until ctx ends and returns nil then.
func (p *CAPool) Run(ctx context.Context) error { return p.r.run(ctx) }

// ServerConfig returns a copy of base whose handshakes verify client
// certificates with auth against the pool current at handshake time, so a
// reloaded bundle takes effect for new handshakes without a restart. TLS 1.3
// session resumption re-verifies the stored chain against that pool too
// (crypto/tls does this for ClientAuth >= VerifyClientCertIfGiven). base
// must not set GetConfigForClient.
func (p *CAPool) ServerConfig(base *tls.Config, auth tls.ClientAuthType) *tls.Config {
	outer := base.Clone()
	outer.ClientAuth = auth
	outer.ClientCAs = p.Pool()
	var cached atomic.Pointer[poolConfig]
	outer.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool := p.Pool()
		if c := cached.Load(); c != nil && c.pool == pool {
			return c.cfg, nil
		}
		inner := base.Clone()
		inner.ClientAuth = auth
		inner.ClientCAs = pool
		inner.GetConfigForClient = nil
		cached.Store(&poolConfig{pool: pool, cfg: inner})
		return inner, nil
	}
	return outer
}
