package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config selects the serving certificate's source. With CertFile and KeyFile
// empty the store generates a self-signed certificate for Hostnames.
type Config struct {
	// CertFile is the PEM certificate chain, leaf first (--cert).
	CertFile string
	// KeyFile is the PEM private key of the leaf (--key).
	KeyFile string
	// Hostnames are the SANs of a self-signed certificate (--hostname);
	// empty means DefaultHostnames().
	Hostnames []string
	// SelfSignedValidity is the lifetime of a self-signed certificate;
	// 0 means DefaultSelfSignedValidity.
	SelfSignedValidity time.Duration
	// CheckInterval is the period of the content check (--cert-check-interval);
	// 0 means DefaultCheckInterval, negative disables it.
	CheckInterval time.Duration
	// Debounce is the quiet time after file events before reading; 0 means
	// DefaultDebounce.
	Debounce time.Duration
	// NoWatch disables fsnotify (periodic check and Reload only).
	NoWatch bool
}

// Deps are the store's collaborators.
type Deps struct {
	// Logger receives reload events; nil discards them.
	Logger *slog.Logger
	// Registry receives the outrigger_cert_* metrics; nil skips registration.
	Registry prometheus.Registerer
	// Now is the clock used for validity checks; nil means time.Now.
	Now func() time.Time
}

func (d *Deps) defaults() {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
}

// ErrNoCertificate is returned by Ready and GetCertificate when no valid
// certificate was ever loaded.
var ErrNoCertificate = errors.New("no valid certificate")

// Store serves the current serving certificate. Its methods are safe for
// concurrent use.
type Store struct {
	cur        atomic.Pointer[tls.Certificate]
	selfSigned bool
	r          *reloader // nil for a self-signed store
}

// New builds a store and loads the initial certificate; it fails if the
// files cannot be read or do not form a valid pair (the error names them).
func New(cfg Config, deps Deps) (*Store, error) {
	deps.defaults()
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("certs: register metrics: %w", err)
	}
	s := &Store{}
	switch {
	case cfg.CertFile == "" && cfg.KeyFile == "":
		c, err := SelfSigned(cfg.Hostnames, deps.Now(), cfg.SelfSignedValidity)
		if err != nil {
			return nil, err
		}
		s.selfSigned = true
		s.cur.Store(c)
		m.reloads.WithLabelValues(kindServing, "success").Inc()
		m.lastSuccess.WithLabelValues(kindServing).Set(float64(deps.Now().Unix()))
		m.expiry.WithLabelValues(kindServing).Set(float64(c.Leaf.NotAfter.Unix()))
		return s, nil
	case cfg.CertFile == "":
		return nil, errors.New("certs: a key file is given but no certificate file")
	case cfg.KeyFile == "":
		return nil, errors.New("certs: a certificate file is given but no key file")
	}
	s.r = &reloader{
		kind:     kindServing,
		files:    []string{cfg.CertFile, cfg.KeyFile},
		interval: cfg.CheckInterval,
		debounce: cfg.Debounce,
		noWatch:  cfg.NoWatch,
		logger:   deps.Logger,
		m:        m,
		now:      deps.Now,
	}
	s.r.apply = s.apply
	s.r.init()
	if err := s.r.load(reasonInitial); err != nil {
		return nil, err
	}
	return s, nil
}

// apply parses a cert/key pair and publishes it. A pair that is already
// expired (or not yet valid) is refused while the current one is valid,
// because swapping a working certificate for a broken one only hurts; when
// nothing valid is serving, it is published with a warning.
func (s *Store) apply(data [][]byte, initial bool) (loadInfo, error) {
	c, err := ParsePair(data[0], data[1])
	if err != nil {
		return loadInfo{}, err
	}
	now := s.r.now()
	if verr := CheckValidity(c.Leaf, now); verr != nil {
		if old := s.cur.Load(); !initial && old != nil && CheckValidity(old.Leaf, now) == nil {
			return loadInfo{}, verr
		}
		s.r.logger.Warn("serving a certificate outside its validity period", "err", verr)
	}
	s.cur.Store(c)
	return loadInfo{
		notAfter: c.Leaf.NotAfter,
		attrs: []any{"subject", c.Leaf.Subject.String(), "serial", c.Leaf.SerialNumber.String(),
			"sha256", Fingerprint(c.Leaf.Raw)},
	}, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cur.Load(); c != nil {
		return c, nil
	}
	return nil, ErrNoCertificate
}

// Current returns the certificate being served (nil if none).
func (s *Store) Current() *tls.Certificate { return s.cur.Load() }

// Ready returns ErrNoCertificate if no valid certificate was ever loaded.
// A failed reload does not make the store unready: the old one serves.
func (s *Store) Ready() error {
	if s.cur.Load() == nil {
		return ErrNoCertificate
	}
	return nil
}

// SelfSigned reports whether the store serves a generated certificate.
func (s *Store) SelfSigned() bool { return s.selfSigned }

// Reload asks the Run loop to re-read the files now (SIGHUP). It does not
// block; bursts coalesce. It is a no-op for a self-signed store.
func (s *Store) Reload() {
	if s.r != nil {
		s.r.request(reasonExplicit)
	}
}

// Run watches the files until ctx ends and always returns nil then. For a
// self-signed store it only waits.
func (s *Store) Run(ctx context.Context) error {
	if s.r == nil {
		<-ctx.Done()
		return nil
	}
	return s.r.run(ctx)
}
