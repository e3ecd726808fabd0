package forward

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a minimal ResponseWriter so the benchmark measures the
// handler, not a recorder.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header  { return w.h }
func (w *discardWriter) WriteHeader(code int) { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// BenchmarkForward1KiB forwards GET requests for a 1 KiB body through the
// handler to a real loopback upstream over a keep-alive connection, through
// ReverseProxy and through the direct path.
func BenchmarkForward1KiB(b *testing.B) {
	b.Run("reverseproxy", func(b *testing.B) { benchForward1KiB(b, false) })
	b.Run("direct", func(b *testing.B) { benchForward1KiB(b, true) })
}

func benchForward1KiB(b *testing.B, direct bool) {
	payload := bytes.Repeat([]byte("a"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(payload)
	}))
	defer up.Close()
	u, err := ParseUpstream(up.URL)
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{Upstream: u, PreserveHost: true, DirectHTTP1: direct}, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.CloseIdle()
	req := httptest.NewRequest(http.MethodGet, "https://app.example/bench", nil)
	req.RemoteAddr = "192.0.2.1:12345"
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.code, w.n = 0, 0
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK || w.n != len(payload) {
			b.Fatalf("status %d, %d bytes", w.code, w.n)
		}
	}
}

// BenchmarkForward1KiBParallel is BenchmarkForward1KiB with concurrent
// requests, exercising the keep-alive pool.
func BenchmarkForward1KiBParallel(b *testing.B) {
	b.Run("reverseproxy", func(b *testing.B) { benchForward1KiBParallel(b, false) })
	b.Run("direct", func(b *testing.B) { benchForward1KiBParallel(b, true) })
}

func benchForward1KiBParallel(b *testing.B, direct bool) {
	payload := bytes.Repeat([]byte("a"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(payload)
	}))
	defer up.Close()
	u, err := ParseUpstream(up.URL)
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{Upstream: u, DirectHTTP1: direct}, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.CloseIdle()
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "https://app.example/bench", nil)
		req.RemoteAddr = "192.0.2.1:12345"
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			w.code, w.n = 0, 0
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
}
