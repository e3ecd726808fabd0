package poll

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilReturnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	Until(t, 10*time.Second, "three ticks", func() bool { return n.Load() == 3 })
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = format
	if len(args) > 0 {
		r.msg = args[0].(string)
	}
}

func TestUntilFailsAfterTimeout(t *testing.T) {
	r := &fatalRecorder{TB: t}
	calls := 0
	Until(r, 20*time.Millisecond, "never", func() bool { calls++; return r.msg != "" })
	if r.msg != "never" || calls < 2 {
		t.Fatalf("Fatalf got %q after %d calls; want \"never\" after several", r.msg, calls)
	}
}
