package memtrim

import (
	"context"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

var sink [][]byte

func released() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// hold allocates about n bytes of small objects and keeps them in sink.
// The runtime soon returns whole free spans of large objects by itself;
// what it keeps is pages of small-object spans up to its next GC goal.
func hold(n int) {
	for i := 0; i < n/1024; i++ {
		sink = append(sink, make([]byte, 1024))
	}
}

// burst allocates about n bytes of small objects that are garbage once it
// returns.
func burst(n int) {
	hold(n)
	sink = nil
}

func start(t *testing.T, cfg Config) (trims *atomic.Int64, stop func()) {
	t.Helper()
	trims = new(atomic.Int64)
	cfg.OnTrim = func(uint64) { trims.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, cfg); close(done) }()
	return trims, func() { cancel(); <-done }
}

// TestTrimAfterBurst: after a burst of garbage, once the process is quiet,
// the free memory goes back to the kernel, once.
func TestTrimAfterBurst(t *testing.T) {
	runtime.GC()
	trims, stop := start(t, Config{Interval: 20 * time.Millisecond})
	defer stop()
	// A live heap of 16 MiB puts the GC goal near 32 MiB; dropping it and
	// making 8 MiB more garbage leaves 24 MiB the runtime would keep.
	hold(16 << 20)
	runtime.GC()
	before := released()
	sink = nil
	burst(8 << 20)
	poll.Until(t, 20*time.Second, "a trim", func() bool { return trims.Load() == 1 })
	if got := released(); got < before+16<<20 {
		t.Errorf("released %d → %d bytes: want at least 16 MiB more", before, got)
	}
	time.Sleep(200 * time.Millisecond) // still quiet: no second trim
	if n := trims.Load(); n != 1 {
		t.Errorf("%d trims in one quiet spell, want 1", n)
	}
}

// TestNoTrimWhileBusy: a process that keeps allocating is never trimmed,
// and one that was never busy neither.
func TestNoTrimWhileBusy(t *testing.T) {
	runtime.GC()
	trims, stop := start(t, Config{Interval: 20 * time.Millisecond, MinRelease: 1})
	defer stop()
	time.Sleep(100 * time.Millisecond)
	if n := trims.Load(); n != 0 {
		t.Fatalf("%d trims before any traffic", n)
	}
	end := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(end) {
		burst(1 << 20) // 1 MiB every millisecond: far above QuietBytes per Interval
		time.Sleep(time.Millisecond)
	}
	if n := trims.Load(); n != 0 {
		t.Errorf("%d trims while allocating steadily", n)
	}
	poll.Until(t, 20*time.Second, "a trim once quiet", func() bool { return trims.Load() == 1 })
}

// TestMinRelease: a quiet spell with less than MinRelease to give back
// costs no GC.
func TestMinRelease(t *testing.T) {
	runtime.GC()
	trims, stop := start(t, Config{Interval: 20 * time.Millisecond, MinRelease: 1 << 40})
	defer stop()
	burst(8 << 20)
	time.Sleep(200 * time.Millisecond)
	if n := trims.Load(); n != 0 {
		t.Errorf("%d trims with nothing worth releasing", n)
	}
}
