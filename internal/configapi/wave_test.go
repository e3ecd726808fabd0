package configapi

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func drained(w *wave) bool {
	select {
	case <-w.drained:
		return true
	default:
		return false
	}
}

func TestWave(t *testing.T) {
	tests := []struct {
		name        string
		run         func(w *wave)
		wantDrained bool
		wantEnter   bool
	}{
		{name: "current state never drains", run: func(w *wave) { w.enter(); w.leave() }, wantEnter: true},
		{name: "superseded with nobody in drains", run: func(w *wave) { w.supersede() }, wantDrained: true},
		{name: "superseded drains when the last leaves", run: func(w *wave) {
			w.enter()
			w.enter()
			w.supersede()
			w.leave()
			w.leave()
		}, wantDrained: true},
		{name: "superseded with one still answering", run: func(w *wave) {
			w.enter()
			w.enter()
			w.supersede()
			w.leave()
		}, wantEnter: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWave()
			tc.run(w)
			if got := drained(w); got != tc.wantDrained {
				t.Errorf("drained = %v, want %v", got, tc.wantDrained)
			}
			if got := w.enter(); got != tc.wantEnter {
				t.Errorf("enter after = %v, want %v", got, tc.wantEnter)
			}
		})
	}
}

// TestWaveCap: one watcher that never answers holds the rest of its wave
// back for at most waveHoldMax.
func TestWaveCap(t *testing.T) {
	w := newWave()
	w.enter() // stuck
	w.enter()
	w.supersede()
	h := newHub(nil, slog.New(slog.DiscardHandler), mustMetrics(t))
	done := make(chan struct{})
	go func() {
		h.hold(context.Background(), w)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * waveHoldMax): // a deadlock guard, not a timing assertion
		t.Fatal("hold not released by the cap")
	}
}

// TestWaveHoldReleasedByShutdownAndClient: a hold ends when the hub shuts
// down or the client leaves, whatever the wave.
func TestWaveHoldReleasedByShutdownAndClient(t *testing.T) {
	for _, tc := range []string{"shutdown", "client gone"} {
		t.Run(tc, func(t *testing.T) {
			w := newWave()
			w.enter()
			w.enter() // current state: never drains on its own
			h := newHub(nil, slog.New(slog.DiscardHandler), mustMetrics(t))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() {
				h.hold(ctx, w)
				close(done)
			}()
			if tc == "shutdown" {
				h.shutdown()
			} else {
				cancel()
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("hold not released")
			}
		})
	}
}

func mustMetrics(t *testing.T) *metrics {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}
