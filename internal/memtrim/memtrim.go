// Package memtrim gives the heap's free memory back to the kernel when the
// process goes quiet.
//
// Go's runtime keeps heap pages up to its next GC goal (about twice the
// live heap) and returns memory above that only slowly, in the background.
// For a sidecar that is the wrong trade once traffic stops: after a burst
// (a wave of TLS handshakes, a load test, a large response) its resident
// memory stays at the burst's level, and pods are sized, billed and
// OOM-killed by resident memory. Run watches the allocation rate; when the
// process has allocated almost nothing for one Interval after it was busy,
// and at least MinRelease bytes could be given back (free heap pages plus
// the garbage made since the last GC), it collects and returns them
// (debug.FreeOSMemory), once per quiet spell. Under steady traffic it never
// runs a GC the runtime would not have run anyway.
package memtrim

import (
	"context"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// Defaults for Config.
const (
	DefaultInterval   = 250 * time.Millisecond
	DefaultQuietBytes = 64 << 10
	DefaultMinRelease = 1 << 20
)

// Config tunes Run; zero fields take the defaults.
type Config struct {
	// Interval is how often the allocation rate is sampled, and how long
	// the process must stay quiet before memory is trimmed.
	Interval time.Duration
	// QuietBytes: an Interval in which fewer bytes were allocated is quiet.
	QuietBytes uint64
	// MinRelease: trim only if at least this much can be given back.
	MinRelease uint64
	// OnTrim, if set, is called after each trim with the bytes the heap
	// had free or as garbage before it.
	OnTrim func(releasable uint64)
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.QuietBytes == 0 {
		c.QuietBytes = DefaultQuietBytes
	}
	if c.MinRelease == 0 {
		c.MinRelease = DefaultMinRelease
	}
}

// sample reads the runtime's figures Run decides on.
type sample struct {
	allocated  uint64 // bytes allocated since the process started
	releasable uint64 // free heap pages not yet returned + garbage since the last GC
}

var metricNames = []string{
	"/gc/heap/allocs:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
}

func read(s []rtmetrics.Sample) sample {
	rtmetrics.Read(s)
	free := s[1].Value.Uint64()
	objects, live := s[2].Value.Uint64(), s[3].Value.Uint64()
	out := sample{allocated: s[0].Value.Uint64(), releasable: free}
	if objects > live {
		out.releasable += objects - live
	}
	return out
}

// Run trims as described in the package doc until ctx ends.
func Run(ctx context.Context, cfg Config) {
	cfg.defaults()
	s := make([]rtmetrics.Sample, len(metricNames))
	for i, name := range metricNames {
		s[i].Name = name
	}
	last := read(s)
	busy := false // something was allocated since the last trim
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read(s)
		grew := now.allocated - last.allocated
		last = now
		if grew >= cfg.QuietBytes {
			busy = true
			continue
		}
		if !busy || now.releasable < cfg.MinRelease {
			continue
		}
		debug.FreeOSMemory()
		busy = false
		last = read(s) // the trim's own allocations are not traffic
		if cfg.OnTrim != nil {
			cfg.OnTrim(now.releasable)
		}
	}
}
