package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/atomicfile"
	"github.com/outrigger-sidecar/outrigger/internal/format"
	"github.com/outrigger-sidecar/outrigger/internal/reload"
	"github.com/outrigger-sidecar/outrigger/internal/source"
)

// Source is what the sync role needs from a config source; every
// internal/source implementation satisfies it. If it also implements
// io.Closer, Run closes it; if it implements source.Reporter, every outcome
// is reported to it.
type Source interface {
	Get(ctx context.Context) (source.Config, error)
	Watch(ctx context.Context, after string) (source.Config, error)
	String() string
}

// Deps are the Syncer's collaborators.
type Deps struct {
	// Logger receives one JSON event per step; nil discards.
	Logger *slog.Logger
	// Registry receives the outrigger_sync_* metrics; nil = not exported.
	Registry prometheus.Registerer
	// Clock returns the current time for timestamps and staleness (default time.Now).
	Clock func() time.Time
	// Source replaces opening cfg.Source (embedding, tests).
	Source Source
	// HTTPClient is used for --health (default: a plain client; each poll
	// carries its own deadline).
	HTTPClient *http.Client
}

// Timing of source retries and status reports.
const (
	sourceBackoffMin = 500 * time.Millisecond
	sourceBackoffMax = 30 * time.Second
	getTimeout       = 30 * time.Second
	reportTimeout    = 5 * time.Second
	writeRetryMax    = time.Minute
	onceAttempts     = 5
)

// Status is a snapshot of the Syncer for the admin /status page.
type Status struct {
	Source          string           `json:"source"`
	Dest            string           `json:"dest"`
	Version         string           `json:"version"`
	SHA256          string           `json:"sha256,omitempty"`
	Baseline        bool             `json:"baseline,omitempty"` // Dest was kept from before start
	LastAttempted   string           `json:"last_attempted,omitempty"`
	LastOutcome     string           `json:"last_outcome,omitempty"`
	LastError       string           `json:"last_error,omitempty"`
	LastAttemptTime time.Time        `json:"last_attempt_time,omitzero"`
	LastAppliedTime time.Time        `json:"last_applied_time,omitzero"`
	LastSourceOK    time.Time        `json:"last_source_ok,omitzero"`
	SourceErrors    int64            `json:"source_errors"`
	LastSourceError string           `json:"last_source_error,omitempty"`
	Reloads         int64            `json:"reloads"`
	Outcomes        map[string]int64 `json:"outcomes"`
	Rejected        []string         `json:"rejected,omitempty"`
}

// applied is the content in effect at Dest, owned by the apply loop.
type applied struct {
	valid   bool // Dest holds a valid config we know the hash of
	version string
	hash    string
	files   map[string][]byte // bundles only, for rollback
}

// Syncer runs the sync role. Build it with New, run it with Run.
type Syncer struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	src      Source
	format   format.Format // single-file format
	reloader reload.Reloader
	fileOpts atomicfile.Options
	m        *metrics
	health   *http.Client
	started  time.Time
	running  atomic.Bool
	retryMin time.Duration // first source retry delay (tests shorten it)

	pending chan source.Config // 1-slot, newest wins
	resync  chan struct{}      // 1-slot

	// Owned by the apply loop.
	cur        applied
	rejected   map[string]bool // version + "/" + hash
	lastApply  time.Time
	destExists bool

	mu      gosync.Mutex
	st      Status
	hasConf bool
}

// New builds a Syncer: it validates cfg, opens the source (without network
// I/O) and reads Dest as the baseline if it exists.
func New(cfg Config, deps Deps) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	s := &Syncer{
		cfg:      cfg,
		log:      deps.Logger,
		now:      deps.Clock,
		health:   deps.HTTPClient,
		pending:  make(chan source.Config, 1),
		resync:   make(chan struct{}, 1),
		rejected: map[string]bool{},
		retryMin: sourceBackoffMin,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.SidecarID == "" { // --sidecar-id not given: the host name (the pod name in Kubernetes)
		s.cfg.SidecarID, _ = os.Hostname()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.health == nil {
		s.health = &http.Client{}
	}
	var err error
	if s.format, err = inferFormat(cfg.Format, cfg.Dest); err != nil {
		return nil, fmt.Errorf("sync: --format %q: %w", cfg.Format, err)
	}
	mode, _ := ParseMode(cfg.Mode) // validated
	uid, gid, err := ParseOwner(cfg.Owner)
	if err != nil {
		return nil, fmt.Errorf("sync: --owner %q: %w", cfg.Owner, err)
	}
	s.fileOpts = atomicfile.Options{Mode: mode, UID: uid, GID: gid, Keep: cfg.Keep}
	if s.reloader, err = buildReloader(cfg); err != nil {
		return nil, err
	}
	dir := filepath.Dir(cfg.Dest)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("sync: --dest %q: directory %q must exist: %w", cfg.Dest, dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("sync: --dest %q: %q must exist and be a directory", cfg.Dest, dir)
	}
	if s.m, err = newMetrics(deps.Registry, cfg.Dest); err != nil {
		return nil, err
	}
	s.src = deps.Source
	if s.src == nil {
		src, err := source.Open(cfg.Source, source.Options{
			Token: cfg.Token, TokenFile: cfg.TokenFile, CAFile: cfg.CA,
			ClientCert: cfg.ClientCert, ClientKey: cfg.ClientKey,
			Wait: cfg.Wait, Bundle: cfg.Bundle, Logger: s.log,
		})
		if err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
		s.src = src
	}
	s.log = s.log.With("source", s.src.String(), "dest", cfg.Dest)
	s.started = s.now()
	s.st = Status{Source: s.src.String(), Dest: cfg.Dest, Outcomes: map[string]int64{}}
	s.loadBaseline()
	return s, nil
}

func buildReloader(cfg Config) (reload.Reloader, error) {
	var m reload.Multi
	if cfg.PidFile != "" || cfg.Process != "" {
		sig, err := reload.ParseSignal(cmpOr(cfg.Signal, "HUP"))
		if err != nil {
			return nil, fmt.Errorf("sync: --signal: %w", err)
		}
		m = append(m, reload.Signal{PidFile: cfg.PidFile, Process: cfg.Process, Sig: sig})
	}
	if cfg.ReloadURL != "" {
		m = append(m, reload.HTTP{URL: cfg.ReloadURL, Timeout: cfg.ReloadTimeout})
	}
	if cfg.ReloadCmd != "" {
		m = append(m, reload.Command{Cmd: cfg.ReloadCmd, Timeout: cfg.ReloadTimeout})
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// loadBaseline adopts an existing, valid Dest as the content in effect.
func (s *Syncer) loadBaseline() {
	var (
		hash  string
		files map[string][]byte
		err   error
	)
	if s.cfg.Bundle {
		files, err = readBundle(s.cfg.Dest)
		if err == nil {
			hash = atomicfile.BundleHash(files)
			err = s.validate(source.Config{Files: files})
		}
	} else {
		var data []byte
		data, err = os.ReadFile(s.cfg.Dest)
		if err == nil {
			hash = sha(data)
			err = s.validate(source.Config{Data: data})
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.log.Info("sync: no existing config at dest; waiting for the source")
		return
	case err != nil:
		s.destExists = true
		s.log.Warn("sync: existing dest is not valid; it will be replaced", "err", err)
		return
	}
	s.destExists = true
	s.cur = applied{valid: true, hash: hash, files: files}
	s.mu.Lock()
	s.st.SHA256, s.st.Baseline, s.hasConf = hash, true, true
	s.mu.Unlock()
	s.log.Info("sync: existing dest is valid; keeping it as the baseline", "sha256", hash)
}

// readBundle reads the regular files of the directory link points to.
func readBundle(link string) (map[string][]byte, error) {
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("bundle %q: no files", link)
	}
	return files, nil
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// contentHash identifies c's content: SHA-256 of Data, or the bundle hash.
func (s *Syncer) contentHash(c source.Config) string {
	if s.cfg.Bundle {
		return atomicfile.BundleHash(c.Files)
	}
	return sha(c.Data)
}

// Run syncs until ctx ends (nil), or with Once applies the current version
// and returns, or with DryRun validates it and returns. It closes the source.
func (s *Syncer) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("sync: Run called twice")
	}
	if c, ok := s.src.(io.Closer); ok {
		defer c.Close()
	}
	switch {
	case s.cfg.DryRun:
		return s.runDry(ctx)
	case s.cfg.Once:
		return s.runOnce(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg gosync.WaitGroup
	wg.Go(func() { s.watchLoop(ctx) })
	wg.Go(func() { s.resyncLoop(ctx) })
	s.applyLoop(ctx)
	cancel()
	wg.Wait()
	return nil
}

// getWithRetry reads the current version, retrying source errors a few
// times (for --once and --dry-run).
func (s *Syncer) getWithRetry(ctx context.Context) (source.Config, error) {
	bo := backoff{min: s.retryMin, max: 10 * s.retryMin}
	var err error
	for attempt := 1; ; attempt++ {
		var c source.Config
		gctx, cancel := context.WithTimeout(ctx, getTimeout)
		c, err = s.src.Get(gctx)
		cancel()
		if err == nil {
			s.sourceOK()
			return c, nil
		}
		s.sourceError(err, "get")
		if attempt == onceAttempts || ctx.Err() != nil || errors.Is(err, source.ErrTooLarge) {
			return source.Config{}, fmt.Errorf("sync: read %s: %w", s.src, err)
		}
		if !sleep(ctx, bo.next()) {
			return source.Config{}, fmt.Errorf("sync: read %s: %w", s.src, err)
		}
	}
}

func (s *Syncer) runDry(ctx context.Context) error {
	c, err := s.getWithRetry(ctx)
	if err != nil {
		return err
	}
	log := s.log.With("version", c.Version)
	if err := s.validate(c); err != nil {
		log.Error("sync: dry run: version is invalid", "err", err)
		return fmt.Errorf("sync: dry run: version %s: %w", c.Version, err)
	}
	if err := s.check(ctx, c); err != nil {
		log.Error("sync: dry run: check rejected the version", "err", err)
		return fmt.Errorf("sync: dry run: version %s: %w", c.Version, err)
	}
	log.Info("sync: dry run: version is valid; nothing written")
	return nil
}

func (s *Syncer) runOnce(ctx context.Context) error {
	c, err := s.getWithRetry(ctx)
	if err != nil {
		return err
	}
	outcome, err := s.apply(ctx, c)
	if outcome == OutcomeApplied || (outcome == "" && err == nil) {
		return nil
	}
	return err
}

func (s *Syncer) sourceOK() {
	now := s.now()
	s.m.lastSourceOK.Set(float64(now.UnixNano()) / 1e9)
	s.mu.Lock()
	s.st.LastSourceOK = now
	s.st.LastSourceError = ""
	s.mu.Unlock()
}

func (s *Syncer) sourceError(err error, op string) {
	s.m.sourceErrors.Inc()
	s.mu.Lock()
	s.st.SourceErrors++
	s.st.LastSourceError = err.Error()
	s.mu.Unlock()
	msg := "sync: source " + op + " failed; keeping the current config"
	if errors.Is(err, source.ErrNotFound) || errors.Is(err, source.ErrDeleted) {
		msg = "sync: source has no config; keeping the current config"
	}
	s.log.Warn(msg, "err", err)
}

// Ready reports whether a config is in effect (applied, or a valid Dest
// found at start) and the source is not stale beyond --max-staleness.
func (s *Syncer) Ready() error {
	s.mu.Lock()
	has, lastOK := s.hasConf, s.st.LastSourceOK
	s.mu.Unlock()
	if !has {
		return fmt.Errorf("sync: no valid config at --dest %q yet", s.cfg.Dest)
	}
	if s.cfg.MaxStaleness > 0 {
		if lastOK.IsZero() {
			lastOK = s.started
		}
		if age := s.now().Sub(lastOK); age > s.cfg.MaxStaleness {
			return fmt.Errorf("sync: source %s last reached %s ago, beyond --max-staleness %s", s.src, age.Round(time.Second), s.cfg.MaxStaleness)
		}
	}
	return nil
}

// Status returns a snapshot (type Status) for the admin /status page.
func (s *Syncer) Status() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Outcomes = make(map[string]int64, len(s.st.Outcomes))
	for k, v := range s.st.Outcomes {
		st.Outcomes[k] = v
	}
	st.Rejected = slices.Clone(s.st.Rejected)
	return st
}
