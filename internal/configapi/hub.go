package configapi

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// hub fans store changes out to long-poll watchers. One goroutine (run)
// consumes store.Changes; each watched name has an entry holding the latest
// version number, a broadcast channel that is closed and replaced on every
// change, and the latest content, so that waking N watchers of a name costs
// one close and at most one store read, not N.
//
// Entries live while they have waiters. A new entry learns the latest
// version from the store (one read, shared by concurrent arrivals through
// singleflight); after that it is kept current by the change stream and by
// notify calls from this process's own pushes (read-your-writes).
type hub struct {
	st  store.Store
	log *slog.Logger
	m   *metrics

	mu      sync.Mutex
	entries map[string]*entry
	gen     uint64

	sf        singleflight.Group
	closing   chan struct{}
	closeOnce sync.Once
	up        atomic.Bool // subscribed to the change stream
	readTO    time.Duration
}

type entry struct {
	gen     uint64        // distinguishes entries of the same name over time
	ch      chan struct{} // closed when latest changes
	latest  int64         // -1 unknown, 0 = config does not exist
	changed time.Time     // when the hub learned latest from a change
	waiters int
	cur     *store.Version // content of latest (or newer), when loaded
}

func newHub(st store.Store, log *slog.Logger, m *metrics) *hub {
	return &hub{
		st:      st,
		log:     log,
		m:       m,
		entries: map[string]*entry{},
		closing: make(chan struct{}),
		readTO:  10 * time.Second,
	}
}

// run consumes the store's change stream until ctx ends, re-subscribing
// with capped exponential backoff when it breaks.
func (h *hub) run(ctx context.Context) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		ch, err := h.st.Changes(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("config watch hub: subscribing to store changes failed; retrying", "err", err, "backoff", backoff.String())
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		h.up.Store(true)
		h.resync(ctx)
		for c := range ch {
			h.notify(c.Name, c.Version)
			backoff = minBackoff
		}
		h.up.Store(false)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("config watch hub: store change stream closed; re-subscribing", "backoff", backoff.String())
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// resync re-reads the latest version of every watched name after a
// (re-)subscription, so that changes made while the stream was down wake
// their watchers.
func (h *hub) resync(ctx context.Context) {
	h.mu.Lock()
	names := make([]string, 0, len(h.entries))
	for name := range h.entries {
		names = append(names, name)
	}
	h.mu.Unlock()
	for _, name := range names {
		rctx, cancel := context.WithTimeout(ctx, h.readTO)
		v, err := h.st.Get(rctx, name, 0)
		cancel()
		switch {
		case err == nil:
			h.notify(name, v.Version)
		case errors.Is(err, store.ErrNotFound):
		default:
			h.log.Warn("config watch hub: re-reading after re-subscribe failed", "config", name, "err", err)
		}
	}
}

// notify records that name's latest version is v and wakes its watchers.
// Older or repeated versions are ignored, so events may arrive out of order
// or twice (change stream and the local push both report).
func (h *hub) notify(name string, v int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entries[name]
	if e == nil || v <= e.latest {
		return
	}
	e.latest = v
	e.changed = time.Now()
	if e.cur != nil && e.cur.Version < v {
		e.cur = nil
	}
	close(e.ch)
	e.ch = make(chan struct{})
}

func (h *hub) acquire(name string) *entry {
	h.mu.Lock()
	e := h.entries[name]
	if e == nil {
		h.gen++
		e = &entry{gen: h.gen, ch: make(chan struct{}), latest: -1}
		h.entries[name] = e
	}
	e.waiters++
	h.mu.Unlock()
	h.m.watchers.Inc()
	return e
}

func (h *hub) release(name string, e *entry) {
	h.mu.Lock()
	e.waiters--
	if e.waiters == 0 && h.entries[name] == e {
		delete(h.entries, name)
	}
	h.mu.Unlock()
	h.m.watchers.Dec()
}

// waitResult is the outcome of a watch.
type waitResult struct {
	// Modified: V is a version the condition did not match; otherwise the
	// wait ended (timeout, shutdown) and Latest is still matched.
	Modified bool
	V        store.Version
	Latest   int64
	// Woken: the watcher blocked and a change woke it; Changed is when the
	// hub learned of that change.
	Woken   bool
	Changed time.Time
}

// errNoConfig: the config does not exist and the condition does not match
// "nothing" either (the handler answers 404).
var errNoConfig = errors.New("config does not exist")

// wait blocks until name's latest version no longer satisfies matches, d
// passes, the hub shuts down or ctx ends.
func (h *hub) wait(ctx context.Context, name string, matches func(int64) bool, d time.Duration) (waitResult, error) {
	e := h.acquire(name)
	defer h.release(name, e)
	timer := time.NewTimer(d)
	defer timer.Stop()
	woken := false
	for {
		h.mu.Lock()
		ch, latest, changed := e.ch, e.latest, e.changed
		h.mu.Unlock()
		if latest < 0 {
			if err := h.loadLatest(ctx, name, e); err != nil {
				return waitResult{}, err
			}
			continue
		}
		if !matches(latest) {
			if latest == 0 {
				return waitResult{}, errNoConfig
			}
			v, err := h.content(ctx, name, e, latest)
			if err != nil {
				return waitResult{}, err
			}
			return waitResult{Modified: true, V: v, Latest: v.Version, Woken: woken, Changed: changed}, nil
		}
		select {
		case <-ch:
			woken = true
		case <-timer.C:
			return waitResult{Latest: latest}, nil
		case <-h.closing:
			return waitResult{Latest: latest}, nil
		case <-ctx.Done():
			return waitResult{}, ctx.Err()
		}
	}
}

// loadLatest reads name's latest version into e; concurrent callers for
// the same entry share one store read.
func (h *hub) loadLatest(ctx context.Context, name string, e *entry) error {
	key := name + "\x00" + strconv.FormatUint(e.gen, 10) + "\x00latest"
	ch := h.sf.DoChan(key, func() (any, error) {
		// Detached from the first caller's request: others share the result.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.readTO)
		defer cancel()
		v, err := h.st.Get(rctx, name, 0)
		if errors.Is(err, store.ErrNotFound) {
			return store.Version{}, nil
		}
		return v, err
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	if res.Err != nil {
		return res.Err
	}
	v := res.Val.(store.Version)
	h.mu.Lock()
	if v.Version > e.latest {
		e.latest = v.Version
		if v.Version > 0 {
			e.cur = &v
		}
	}
	h.mu.Unlock()
	return nil
}

// content returns version n of name with its data, from e's cache when it
// holds it; concurrent callers share one store read.
func (h *hub) content(ctx context.Context, name string, e *entry, n int64) (store.Version, error) {
	h.mu.Lock()
	if e.cur != nil && e.cur.Version == n {
		v := *e.cur
		h.mu.Unlock()
		return v, nil
	}
	h.mu.Unlock()
	key := name + "\x00" + strconv.FormatUint(e.gen, 10) + "\x00" + strconv.FormatInt(n, 10)
	ch := h.sf.DoChan(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.readTO)
		defer cancel()
		return h.st.Get(rctx, name, n)
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return store.Version{}, ctx.Err()
	}
	if res.Err != nil {
		return store.Version{}, res.Err
	}
	v := res.Val.(store.Version)
	h.mu.Lock()
	if e.latest <= v.Version && (e.cur == nil || e.cur.Version < v.Version) {
		e.cur = &v
	}
	h.mu.Unlock()
	return v, nil
}

// shutdown wakes every watcher; they answer 304 at once.
func (h *hub) shutdown() {
	h.closeOnce.Do(func() { close(h.closing) })
}

// sleepCtx sleeps d or until ctx ends; it reports whether ctx is alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
