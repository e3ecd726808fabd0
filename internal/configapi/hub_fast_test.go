package configapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// TestHubPublishAnswersWithoutStoreRead: a push through this server wakes
// its watchers with the pushed content itself (read-your-writes), with
// the full metadata headers. The store's change stream may report the
// version before the push handler publishes it; then the woken watchers
// share one read of it, never one each.
func TestHubPublishAnswersWithoutStoreRead(t *testing.T) {
	const watchers = 200
	st := &contentReadCounter{Store: openBolt(t)}
	reg := prometheus.NewRegistry()
	h, stop, err := NewHandler(st, DefaultConfig(), Deps{Logger: slog.New(slog.DiscardHandler), Registry: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	base := serveHandler(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r := doURL(t, http.DefaultClient, base, put("/v1/configs/app", "text/plain", "v1")); r.code != http.StatusCreated {
		t.Fatalf("push v1: %d %s", r.code, r.body)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: watchers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	answers := make(chan *http.Response, watchers)
	bodies := make(chan string, watchers)
	var wg sync.WaitGroup
	for range watchers {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/configs/app?wait=60s", nil)
			req.Header.Set("If-None-Match", `"1"`)
			resp, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			answers <- resp
			bodies <- string(b)
		})
	}
	waitWatchers(t, &testServer{reg: reg}, watchers)
	before := st.gets.Load()
	if r := doURL(t, http.DefaultClient, base, withHdr(put("/v1/configs/app", "text/plain", "v2"), "X-Outrigger-Author", "ann")); r.code != http.StatusCreated {
		t.Fatalf("push v2: %d %s", r.code, r.body)
	}
	wg.Wait()
	close(answers)
	close(bodies)
	for resp := range answers {
		body := <-bodies
		want := map[string]string{
			"ETag": `"2"`, "X-Outrigger-Version": "2", "Content-Length": "2", "Content-Type": "text/plain",
			"X-Outrigger-Author": "ann", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
		}
		if resp.StatusCode != 200 || body != "v2" {
			t.Fatalf("watcher got %d %q, want 200 v2", resp.StatusCode, body)
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if resp.Header.Get("Last-Modified") == "" || len(resp.Header.Get("X-Outrigger-Sha256")) != 64 {
			t.Errorf("metadata headers missing: %v", resp.Header)
		}
	}
	if reads := st.gets.Load() - before; reads > 1 {
		t.Errorf("a local push woke %d watchers with %d store reads of its content, want at most 1", watchers, reads)
	}
}

// contentReadCounter counts reads of a given version (n > 0), what a wake
// costs; reads of the latest (n == 0: a new entry, the re-subscription's
// resync) are not counted.
type contentReadCounter struct {
	store.Store
	gets atomic.Int64
}

func (c *contentReadCounter) Get(ctx context.Context, name string, n int64) (store.Version, error) {
	if n > 0 {
		c.gets.Add(1)
	}
	return c.Store.Get(ctx, name, n)
}

// failingStore fails Get of one version a number of times.
type failingStore struct {
	store.Store
	version int64
	fails   atomic.Int64
}

func (f *failingStore) Get(ctx context.Context, name string, n int64) (store.Version, error) {
	if n == f.version && f.fails.Add(-1) >= 0 {
		return store.Version{}, errors.New("injected read failure")
	}
	return f.Store.Get(ctx, name, n)
}

// TestHubContentReadFailureRetried: when the shared content read of a new
// version fails, the woken watchers answer 500 and the next watcher reads
// again instead of inheriting the failure.
func TestHubContentReadFailureRetried(t *testing.T) {
	st := &failingStore{Store: openBolt(t), version: 2}
	st.fails.Store(1)
	reg := prometheus.NewRegistry()
	h, stopHub, err := NewHandler(st, DefaultConfig(), Deps{Logger: slog.New(slog.DiscardHandler), Registry: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(stopHub) }
	defer stop()
	base := serveHandler(t, h)
	ctx := context.Background()
	if _, _, err := st.Store.Put(ctx, "app", []byte("v1"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	// The keeper waits past version 2, keeping the entry (and its failed
	// read) alive across the two rounds; shutdown releases it.
	keeper := make(chan resp, 1)
	go func() {
		keeper <- doURL(t, http.DefaultClient, base, withHdr(get("/v1/configs/app?wait=30s"), "If-None-Match", `"1", "2"`))
	}()
	waitWatchers(t, &testServer{reg: reg}, 1)
	got := make(chan resp, 1)
	go func() {
		got <- doURL(t, http.DefaultClient, base, withHdr(get("/v1/configs/app?wait=30s"), "If-None-Match", `"1"`))
	}()
	waitWatchers(t, &testServer{reg: reg}, 2)
	// Written behind the API's back: only the change stream tells the hub.
	if _, _, err := st.Store.Put(ctx, "app", []byte("v2"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.code != http.StatusInternalServerError {
		t.Fatalf("watcher during the failed read: %d %q, want 500", r.code, r.body)
	}
	r := doURL(t, http.DefaultClient, base, withHdr(get("/v1/configs/app?wait=30s"), "If-None-Match", `"1"`))
	if r.code != http.StatusOK || r.body != "v2" {
		t.Fatalf("watcher after the failed read: %d %q, want 200 v2", r.code, r.body)
	}
	stop()
	if r := <-keeper; r.code != http.StatusNotModified {
		t.Errorf("keeper at shutdown: %d, want 304", r.code)
	}
}

// TestRenderedHeadersNotAliased: the shared, pre-rendered header values
// survive a handler or middleware adding to the response's header.
func TestRenderedHeadersNotAliased(t *testing.T) {
	r := render(store.Version{Name: "app", Version: 3, ContentType: "text/plain", SHA256: "x", Data: []byte("abc"), Size: 3})
	for i := range 3 {
		w := httptest.NewRecorder()
		serveRendered(w, r)
		w.Header().Add("Etag", fmt.Sprintf(`"other%d"`, i))
		w.Header().Add("Cache-Control", "private")
		if w.Body.String() != "abc" || w.Code != 200 {
			t.Fatalf("answer %d: %d %q", i, w.Code, w.Body.String())
		}
	}
	if got := r.hdr["Etag"]; len(got) != 1 || got[0] != `"3"` {
		t.Errorf("shared ETag became %q", got)
	}
	if got := r.hdr["Cache-Control"]; len(got) != 1 || got[0] != "no-cache" {
		t.Errorf("shared Cache-Control became %q", got)
	}
}

// TestHubEntriesReleased: an entry lives exactly while it has waiters,
// also when many leave at once (release is lock-free but for the last).
func TestHubEntriesReleased(t *testing.T) {
	st := openBolt(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := st.Put(ctx, "app", []byte("v1"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	h := newHub(st, slog.New(slog.DiscardHandler), mustMetrics(t))
	matchOne := func(v int64) bool { return v == 1 }
	for round := range 3 {
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				res, err := h.wait(ctx, "app", matchOne, 10*time.Millisecond)
				if err != nil || res.Modified || res.Latest != 1 {
					t.Errorf("round %d: wait = %+v, %v; want a 304 at version 1", round, res, err)
				}
			})
		}
		wg.Wait()
		h.mu.Lock()
		n := len(h.entries)
		h.mu.Unlock()
		if n != 0 {
			t.Fatalf("round %d: %d entries left after every waiter returned", round, n)
		}
	}
}
