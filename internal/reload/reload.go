// Package reload tells a legacy application that its configuration changed:
// by a Unix signal to a process found through a pid file or by name, by an
// HTTP request to a reload hook, or by running a shell command. Multi runs
// several of them in order.
//
// A Reloader makes one attempt per call. Retrying with backoff, verifying
// that the application is healthy afterwards and rolling back belong to the
// sync role, not to this package.
package reload

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Reloader asks an application to reload its configuration.
type Reloader interface {
	// Reload makes one attempt and returns an error naming what failed.
	Reload(ctx context.Context) error
	// String describes the reloader for logs (no secrets).
	String() string
}

// Multi runs every reloader in order. All are attempted even if one fails,
// so an application reachable by one mechanism still hears about the change;
// the errors are joined.
type Multi []Reloader

// Reload implements Reloader.
func (m Multi) Reload(ctx context.Context) error {
	var errs []error
	for _, r := range m {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("reload: %s: %w", r, err))
			break
		}
		if err := r.Reload(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// String implements Reloader.
func (m Multi) String() string {
	if len(m) == 0 {
		return "no reload"
	}
	parts := make([]string, len(m))
	for i, r := range m {
		parts[i] = r.String()
	}
	return strings.Join(parts, " + ")
}

// limitedBuffer keeps the first max bytes written to it and counts the rest,
// so that a chatty command or hook cannot blow up an error message or memory.
type limitedBuffer struct {
	buf     []byte
	max     int
	dropped int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.max - len(b.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	b.dropped += len(p) - room
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	s := strings.TrimSpace(string(b.buf))
	if b.dropped > 0 {
		s += fmt.Sprintf(" … (%d more bytes)", b.dropped)
	}
	return s
}
