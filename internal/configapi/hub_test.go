package configapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// countingStore counts Get calls to prove that watchers do not read the
// store one by one.
type countingStore struct {
	store.Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, name string, n int64) (store.Version, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, name, n)
}

// serveHandler serves h on a real 127.0.0.1 listener.
func serveHandler(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

func openBolt(t testing.TB) *store.Bolt {
	t.Helper()
	b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestHubFanOut2000(t *testing.T) {
	const watchers = 2000
	st := &countingStore{Store: openBolt(t)}
	reg := prometheus.NewRegistry()
	h, stop, err := NewHandler(st, DefaultConfig(), Deps{Logger: slog.New(slog.DiscardHandler), Registry: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	base := serveHandler(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, _, err := st.Put(ctx, "app", []byte("v1"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConns: watchers * 2, MaxIdleConnsPerHost: watchers * 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	type result struct {
		code int
		etag string
		body string
		err  error
	}
	results := make(chan result, watchers)
	var wg sync.WaitGroup
	for i := 0; i < watchers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/configs/app?wait=60s", nil)
			req.Header.Set("If-None-Match", `"1"`)
			resp, err := hc.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			results <- result{code: resp.StatusCode, etag: resp.Header.Get("ETag"), body: string(b), err: err}
		}()
	}
	ts := &testServer{reg: reg}
	waitWatchers(t, ts, watchers)
	getsBefore := st.gets.Load()

	// Another process's push would arrive through the change stream only:
	// write to the store directly, not through the API.
	if _, _, err := st.Store.Put(ctx, "app", []byte("v2"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(results)
	n := 0
	for r := range results {
		if r.err != nil {
			t.Fatalf("watcher: %v", r.err)
		}
		if r.code != 200 || r.etag != `"2"` || r.body != "v2" {
			t.Fatalf("watcher got %d %s %q, want 200 \"2\" v2", r.code, r.etag, r.body)
		}
		n++
	}
	if n != watchers {
		t.Fatalf("%d answers, want %d", n, watchers)
	}
	if reads := st.gets.Load() - getsBefore; reads > 3 {
		t.Errorf("waking %d watchers cost %d store reads, want ≤ 3", watchers, reads)
	}
	if g := watchersGauge(t, ts); g != 0 {
		t.Errorf("watchers gauge = %v after all answered", g)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "outrigger_config_watch_wake_seconds" {
			if c := mf.GetMetric()[0].GetHistogram().GetSampleCount(); c != watchers {
				t.Errorf("wake histogram count = %d, want %d", c, watchers)
			}
		}
	}
}

// flakyStore's change stream breaks on demand, to test re-subscription.
type flakyStore struct {
	store.Store
	mu     sync.Mutex
	cancel context.CancelFunc
	subs   atomic.Int64
}

func (f *flakyStore) Changes(ctx context.Context) (<-chan store.Change, error) {
	cctx, cancel := context.WithCancel(ctx)
	f.mu.Lock()
	f.cancel = cancel
	f.mu.Unlock()
	f.subs.Add(1)
	return f.Store.Changes(cctx)
}

func (f *flakyStore) breakStream() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancel()
}

func TestHubResubscribes(t *testing.T) {
	st := &flakyStore{Store: openBolt(t)}
	reg := prometheus.NewRegistry()
	h, stop, err := NewHandler(st, DefaultConfig(), Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	base := serveHandler(t, h)
	ctx := context.Background()
	if _, _, err := st.Put(ctx, "app", []byte("v1"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 4; i++ {
		got := make(chan resp, 1)
		go func() {
			got <- doURL(t, http.DefaultClient, base, withHdr(get("/v1/configs/app?wait=60s"), "If-None-Match", fmt.Sprintf(`"%d"`, i-1)))
		}()
		waitWatchers(t, &testServer{reg: reg}, 1)
		before := st.subs.Load()
		st.breakStream()
		// The push lands while the stream may be down; the re-subscription's
		// re-read or the new stream must deliver it.
		if _, _, err := st.Put(ctx, "app", []byte(fmt.Sprintf("v%d", i)), store.PutOptions{ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-got:
			if r.code != 200 || r.body != fmt.Sprintf("v%d", i) {
				t.Fatalf("round %d: %d %q", i, r.code, r.body)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: watcher not woken after the change stream broke", i)
		}
		deadline := time.Now().Add(30 * time.Second)
		for st.subs.Load() <= before && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if st.subs.Load() <= before {
			t.Fatalf("round %d: hub never re-subscribed", i)
		}
	}
}

func TestShutdownWakesWatchers(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "text/plain", "one"))
	const n = 20
	got := make(chan resp, n)
	for i := 0; i < n; i++ {
		go func() { got <- ts.do(t, withHdr(get("/v1/configs/app?wait=300s"), "If-None-Match", `"1"`)) }()
	}
	waitWatchers(t, ts, n)
	stopped := make(chan struct{})
	go func() { ts.stop(); close(stopped) }()
	for i := 0; i < n; i++ {
		select {
		case r := <-got:
			if r.code != http.StatusNotModified {
				t.Fatalf("watcher at shutdown: %d %q, want 304", r.code, r.body)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("watchers not released by shutdown")
		}
	}
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}
