// Package poll waits in tests for a condition that another goroutine or
// process makes true: it polls every 5 ms and fails the test after a
// timeout that is only a deadlock guard, never a measurement.
package poll

import (
	"testing"
	"time"
)

// Until calls cond every 5 ms until it returns true, and fails the test
// with "timed out waiting for WHAT" once timeout has passed.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
