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
	noHold    bool // no wave hold and no parking: every watcher waits in its handler (benchmark comparison)

	// Parked watchers (park.go): conns hands their connections back to
	// the http.Server (nil = never park); parkWG counts their goroutines,
	// which parkMu and parkClosed keep from starting after shutdown.
	conns      parkConns
	idle       time.Duration // the server's IdleTimeout, for answered parked connections
	hdrTimeout time.Duration // the server's ReadHeaderTimeout, for re-arms read here (rearm.go)
	live       sync.Map      // *parked → struct{}: the parked watchers' goroutines, for the shutdown sweep
	parkMu     sync.RWMutex
	parkClosed bool
	parkWG     sync.WaitGroup
}

type entry struct {
	h       *hub
	gen     uint64       // distinguishes entries of the same name over time
	waiters atomic.Int64 // incremented under hub.mu; see release

	// state and ready are written under hub.mu and read without it, so
	// that thousands of watchers woken by one close do not queue on the
	// mutex: a woken watcher loads the new state, finds the rendered
	// answer for it and writes it, lock-free.
	state atomic.Pointer[entryState]
	ready atomic.Pointer[rendered] // content of latest (or newer), when loaded
	fetch *fetchCall               // guarded by hub.mu: the content read in flight
}

// fetchCall is one store read of a version's content, shared by every
// watcher that needs it: they wait on done, without a channel or a lock
// each.
type fetchCall struct {
	n    int64
	done chan struct{} // closed when r or err is set
	r    *rendered
	err  error
}

// entryState is one immutable snapshot of what the hub knows of a name.
type entryState struct {
	ch      chan struct{} // closed when a newer state replaces this one
	latest  int64         // -1 unknown, 0 = config does not exist
	changed time.Time     // when the hub learned latest from a change
	wave    *wave         // the watchers blocked on ch
}

// setLatest publishes latest v (learned at time at) and wakes everyone
// waiting on the previous state. The caller holds hub.mu and has checked
// that v is newer.
func (e *entry) setLatest(v int64, at time.Time) {
	old := e.state.Load()
	e.state.Store(&entryState{ch: make(chan struct{}), latest: v, changed: at, wave: newWave()})
	if r := e.ready.Load(); r != nil && r.v.Version < v {
		e.ready.Store(nil)
	}
	close(old.ch)
	old.wave.supersede()
	if ps := old.wave.takeParked(); len(ps) > 0 {
		go e.h.answerParked(e, ps, old.wave)
	} else {
		close(old.wave.answered)
	}
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
	if e == nil || v <= e.state.Load().latest {
		return
	}
	e.setLatest(v, time.Now())
}

// publish is notify for a version this process just stored, with its
// content: the watchers it wakes answer from it without reading the store.
func (h *hub) publish(v store.Version) {
	if v.Data == nil || int64(len(v.Data)) != v.Size {
		h.notify(v.Name, v.Version)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entries[v.Name]
	if e == nil || v.Version <= e.state.Load().latest {
		return
	}
	r := render(v)
	e.ready.Store(r) // before the wake-up, so that nobody misses it
	e.setLatest(v.Version, time.Now())
}

func (h *hub) acquire(name string) *entry {
	h.mu.Lock()
	e := h.entries[name]
	if e == nil {
		h.gen++
		e = &entry{h: h, gen: h.gen}
		e.state.Store(&entryState{ch: make(chan struct{}), latest: -1, wave: newWave()})
		h.entries[name] = e
	}
	e.waiters.Add(1)
	h.mu.Unlock()
	h.m.watchers.Inc()
	return e
}

// release takes the mutex only for the last waiter of an entry, so that a
// wave of answers does not queue on it. acquire increments under the
// mutex, so an entry found empty here, under the mutex, has no waiter
// that could still arrive through the map.
func (h *hub) release(name string, e *entry) {
	if e.waiters.Add(-1) == 0 {
		h.mu.Lock()
		if e.waiters.Load() == 0 && h.entries[name] == e {
			delete(h.entries, name)
		}
		h.mu.Unlock()
	}
	h.m.watchers.Dec()
}

// waitResult is the outcome of a watch.
type waitResult struct {
	// Modified: V is a version the condition did not match; otherwise the
	// wait ended (timeout, shutdown) and Latest is still matched.
	Modified bool
	V        *rendered
	Latest   int64
	// Woken: the watcher blocked and a change woke it; Changed is when the
	// hub learned of that change.
	Woken   bool
	Changed time.Time
	// wave, when set, is the wave that woke the watcher: the caller must
	// pass it to hub.hold once the answer is flushed.
	wave *wave
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
	var in *wave // the wave that woke this watcher, until it answers
	defer func() {
		if in != nil {
			in.leave()
		}
	}()
	for {
		st := e.state.Load()
		latest := st.latest
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
			r, err := h.content(ctx, name, e, latest)
			if err != nil {
				return waitResult{}, err
			}
			res := waitResult{Modified: true, V: r, Latest: r.v.Version, Woken: woken, Changed: st.changed, wave: in}
			in = nil // the caller's hold leaves it
			return res, nil
		}
		if in != nil { // woken, but the condition still matches
			in.leave()
			in = nil
		}
		if !st.wave.enter() {
			continue // superseded and answered meanwhile: a newer state is there
		}
		select {
		case <-st.ch:
			woken = true
			in = st.wave
		case <-timer.C:
			st.wave.leave()
			return waitResult{Latest: latest}, nil
		case <-h.closing:
			st.wave.leave()
			return waitResult{Latest: latest}, nil
		case <-ctx.Done():
			st.wave.leave()
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
	defer h.mu.Unlock()
	if v.Version > e.state.Load().latest {
		// Waiters that saw an older latest block on its channel:
		// setLatest wakes them, as a change would (the change stream will
		// not, once latest is already v).
		e.setLatest(v.Version, time.Now())
		if v.Version > 0 {
			e.ready.Store(render(v))
		}
	}
	return nil
}

// content returns version n of name rendered for answering, from e's
// cache when it holds it; concurrent callers share one store read.
func (h *hub) content(ctx context.Context, name string, e *entry, n int64) (*rendered, error) {
	if r := e.ready.Load(); r != nil && r.v.Version == n {
		return r, nil
	}
	h.mu.Lock()
	if r := e.ready.Load(); r != nil && r.v.Version == n {
		h.mu.Unlock()
		return r, nil
	}
	fc := e.fetch
	if fc == nil || fc.n != n {
		fc = &fetchCall{n: n, done: make(chan struct{})}
		e.fetch = fc
		// Detached from this request: the others waiting share the result.
		go h.fetchContent(context.WithoutCancel(ctx), name, e, fc)
	}
	h.mu.Unlock()
	select {
	case <-fc.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if fc.err != nil {
		return nil, fc.err
	}
	return fc.r, nil
}

// fetchContent reads fc's version into fc and, while it is still the
// latest, into e's cache.
func (h *hub) fetchContent(ctx context.Context, name string, e *entry, fc *fetchCall) {
	rctx, cancel := context.WithTimeout(ctx, h.readTO)
	defer cancel()
	v, err := h.st.Get(rctx, name, fc.n)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		fc.err = err
		if e.fetch == fc {
			e.fetch = nil // the next caller tries again
		}
	} else {
		fc.r = render(v)
		if cur := e.ready.Load(); e.state.Load().latest <= v.Version && (cur == nil || cur.v.Version < v.Version) {
			e.ready.Store(fc.r)
		}
	}
	close(fc.done)
}

// shutdown wakes every watcher; they answer 304 at once.
func (h *hub) shutdown() {
	h.closeOnce.Do(func() {
		h.parkMu.Lock()
		h.parkClosed = true
		h.parkMu.Unlock()
		close(h.closing)
		h.sweepParked()
	})
}

// parkBegin counts a parked watcher's goroutine in; false once the hub
// is shutting down.
func (h *hub) parkBegin() bool {
	h.parkMu.RLock()
	defer h.parkMu.RUnlock()
	if h.parkClosed {
		return false
	}
	h.parkWG.Add(1)
	return true
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
