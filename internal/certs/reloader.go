package certs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults of the reload machinery.
const (
	// DefaultCheckInterval is the period of the content check that backs up
	// file watching.
	DefaultCheckInterval = time.Minute
	// DefaultDebounce is how long a burst of file events must be quiet before
	// the files are read.
	DefaultDebounce = 100 * time.Millisecond
	// watchRetry is how often a watch on a vanished directory is re-tried.
	watchRetry = time.Second
)

// Reload reasons, logged with every load.
const (
	reasonInitial  = "initial"
	reasonWatch    = "watch"
	reasonPeriodic = "periodic"
	reasonExplicit = "explicit"
)

// loadInfo describes material that apply accepted.
type loadInfo struct {
	notAfter time.Time
	attrs    []any // extra slog attributes for the success log line
}

// reloader owns everything file-backed material has in common: reading the
// files, skipping unchanged content, metrics, logs and the trigger loop.
// apply parses the file contents (in the order of files) and, only if they
// are usable, publishes them.
type reloader struct {
	kind     string
	files    []string
	interval time.Duration
	debounce time.Duration
	noWatch  bool
	logger   *slog.Logger
	m        *metrics
	now      func() time.Time
	apply    func(data [][]byte, initial bool) (loadInfo, error)

	trigger chan string // coalescing: one pending request is enough

	mu         sync.Mutex // serializes loads and guards the fields below
	hash       [32]byte
	failedHash [32]byte
	failedErr  string
}

func (r *reloader) init() {
	if r.interval == 0 {
		r.interval = DefaultCheckInterval
	}
	if r.debounce <= 0 {
		r.debounce = DefaultDebounce
	}
	r.trigger = make(chan string, 1)
}

// request asks the loop to reload; it never blocks.
func (r *reloader) request(reason string) {
	select {
	case r.trigger <- reason:
	default:
	}
}

// load reads the files and applies them if they changed. During the initial
// load an error is returned; later errors are logged and counted, and the
// previous material stays in place.
func (r *reloader) load(reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	initial := reason == reasonInitial

	h := sha256.New()
	data := make([][]byte, len(r.files))
	for i, f := range r.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return r.fail(reason, nil, fmt.Errorf("read %q: %w", f, err))
		}
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
		data[i] = b
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if !initial && sum == r.hash {
		if reason == reasonExplicit {
			r.logger.Info("certificate reload: files unchanged", "kind", r.kind, "files", r.files)
		}
		return nil
	}
	if !initial && reason != reasonExplicit && sum == r.failedHash {
		return nil // already refused this exact content; do not spam
	}
	info, err := r.apply(data, initial)
	if err != nil {
		return r.fail(reason, &sum, err)
	}
	r.hash = sum
	r.failedHash = [32]byte{}
	r.failedErr = ""
	now := r.now()
	r.m.reloads.WithLabelValues(r.kind, "success").Inc()
	r.m.lastSuccess.WithLabelValues(r.kind).Set(float64(now.UnixNano()) / 1e9)
	r.m.expiry.WithLabelValues(r.kind).Set(float64(info.notAfter.Unix()))
	attrs := append([]any{"kind", r.kind, "reason", reason, "files", r.files,
		"not_after", info.notAfter.UTC().Format(time.RFC3339)}, info.attrs...)
	r.logger.Info("certificate loaded", attrs...)
	return nil
}

func (r *reloader) fail(reason string, sum *[32]byte, err error) error {
	err = fmt.Errorf("%s certificate from %q: %w", r.kind, r.files, err)
	if reason == reasonInitial {
		return err
	}
	if sum == nil && err.Error() == r.failedErr && reason != reasonExplicit {
		return err // same unreadable state as last time; already reported
	}
	if sum != nil {
		r.failedHash = *sum
	}
	r.failedErr = err.Error()
	r.m.reloads.WithLabelValues(r.kind, "failure").Inc()
	r.logger.Error("certificate reload refused; keeping the previous one",
		"kind", r.kind, "reason", reason, "err", err)
	return err
}

// run drives reloads until ctx ends. It never returns an error for a bad
// file: those are logged and the previous material stays.
func (r *reloader) run(ctx context.Context) error {
	var fw *fsnotify.Watcher
	if !r.noWatch {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			r.logger.Warn("file watching unavailable; relying on the periodic check",
				"kind", r.kind, "interval", r.interval.String(), "err", err)
		} else {
			fw = w
			defer fw.Close()
		}
	}
	ws := &watchSet{fw: fw, watched: map[string]bool{}, logger: r.logger, kind: r.kind}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw != nil {
		events, errs = fw.Events, fw.Errors
	}
	missing := ws.sync(r.files)
	// The files may have changed between New and the watches being in place.
	_ = r.load(reasonWatch)

	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var tick <-chan time.Time
	if r.interval > 0 {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		tick = t.C
	}
	retry := time.NewTimer(watchRetry)
	defer retry.Stop()
	if !missing {
		retry.Stop()
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ws.handleEvent(ev) {
				retry.Reset(watchRetry)
			}
			debounce.Reset(r.debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow means events were lost: read the files to be sure.
			r.logger.Warn("file watch error", "kind", r.kind, "err", err)
			debounce.Reset(r.debounce)
		case <-debounce.C:
			_ = r.load(reasonWatch)
			if ws.sync(r.files) {
				retry.Reset(watchRetry)
			}
		case <-retry.C:
			if ws.sync(r.files) {
				retry.Reset(watchRetry)
			} else {
				// The directory is back: its content may have changed unseen.
				_ = r.load(reasonWatch)
			}
		case <-tick:
			_ = r.load(reasonPeriodic)
			if ws.sync(r.files) {
				retry.Reset(watchRetry)
			}
		case reason := <-r.trigger:
			_ = r.load(reason)
		}
	}
}

// watchSet keeps fsnotify watches on the directories that hold the files and
// on the directories their symlinks currently resolve to.
type watchSet struct {
	fw      *fsnotify.Watcher
	watched map[string]bool
	logger  *slog.Logger
	kind    string
}

// sync adds missing watches and drops stale ones; it reports whether a
// wanted directory could not be watched (so the caller retries).
func (ws *watchSet) sync(files []string) (missing bool) {
	if ws.fw == nil {
		return false
	}
	want := map[string]bool{}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		want[filepath.Dir(abs)] = true
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			want[filepath.Dir(real)] = true
		}
	}
	for dir := range ws.watched {
		if !want[dir] {
			_ = ws.fw.Remove(dir)
			delete(ws.watched, dir)
		}
	}
	for dir := range want {
		if ws.watched[dir] {
			continue
		}
		if err := ws.fw.Add(dir); err != nil {
			missing = true
			ws.logger.Debug("cannot watch directory yet", "kind", ws.kind, "dir", dir, "err", err)
			continue
		}
		ws.watched[dir] = true
	}
	return missing
}

// handleEvent forgets a watch whose directory went away; it reports whether
// that happened.
func (ws *watchSet) handleEvent(ev fsnotify.Event) bool {
	if !ev.Has(fsnotify.Remove) && !ev.Has(fsnotify.Rename) {
		return false
	}
	if !ws.watched[ev.Name] {
		return false
	}
	_ = ws.fw.Remove(ev.Name)
	delete(ws.watched, ev.Name)
	return true
}
