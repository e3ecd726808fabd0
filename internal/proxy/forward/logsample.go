package forward

import (
	"sync"
	"time"
)

// logLimiter bounds error log lines to burst per second, so an upstream
// outage under load yields a few lines a second (with a count of the ones
// left out) rather than one per failed request. Metrics still count all.
type logLimiter struct {
	burst int

	mu         sync.Mutex
	window     int64 // unix second of the current window
	n          int   // lines logged in the window
	suppressed int   // lines dropped since the last logged one
}

// allow reports whether to log now, and how many lines were dropped since
// the previous allowed one (to be reported with it).
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	sec := now.Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if sec != l.window {
		l.window, l.n = sec, 0
	}
	if l.n >= l.burst {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
