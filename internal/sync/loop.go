package sync

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/source"
)

// offer puts c into the 1-slot pending channel, replacing what waits there
// unless that is numerically newer (the watch and the resync ticker race).
func (s *Syncer) offer(c source.Config) {
	for {
		select {
		case s.pending <- c:
			return
		default:
		}
		select {
		case old := <-s.pending:
			if olderNumeric(c.Version, old.Version) {
				c = old
			}
		default:
		}
	}
}

// olderNumeric reports whether both versions are numbers and a < b.
func olderNumeric(a, b string) bool {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}

// Resync asks for the source to be re-read now (SIGHUP). It never blocks.
func (s *Syncer) Resync() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

func (s *Syncer) watchLoop(ctx context.Context) {
	bo := backoff{min: s.retryMin, max: sourceBackoffMax}
	after := ""
	for ctx.Err() == nil {
		c, err := s.src.Watch(ctx, after)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.sourceError(err, "watch")
			sleep(ctx, bo.next())
			continue
		}
		s.sourceOK()
		if c.Version == after {
			// A source breaking its contract must not make us spin.
			s.log.Warn("sync: source returned an unchanged version from watch", "version", c.Version)
			sleep(ctx, bo.next())
			continue
		}
		bo.reset()
		after = c.Version
		s.offer(c)
	}
}

func (s *Syncer) resyncLoop(ctx context.Context) {
	var tick <-chan time.Time
	if s.cfg.Resync > 0 {
		t := time.NewTicker(s.cfg.Resync)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-s.resync:
			s.log.Info("sync: resync requested")
		}
		gctx, cancel := context.WithTimeout(ctx, getTimeout)
		c, err := s.src.Get(gctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.sourceError(err, "get")
			continue
		}
		s.sourceOK()
		s.offer(c)
	}
}

func (s *Syncer) applyLoop(ctx context.Context) {
	var (
		retryC    <-chan time.Time
		retryCand source.Config
		retryBo   = backoff{min: time.Second, max: writeRetryMax}
	)
	for {
		var c source.Config
		select {
		case <-ctx.Done():
			return
		case c = <-s.pending:
		case <-retryC:
			c = retryCand
		}
		retryC = nil
		if gap := s.cfg.MinReloadInterval; gap > 0 && !s.lastApply.IsZero() {
			if wait := gap - time.Since(s.lastApply); wait > 0 {
				if !sleep(ctx, wait) {
					return
				}
				select { // a newer version arrived meanwhile: it wins
				case c = <-s.pending:
				default:
				}
			}
		}
		outcome, _ := s.apply(ctx, c)
		if outcome == OutcomeFailed && s.isRetryable(c) && ctx.Err() == nil {
			retryCand = c
			retryC = time.After(retryBo.next())
		} else if outcome != "" {
			retryBo.reset()
		}
	}
}

// isRetryable: a version that failed before reaching Dest (write error) is
// retried; one that reached Dest but failed reload or health without
// --rollback stays in place and is not re-applied.
func (s *Syncer) isRetryable(c source.Config) bool {
	return !s.cur.valid || s.cur.version != c.Version
}

// backoff is exponential with full jitter between min and the current cap.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else if b.cur *= 2; b.cur > b.max {
		b.cur = b.max
	}
	// Jitter in [cur/2, cur): spreads a fleet of sidecars that lost their
	// source at the same moment.
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether the full time passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
