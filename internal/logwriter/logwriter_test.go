package logwriter

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer records every Write call separately, to check lines are
// never split.
type lockedBuffer struct {
	mu     sync.Mutex
	writes []string
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes = append(b.writes, string(p))
	return len(p), nil
}

func (b *lockedBuffer) all() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.writes, "")
}

func TestLinesArriveWholeAndInOrder(t *testing.T) {
	var out lockedBuffer
	w := New(&out, time.Hour) // only size and Close flush
	var want strings.Builder
	for i := range 5000 {
		line := fmt.Sprintf("{\"msg\":\"request\",\"n\":%d,\"pad\":%q}\n", i, strings.Repeat("x", i%300))
		want.WriteString(line)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.all() != want.String() {
		t.Fatal("output differs from the lines written")
	}
	for _, wr := range out.writes {
		if !strings.HasSuffix(wr, "\n") {
			t.Fatalf("a write ends mid-line: %q", wr[max(0, len(wr)-40):])
		}
	}
	if len(out.writes) > 5000/50 {
		t.Fatalf("%d writes for 5000 lines: not batched", len(out.writes))
	}
}

func TestPeriodicFlush(t *testing.T) {
	var out lockedBuffer
	w := New(&out, 20*time.Millisecond)
	defer w.Close()
	if _, err := w.Write([]byte("one line\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.all() != "one line\n" {
		if time.Now().After(deadline) {
			t.Fatal("the line was not flushed by the periodic flush")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConcurrentWritersKeepLinesIntact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := New(f, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				fmt.Fprintf(w, "g%d-%d %s\n", g, i, strings.Repeat("y", 50))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 16000 {
		t.Fatalf("%d lines, want 16000", len(lines))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, strings.Repeat("y", 50)) || !strings.HasPrefix(l, "g") {
			t.Fatalf("mangled line %q", l)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsSticky(t *testing.T) {
	w := New(failingWriter{}, time.Hour)
	big := bytes.Repeat([]byte("z"), bufferSize+10)
	if _, err := w.Write(big); err == nil {
		t.Fatal("want the underlying error for a write larger than the buffer")
	}
	if _, err := w.Write([]byte("x\n")); err == nil {
		t.Fatal("want the sticky error")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close should report the error")
	}
}

func TestUnbufferedAndWritesAfterClose(t *testing.T) {
	var out lockedBuffer
	w := New(&out, 0)
	fmt.Fprint(w, "a\n")
	if out.all() != "a\n" {
		t.Fatalf("interval 0 should write through, got %q", out.all())
	}
	w2 := New(&out, time.Hour)
	_ = w2.Close()
	fmt.Fprint(w2, "b\n")
	if out.all() != "a\nb\n" {
		t.Fatalf("writes after Close should go through, got %q", out.all())
	}
	_ = w.Close()
}

func BenchmarkWriteLine(b *testing.B) {
	w := New(discard{}, 100*time.Millisecond)
	defer w.Close()
	line := []byte(`{"time":"2026-11-26T14:00:00Z","level":"INFO","msg":"request","method":"GET","path":"/","status":200}` + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_, _ = w.Write(line)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
