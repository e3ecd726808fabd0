package configapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// waveHoldMax bounds how long an answered watcher's connection is held
// back waiting for the rest of its wave (see wave).
const waveHoldMax = time.Second

// wave is the set of watchers blocked on one entry state. When the state
// is superseded they all wake at once; each writes and flushes its answer
// and then holds its connection until the whole wave has been answered
// (or waveHoldMax passes), so that the watchers' immediate re-arm
// requests, which cost the server as much as the answers, are read after
// the answers instead of competing with them for the CPU. The answers
// themselves are not delayed: they are flushed before the hold.
type wave struct {
	// pending is 1 while the state is current (the state's own token)
	// plus one per watcher that entered and has not left.
	pending atomic.Int64
	drained chan struct{} // closed when pending reaches 0 or the cap passes
	once    sync.Once

	// Parked watchers (park.go) of the state: answered by a hub worker
	// when the state is superseded; answered is closed when they all
	// are.
	pmu      sync.Mutex
	parked   []*parked
	pclosed  bool // superseded: no more parking here
	answered chan struct{}
}

func newWave() *wave {
	w := &wave{drained: make(chan struct{}), answered: make(chan struct{})}
	w.pending.Store(1)
	return w
}

// enter counts a watcher in; false if the wave has drained (its state
// was superseded and answered: the caller reloads the state).
func (w *wave) enter() bool {
	for {
		n := w.pending.Load()
		if n <= 0 {
			return false
		}
		if w.pending.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// leave counts a watcher out (answered, timed out or gone).
func (w *wave) leave() {
	if w.pending.Add(-1) == 0 {
		w.finish()
	}
}

func (w *wave) finish() { w.once.Do(func() { close(w.drained) }) }

// supersede drops the state's token once its channel is closed; the cap
// keeps one slow answer (a stuck client, a slow store read) from holding
// the others back longer than waveHoldMax.
func (w *wave) supersede() {
	time.AfterFunc(waveHoldMax, w.finish)
	w.leave()
}

// addParked lists p for the answer; false if the wave was superseded.
func (w *wave) addParked(p *parked) bool {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	if w.pclosed {
		return false
	}
	p.idx = len(w.parked)
	p.listed.Store(w)
	w.parked = append(w.parked, p)
	return true
}

// removeParked unlists p, which ended without an answer from the hub
// (its wait ended, its client left), so that a wave that lasts while its
// watchers come and go does not grow. A superseded wave's list belongs to
// its worker and is left alone.
func (w *wave) removeParked(p *parked) {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	n := len(w.parked)
	if w.pclosed || p.idx >= n || w.parked[p.idx] != p {
		return
	}
	last := w.parked[n-1]
	w.parked[p.idx] = last
	last.idx = p.idx
	w.parked[n-1] = nil
	w.parked = w.parked[:n-1]
}

// takeParked closes the wave to parking and returns its parked watchers.
func (w *wave) takeParked() []*parked {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	w.pclosed = true
	ps := w.parked
	w.parked = nil
	return ps
}

// hold is called by a woken watcher after its answer is flushed: it leaves
// the wave and waits for the rest of it, the shutdown or the client's
// departure.
func (h *hub) hold(ctx context.Context, w *wave) {
	w.leave()
	select {
	case <-w.drained:
	case <-h.closing:
	case <-ctx.Done():
	}
}
