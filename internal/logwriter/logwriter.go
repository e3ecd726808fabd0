// Package logwriter batches log lines on their way to stderr. The proxy
// writes one access-log line per request; a write(2) per line cost about a
// quarter of the proxy's CPU per request. Writer collects whole lines in a
// buffer and writes them out when the buffer fills or at a fixed interval,
// so a line reaches the terminal or the container runtime at most one
// interval late.
//
// It does not reorder, split or drop lines: every Write is appended whole.
// What it cannot do is save buffered lines from a crash (a panic or SIGKILL
// loses at most one interval of log); Close flushes on every orderly exit.
package logwriter

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Writer is a line-preserving, periodically flushed writer. It is safe for
// concurrent use.
type Writer struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	err    error // first write error, returned from then on
	stop   chan struct{}
	done   chan struct{}
	closed bool
	// through: every Write is flushed at once (interval <= 0).
	through bool
}

// bufferSize bounds how much log is held back; a burst larger than this is
// written at once.
const bufferSize = 64 << 10

// New returns a Writer that flushes to w every interval (and whenever its
// buffer fills). interval <= 0 means every Write goes straight through.
func New(w io.Writer, interval time.Duration) *Writer {
	lw := &Writer{bw: bufio.NewWriterSize(w, bufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	if interval <= 0 {
		lw.through = true
		close(lw.done)
		return lw
	}
	go lw.flushLoop(interval)
	return lw
}

func (lw *Writer) flushLoop(interval time.Duration) {
	defer close(lw.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = lw.Flush()
		case <-lw.stop:
			return
		}
	}
}

// Write appends p whole: if p does not fit in what is left of the buffer,
// the buffer is flushed first, so lines are never split across writes.
func (lw *Writer) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return 0, lw.err
	}
	if lw.through || lw.closed {
		return lw.direct(p)
	}
	if len(p) > lw.bw.Available() && lw.bw.Buffered() > 0 {
		if err := lw.bw.Flush(); err != nil {
			lw.err = err
			return 0, err
		}
	}
	n, err := lw.bw.Write(p)
	if err != nil {
		lw.err = err
	}
	return n, err
}

// direct writes p through the buffer and flushes at once.
func (lw *Writer) direct(p []byte) (int, error) {
	n, err := lw.bw.Write(p)
	if err == nil {
		err = lw.bw.Flush()
	}
	if err != nil {
		lw.err = err
	}
	return n, err
}

// Flush writes out everything buffered.
func (lw *Writer) Flush() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return lw.err
	}
	if err := lw.bw.Flush(); err != nil {
		lw.err = err
	}
	return lw.err
}

// Close flushes and stops the periodic flush; later Writes go straight
// through. It does not close the underlying writer.
func (lw *Writer) Close() error {
	lw.mu.Lock()
	if !lw.closed {
		lw.closed = true
		select {
		case <-lw.done:
		default:
			close(lw.stop)
		}
	}
	lw.mu.Unlock()
	<-lw.done
	return lw.Flush()
}
