package forward

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/tcpserve"
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

// cannedUpstream answers every bodyless request on a keep-alive connection
// with the same 1 KiB response, without net/http, so that the allocations
// BenchmarkForwardCanned reports are the handler's own.
func cannedUpstream(b *testing.B) string {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("a", 1024))
	addr := tcpserve.Start(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 { // the blank line ending the header
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}
	})
	return "http://" + addr
}

// BenchmarkForwardCanned is BenchmarkForward1KiB against cannedUpstream:
// allocs/op are the handler's alone (the request is reused, the response
// writer discards).
func BenchmarkForwardCanned(b *testing.B) {
	for _, bc := range []struct {
		name      string
		direct    bool
		accessLog bool
	}{
		{"reverseproxy", false, false},
		{"direct", true, false},
		{"direct+accesslog", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			u, err := ParseUpstream(cannedUpstream(b))
			if err != nil {
				b.Fatal(err)
			}
			var log *slog.Logger
			if bc.accessLog {
				log = slog.New(slog.NewJSONHandler(io.Discard, nil))
			}
			h, err := New(Config{Upstream: u, PreserveHost: true, DirectHTTP1: bc.direct, AccessLog: bc.accessLog, UpstreamTimeout: time.Minute}, Deps{Logger: log})
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
			for b.Loop() {
				clear(w.h)
				w.code, w.n = 0, 0
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK || w.n != 1024 {
					b.Fatalf("status %d, %d bytes", w.code, w.n)
				}
			}
		})
	}
}
