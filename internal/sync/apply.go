package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/atomicfile"
	"github.com/outrigger-sidecar/outrigger/internal/format"
	"github.com/outrigger-sidecar/outrigger/internal/reload"
	"github.com/outrigger-sidecar/outrigger/internal/source"
)

// errEmpty rejects empty content unless --allow-empty.
var errEmpty = errors.New("empty config rejected (a source that lost its data must not blank the app; use --allow-empty if this is intended)")

// apply runs the transaction for one version and returns its outcome ("" =
// nothing to do: same content, or a version already rejected) and error.
func (s *Syncer) apply(ctx context.Context, c source.Config) (string, error) {
	hash := s.contentHash(c)
	log := s.log.With("version", c.Version)
	if s.cur.valid && hash == s.cur.hash {
		if s.cur.version != c.Version {
			s.cur.version = c.Version
			log.Info("sync: dest already holds this content; nothing written")
			s.commitStatus(c.Version, hash, false)
			s.report(ctx, c.Version, OutcomeApplied, nil)
		}
		return "", nil
	}
	key := c.Version + "/" + hash
	if s.rejected[key] {
		log.Debug("sync: version was rejected before; waiting for a newer one")
		return "", nil
	}
	s.mu.Lock()
	s.st.LastAttempted, s.st.LastAttemptTime = c.Version, s.now()
	s.mu.Unlock()

	if err := s.validate(c); err != nil {
		err = fmt.Errorf("sync: version %s rejected: %w", c.Version, err)
		return s.reject(ctx, log, key, c.Version, OutcomeRejected, err)
	}
	log.Info("sync: version validated", "format", s.format.String())
	if err := s.check(ctx, c); err != nil {
		err = fmt.Errorf("sync: version %s rejected: %w", c.Version, err)
		return s.reject(ctx, log, key, c.Version, OutcomeRejected, err)
	}
	if s.cfg.Check != "" {
		log.Info("sync: check passed", "check", s.cfg.Check)
	}

	hadPrev := s.destExists
	if err := s.write(c); err != nil {
		err = fmt.Errorf("sync: version %s: write: %w", c.Version, err)
		return s.fail(ctx, log, c.Version, err)
	}
	s.destExists = true
	s.lastApply = time.Now()
	log.Info("sync: version written", "sha256", hash)

	err := s.reloadApp(ctx, log)
	if err == nil {
		err = s.verify(ctx, log)
	}
	if err != nil && ctx.Err() != nil {
		// Shutting down mid-transaction: the file holds the new version, but
		// it was not verified; neither an outcome nor a rollback.
		s.cur = applied{valid: true, version: c.Version, hash: hash, files: c.Files}
		log.Warn("sync: shutdown interrupted the transaction; version written but not verified", "err", err)
		return "", fmt.Errorf("sync: version %s: %w", c.Version, err)
	}
	if err != nil {
		err = fmt.Errorf("sync: version %s: %w", c.Version, err)
		if s.cfg.Rollback {
			if hadPrev {
				return s.rollback(ctx, log, key, c, err)
			}
			log.Error("sync: cannot roll back: dest did not exist before this version", "err", err)
		}
		// The file holds the new version: do not re-apply it.
		s.cur = applied{valid: true, version: c.Version, hash: hash, files: c.Files}
		s.commitStatus(c.Version, hash, false)
		return s.fail(ctx, log, c.Version, err)
	}
	s.cur = applied{valid: true, version: c.Version, hash: hash, files: c.Files}
	s.commitStatus(c.Version, hash, true)
	s.m.applies.WithLabelValues(OutcomeApplied).Inc()
	s.m.lastSuccess.Set(float64(s.now().UnixNano()) / 1e9)
	log.Info("sync: version applied")
	s.report(ctx, c.Version, OutcomeApplied, nil)
	return OutcomeApplied, nil
}

// validate checks emptiness and the format of every file.
func (s *Syncer) validate(c source.Config) error {
	if !s.cfg.Bundle {
		if len(c.Data) == 0 && !s.cfg.AllowEmpty {
			return errEmpty
		}
		if err := format.Validate(s.format, c.Data); err != nil {
			return fmt.Errorf("--format %s: %w", s.format, err)
		}
		return nil
	}
	if len(c.Files) == 0 {
		return errors.New("bundle has no files")
	}
	for name, data := range c.Files {
		if err := atomicfile.ValidateName(name); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if len(data) == 0 && !s.cfg.AllowEmpty {
			return fmt.Errorf("bundle file %q: %w", name, errEmpty)
		}
		f, err := inferFormat(s.cfg.Format, name)
		if err != nil {
			return err
		}
		if err := format.Validate(f, data); err != nil {
			return fmt.Errorf("bundle file %q: --format %s: %w", name, f, err)
		}
	}
	return nil
}

// check runs --check against a candidate written beside Dest (same file
// system, same extension); "{}" is replaced by its quoted path, which is
// also in $OUTRIGGER_CANDIDATE.
func (s *Syncer) check(ctx context.Context, c source.Config) error {
	if s.cfg.Check == "" {
		return nil
	}
	dir, base := filepath.Split(s.cfg.Dest)
	if dir == "" {
		dir = "."
	}
	var candidate string
	if s.cfg.Bundle {
		d, err := os.MkdirTemp(dir, "."+base+".candidate-*")
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		defer os.RemoveAll(d)
		for name, data := range c.Files {
			if err := os.WriteFile(filepath.Join(d, name), data, 0o600); err != nil {
				return fmt.Errorf("check: %w", err)
			}
		}
		candidate = d
	} else {
		f, err := os.CreateTemp(dir, "."+base+".candidate-*"+filepath.Ext(base))
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(c.Data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("check: %w", werr)
		}
		candidate = f.Name()
	}
	script := strings.ReplaceAll(s.cfg.Check, "{}", shellQuote(candidate))
	env := append(os.Environ(), "OUTRIGGER_CANDIDATE="+candidate)
	out, err := reload.RunShell(ctx, script, s.cfg.CheckTimeout, env, "")
	if err != nil {
		if out != "" {
			return fmt.Errorf("check %q: %w: %s", s.cfg.Check, err, out)
		}
		return fmt.Errorf("check %q: %w", s.cfg.Check, err)
	}
	return nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (s *Syncer) write(c source.Config) error {
	if s.cfg.Bundle {
		return atomicfile.WriteDir(s.cfg.Dest, c.Files, s.fileOpts)
	}
	return atomicfile.Write(s.cfg.Dest, c.Data, s.fileOpts)
}

// reloadApp tells the app, retrying with backoff.
func (s *Syncer) reloadApp(ctx context.Context, log *slog.Logger) error {
	if s.reloader == nil {
		return nil
	}
	start := time.Now()
	defer func() { s.m.reloadSeconds.Observe(time.Since(start).Seconds()) }()
	bo := backoff{min: 200 * time.Millisecond, max: 5 * time.Second}
	var err error
	for attempt := 0; attempt <= s.cfg.ReloadRetries; attempt++ {
		if attempt > 0 && !sleep(ctx, bo.next()) {
			break
		}
		if err = s.reloader.Reload(ctx); err == nil {
			s.mu.Lock()
			s.st.Reloads++
			s.mu.Unlock()
			log.Info("sync: app reloaded", "reload", s.reloader.String(), "attempt", attempt+1)
			return nil
		}
		log.Warn("sync: reload failed", "reload", s.reloader.String(), "attempt", attempt+1, "err", err)
	}
	if err == nil {
		err = ctx.Err() // interrupted before the first attempt
	}
	return fmt.Errorf("reload failed after %d attempts: %w", s.cfg.ReloadRetries+1, err)
}

// verify polls --health until HealthSuccesses consecutive 2xx answers, or
// fails after --health-timeout.
func (s *Syncer) verify(ctx context.Context, log *slog.Logger) error {
	if s.cfg.Health == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
	defer cancel()
	var last error
	ok := 0
	for {
		// Wait first: the app reloads asynchronously after the signal.
		if !sleep(ctx, s.cfg.HealthInterval) {
			break
		}
		err := s.probe(ctx)
		if err == nil {
			if ok++; ok >= s.cfg.HealthSuccesses {
				log.Info("sync: app healthy", "health", s.cfg.Health)
				return nil
			}
			continue
		}
		ok = 0
		if ctx.Err() != nil && last != nil {
			break // keep the app's last real answer rather than our deadline
		}
		last = err
	}
	if last == nil {
		last = ctx.Err()
	}
	return fmt.Errorf("health %s not 2xx within %s: %w", s.cfg.Health, s.cfg.HealthTimeout, last)
}

func (s *Syncer) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.Health, nil)
	if err != nil {
		return err
	}
	resp, err := s.health.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// rollback restores the previous content, reloads and verifies again, and
// marks the version rejected.
func (s *Syncer) rollback(ctx context.Context, log *slog.Logger, key string, c source.Config, cause error) (string, error) {
	log.Warn("sync: rolling back", "err", cause)
	var err error
	if s.cfg.Bundle {
		if !s.cur.valid || s.cur.files == nil {
			err = errors.New("no previous bundle known")
		} else {
			err = atomicfile.WriteDir(s.cfg.Dest, s.cur.files, s.fileOpts)
		}
	} else {
		err = atomicfile.Restore(s.cfg.Dest, s.fileOpts)
	}
	if err != nil {
		err = fmt.Errorf("%w; rollback failed: %w", cause, err)
		log.Error("sync: rollback failed; the new version stays", "err", err)
		s.cur = applied{valid: true, version: c.Version, hash: s.contentHash(c), files: c.Files}
		s.commitStatus(c.Version, s.cur.hash, false)
		return s.fail(ctx, log, c.Version, err)
	}
	if rerr := s.reloadApp(ctx, log); rerr != nil {
		cause = fmt.Errorf("%w; after rollback: %w", cause, rerr)
	} else if verr := s.verify(ctx, log); verr != nil {
		cause = fmt.Errorf("%w; after rollback: %w", cause, verr)
	}
	prev := s.cur.version
	if prev == "" {
		prev = "baseline"
	}
	err = fmt.Errorf("%w (rolled back to %s)", cause, prev)
	return s.reject(ctx, log, key, c.Version, OutcomeRolledBack, err)
}

// reject records a version that must not be retried.
func (s *Syncer) reject(ctx context.Context, log *slog.Logger, key, version, outcome string, err error) (string, error) {
	s.rejected[key] = true
	if len(s.rejected) > 1000 { // bound memory under a hostile source
		clear(s.rejected)
		s.rejected[key] = true
	}
	log.Error("sync: version "+strings.ReplaceAll(outcome, "_", " "), "err", err)
	s.recordOutcome(version, outcome, err)
	s.mu.Lock()
	s.st.Rejected = append(s.st.Rejected, version)
	if n := len(s.st.Rejected); n > 20 {
		s.st.Rejected = s.st.Rejected[n-20:]
	}
	s.mu.Unlock()
	s.report(ctx, version, outcome, err)
	return outcome, err
}

func (s *Syncer) fail(ctx context.Context, log *slog.Logger, version string, err error) (string, error) {
	log.Error("sync: version failed", "err", err)
	s.recordOutcome(version, OutcomeFailed, err)
	s.report(ctx, version, OutcomeFailed, err)
	return OutcomeFailed, err
}

func (s *Syncer) recordOutcome(version, outcome string, err error) {
	s.m.applies.WithLabelValues(outcome).Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Outcomes[outcome]++
	s.st.LastOutcome = outcome
	s.st.LastError = ""
	if err != nil {
		s.st.LastError = err.Error()
	}
}

// commitStatus records the version in effect.
func (s *Syncer) commitStatus(version, hash string, written bool) {
	s.m.setVersion(version)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hasConf = true
	s.st.Version, s.st.SHA256 = version, hash
	s.st.Baseline = s.st.Baseline && version == ""
	if written {
		s.st.Outcomes[OutcomeApplied]++
		s.st.LastOutcome, s.st.LastError, s.st.LastAppliedTime = OutcomeApplied, "", now
	}
}

// report tells a source that accepts reports (the config API) the outcome.
func (s *Syncer) report(ctx context.Context, version, outcome string, err error) {
	r, ok := s.src.(source.Reporter)
	if !ok || ctx.Err() != nil {
		return
	}
	st := source.Status{Sidecar: s.cfg.SidecarID, Version: version, Outcome: outcome, Time: s.now().UTC()}
	if err != nil {
		st.Error = err.Error()
	}
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if rerr := r.Report(rctx, st); rerr != nil {
		s.log.Warn("sync: status report failed", "version", version, "outcome", outcome, "err", rerr)
	}
}
