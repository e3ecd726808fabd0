package forward

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// onlyReader hides bytes.Reader's type so the client cannot compute a
// Content-Length and must send the body chunked.
type onlyReader struct{ io.Reader }

func TestMaxBody(t *testing.T) {
	const limit = 1000
	var maxSeen atomic.Int64
	_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		for {
			old := maxSeen.Load()
			if n <= old || maxSeen.CompareAndSwap(old, n) {
				break
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	e := newEnv(t, Config{Upstream: up, MaxBody: limit}, nil)
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		h2      bool
		want    int
	}{
		{"at limit with Content-Length", limit, false, false, http.StatusOK},
		{"at limit chunked", limit, true, false, http.StatusOK},
		{"over limit with Content-Length", limit + 1, false, false, http.StatusRequestEntityTooLarge},
		{"over limit chunked HTTP/1.1", 64 << 10, true, false, http.StatusRequestEntityTooLarge},
		{"over limit streamed HTTP/2", 64 << 10, true, true, http.StatusRequestEntityTooLarge},
		{"over limit with Content-Length HTTP/2", 5000, false, true, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), tc.size))
			if tc.chunked {
				body = onlyReader{body}
			}
			req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/upload", body)
			resp, err := e.client(t, tc.h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, b, tc.want)
			}
			if tc.want == http.StatusRequestEntityTooLarge && !strings.HasPrefix(string(b), "413 ") {
				t.Errorf("body %q", b)
			}
			if got := maxSeen.Load(); got > limit {
				t.Fatalf("upstream received %d body bytes, limit %d", got, limit)
			}
		})
	}
	if n := metricValue(t, e.reg, "outrigger_upstream_errors_total", map[string]string{"kind": "other"}); n != 0 {
		t.Errorf("413s counted as upstream errors: %v", n)
	}
}

// blockingApp holds every request until released and reports arrivals.
type blockingApp struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlockingApp() *blockingApp {
	return &blockingApp{arrived: make(chan struct{}, 100), release: make(chan struct{})}
}

func (a *blockingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.arrived <- struct{}{}
	select {
	case <-a.release:
	case <-r.Context().Done():
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func (a *blockingApp) releaseAll() { a.once.Do(func() { close(a.release) }) }

func get(t *testing.T, c *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, nil, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestMaxInflight(t *testing.T) {
	t.Run("queue full gets 503 with Retry-After", func(t *testing.T) {
		app := newBlockingApp()
		_, up := startUpstream(t, app)
		defer app.releaseAll()
		e := newEnv(t, Config{Upstream: up, MaxInflight: 1, MaxQueue: 0}, nil)
		c := e.client(t, true)
		done := make(chan int, 1)
		go func() { code, _, _ := get(t, c, e.front.URL+"/1"); done <- code }()
		<-app.arrived
		code, hdr, body := get(t, c, e.front.URL+"/2")
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "1" || !strings.HasPrefix(body, "503 ") {
			t.Errorf("got %d Retry-After=%q %q", code, hdr.Get("Retry-After"), body)
		}
		app.releaseAll()
		if code := <-done; code != http.StatusOK {
			t.Errorf("first request: %d", code)
		}
		if g := metricValue(t, e.reg, "outrigger_inflight_requests", nil); g != 0 {
			t.Errorf("inflight gauge %v after all done", g)
		}
	})

	t.Run("queue timeout gets 503", func(t *testing.T) {
		app := newBlockingApp()
		_, up := startUpstream(t, app)
		defer app.releaseAll()
		e := newEnv(t, Config{Upstream: up, MaxInflight: 1, MaxQueue: 1, QueueTimeout: 20 * time.Millisecond}, nil)
		c := e.client(t, false)
		done := make(chan int, 1)
		go func() { code, _, _ := get(t, c, e.front.URL+"/1"); done <- code }()
		<-app.arrived
		code, hdr, _ := get(t, c, e.front.URL+"/2")
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "1" {
			t.Errorf("got %d Retry-After=%q", code, hdr.Get("Retry-After"))
		}
		app.releaseAll()
		if code := <-done; code != http.StatusOK {
			t.Errorf("first request: %d", code)
		}
		if g := metricValue(t, e.reg, "outrigger_queued_requests", nil); g != 0 {
			t.Errorf("queued gauge %v", g)
		}
	})

	t.Run("queued request proceeds when a slot frees", func(t *testing.T) {
		app := newBlockingApp()
		_, up := startUpstream(t, app)
		defer app.releaseAll()
		e := newEnv(t, Config{Upstream: up, MaxInflight: 1, MaxQueue: 1}, nil)
		c := e.client(t, true)
		results := make(chan int, 2)
		go func() { code, _, _ := get(t, c, e.front.URL+"/1"); results <- code }()
		<-app.arrived
		go func() { code, _, _ := get(t, c, e.front.URL+"/2"); results <- code }()
		waitFor(t, func() bool { return metricValue(t, e.reg, "outrigger_queued_requests", nil) == 1 })
		if g := metricValue(t, e.reg, "outrigger_inflight_requests", nil); g != 1 {
			t.Errorf("inflight gauge %v, want 1", g)
		}
		// A third request finds the queue full.
		if code, _, _ := get(t, c, e.front.URL+"/3"); code != http.StatusServiceUnavailable {
			t.Errorf("third request %d, want 503", code)
		}
		app.releaseAll()
		for range 2 {
			if code := <-results; code != http.StatusOK {
				t.Errorf("status %d", code)
			}
		}
	})
}

// TestKeepAlivePoolReuse: after a wave of concurrent requests, a second wave
// of the same size must reuse the pooled connections (the default Transport
// keeps only 2 idle per host and would open ~30 new ones).
func TestKeepAlivePoolReuse(t *testing.T) {
	const wave = 32
	var newConns atomic.Int64
	var arrived sync.WaitGroup
	gate := make(chan struct{})
	s := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-gate
		_, _ = io.WriteString(w, "ok")
	}), func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			newConns.Add(1)
		}
	})
	e := newEnv(t, Config{Upstream: mustUpstream(t, s.URL)}, nil)
	c := e.client(t, true) // one HTTP/2 connection in front, many upstream
	for round := range 2 {
		arrived.Add(wave)
		gate = make(chan struct{})
		var wg sync.WaitGroup
		for range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, _, _ := get(t, c, e.front.URL+"/"); code != http.StatusOK {
					t.Errorf("status %d", code)
				}
			}()
		}
		arrived.Wait() // all wave requests are at the app at once
		close(gate)
		wg.Wait()
		if got := newConns.Load(); got != wave {
			t.Fatalf("after round %d: %d upstream connections opened, want %d", round, got, wave)
		}
	}
}
