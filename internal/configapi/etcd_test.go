package configapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/etcdtest"
)

func startEtcdServer(t *testing.T, endpoints []string) *testServer {
	t.Helper()
	return startServer(t, func(c *Config) {
		c.Etcd = strings.Join(endpoints, ",")
		c.EtcdPrefix = "/test-configapi/"
		c.Data = ""
	})
}

func TestEtcdTwoReplicas(t *testing.T) {
	eps := etcdtest.Start(t)
	a := startEtcdServer(t, eps)
	b := startEtcdServer(t, eps)

	if r := a.do(t, put("/v1/configs/app", "application/json", `{"v":1}`)); r.code != 201 {
		t.Fatalf("push to A: %d %s", r.code, r.body)
	}
	t.Run("replica B reads A's push", func(t *testing.T) {
		r := b.do(t, get("/v1/configs/app"))
		if r.code != 200 || r.body != `{"v":1}` || r.hdr.Get("ETag") != `"1"` {
			t.Fatalf("GET on B: %d %q %q", r.code, r.body, r.hdr.Get("ETag"))
		}
	})
	t.Run("push to A wakes a watcher on B", func(t *testing.T) {
		got := make(chan resp, 1)
		go func() { got <- b.do(t, withHdr(get("/v1/configs/app?wait=60s"), "If-None-Match", `"1"`)) }()
		waitWatchers(t, b, 1)
		if r := a.do(t, put("/v1/configs/app", "application/json", `{"v":2}`)); r.code != 201 {
			t.Fatalf("push to A: %d %s", r.code, r.body)
		}
		select {
		case r := <-got:
			if r.code != 200 || r.body != `{"v":2}` || r.hdr.Get("ETag") != `"2"` {
				t.Fatalf("B's watcher got %d %q %q", r.code, r.body, r.hdr.Get("ETag"))
			}
		case <-time.After(30 * time.Second):
			t.Fatal("B's watcher not woken by a push to A")
		}
	})
	t.Run("CAS across replicas", func(t *testing.T) {
		r := b.do(t, withHdr(put("/v1/configs/app", "text/plain", "x"), "If-Match", `"1"`))
		if r.code != http.StatusPreconditionFailed {
			t.Fatalf("stale If-Match on B: %d %s", r.code, r.body)
		}
		r = b.do(t, withHdr(put("/v1/configs/app", "application/json", `{"v":3}`), "If-Match", `"2"`))
		if r.code != http.StatusCreated {
			t.Fatalf("fresh If-Match on B: %d %s", r.code, r.body)
		}
	})
	t.Run("invalid push not stored", func(t *testing.T) {
		if r := a.do(t, put("/v1/configs/app", "application/json", `{`)); r.code != 422 {
			t.Fatalf("%d %s", r.code, r.body)
		}
	})
	t.Run("history, rollback and status on the shared store", func(t *testing.T) {
		r := a.do(t, get("/v1/configs/app/history"))
		var h historyResponse
		if err := json.Unmarshal([]byte(r.body), &h); err != nil || len(h.Versions) != 3 {
			t.Fatalf("history: %d %s", r.code, r.body)
		}
		if r := b.do(t, req{method: "POST", path: "/v1/configs/app/rollback?to=1"}); r.code != 201 {
			t.Fatalf("rollback on B: %d %s", r.code, r.body)
		}
		if r := a.do(t, get("/v1/configs/app")); r.body != `{"v":1}` || r.hdr.Get("ETag") != `"4"` {
			t.Fatalf("A after rollback on B: %q %q", r.body, r.hdr.Get("ETag"))
		}
		if r := a.do(t, put("/v1/configs/app/status/pod-1", "application/json", `{"version":4,"outcome":"applied"}`)); r.code != 204 {
			t.Fatalf("status on A: %d %s", r.code, r.body)
		}
		r = b.do(t, get("/v1/configs/app/status"))
		if r.code != 200 || !strings.Contains(r.body, `"pod-1"`) || !strings.Contains(r.body, `"latest":4`) {
			t.Fatalf("status on B: %d %s", r.code, r.body)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		r := b.do(t, get("/readyz"))
		for r.code != 200 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			r = b.do(t, get("/readyz"))
		}
		if r.code != 200 {
			t.Fatalf("readyz: %d %s", r.code, r.body)
		}
	})
}
