package configapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

func decodeVersion(t *testing.T, body string) store.Version {
	t.Helper()
	var v store.Version
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("version JSON %q: %v", body, err)
	}
	return v
}

func historyLen(t *testing.T, ts *testServer, name string) int {
	t.Helper()
	r := ts.do(t, get("/v1/configs/"+name+"/history"))
	if r.code == http.StatusNotFound {
		return 0
	}
	var h historyResponse
	if err := json.Unmarshal([]byte(r.body), &h); err != nil {
		t.Fatalf("history: %v (%d %s)", err, r.code, r.body)
	}
	return len(h.Versions)
}

func TestPushGetHistoryContract(t *testing.T) {
	ts := startServer(t, nil)

	r := ts.do(t, withHdr(put("/v1/configs/app", "application/json", `{"port": 8080}`), "X-Outrigger-Author", "alice"))
	if r.code != http.StatusCreated {
		t.Fatalf("first push: %d %s", r.code, r.body)
	}
	v1 := decodeVersion(t, r.body)
	if v1.Version != 1 || v1.Name != "app" || v1.Author != "alice" || v1.ContentType != "application/json" || v1.Size != 14 || len(v1.SHA256) != 64 {
		t.Fatalf("first push version JSON = %+v", v1)
	}
	if got := r.hdr.Get("ETag"); got != `"1"` {
		t.Errorf("ETag = %q, want \"1\"", got)
	}

	r = ts.do(t, put("/v1/configs/app", "application/json", `{"port": 8080}`))
	if r.code != http.StatusOK || decodeVersion(t, r.body).Version != 1 {
		t.Fatalf("identical push: %d %s, want 200 version 1", r.code, r.body)
	}

	r = ts.do(t, put("/v1/configs/app", "application/json; charset=utf-8", `{"port": 9090}`))
	if r.code != http.StatusCreated || decodeVersion(t, r.body).Version != 2 {
		t.Fatalf("second push: %d %s", r.code, r.body)
	}

	r = ts.do(t, get("/v1/configs/app"))
	if r.code != 200 || r.body != `{"port": 9090}` {
		t.Fatalf("GET latest: %d %q", r.code, r.body)
	}
	for k, want := range map[string]string{"ETag": `"2"`, "X-Outrigger-Version": "2", "Content-Type": "application/json"} {
		if got := r.hdr.Get(k); got != want {
			t.Errorf("GET latest %s = %q, want %q", k, got, want)
		}
	}
	if len(r.hdr.Get("X-Outrigger-Sha256")) != 64 {
		t.Errorf("X-Outrigger-Sha256 = %q", r.hdr.Get("X-Outrigger-Sha256"))
	}

	r = ts.do(t, get("/v1/configs/app?version=1"))
	if r.code != 200 || r.body != `{"port": 8080}` || r.hdr.Get("ETag") != `"1"` {
		t.Fatalf("GET ?version=1: %d %q %q", r.code, r.body, r.hdr.Get("ETag"))
	}

	r = ts.do(t, get("/v1/configs/app/history"))
	var h historyResponse
	if err := json.Unmarshal([]byte(r.body), &h); err != nil || r.code != 200 {
		t.Fatalf("history: %d %s %v", r.code, r.body, err)
	}
	if h.Name != "app" || len(h.Versions) != 2 || h.Versions[0].Version != 1 || h.Versions[1].Version != 2 {
		t.Fatalf("history = %+v", h)
	}

	ts.do(t, put("/v1/configs/web", "application/yaml", "a: 1\n"))
	r = ts.do(t, get("/v1/configs"))
	var l listResponse
	if err := json.Unmarshal([]byte(r.body), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Configs) != 2 || l.Configs[0].Name != "app" || l.Configs[0].Version != 2 || l.Configs[1].Name != "web" {
		t.Fatalf("list = %+v", l)
	}

	tests := []struct {
		name string
		r    req
		code int
	}{
		{"unknown config", get("/v1/configs/nope"), 404},
		{"unknown version", get("/v1/configs/app?version=9"), 404},
		{"bad version param", get("/v1/configs/app?version=x"), 400},
		{"zero version param", get("/v1/configs/app?version=0"), 400},
		{"history of unknown", get("/v1/configs/nope/history"), 404},
		{"unknown endpoint", get("/v2/things"), 404},
		{"bad wait", withHdr(get("/v1/configs/app?wait=soon"), "If-None-Match", `"2"`), 400},
		{"negative wait", withHdr(get("/v1/configs/app?wait=-1s"), "If-None-Match", `"2"`), 400},
		{"malformed If-None-Match", withHdr(get("/v1/configs/app"), "If-None-Match", `"2`), 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.r)
			if r.code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", tc.r.method, tc.r.path, r.code, r.body, tc.code)
			}
			if tc.code >= 400 {
				var e map[string]string
				if err := json.Unmarshal([]byte(r.body), &e); err != nil || e["error"] == "" {
					t.Errorf("error body %q is not {\"error\": …}", r.body)
				}
			}
		})
	}
}

func TestConditionalGet(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "text/plain", "one"))
	ts.do(t, put("/v1/configs/app", "text/plain", "two"))
	tests := []struct {
		name     string
		inm      string
		path     string
		code     int
		wantBody string
	}{
		{"latest matches", `"2"`, "/v1/configs/app", 304, ""},
		{"weak tag matches", `W/"2"`, "/v1/configs/app", 304, ""},
		{"list containing latest", `"1", W/"2"`, "/v1/configs/app", 304, ""},
		{"bare number tolerated", `2`, "/v1/configs/app", 304, ""},
		{"star matches existing", `*`, "/v1/configs/app", 304, ""},
		{"older version", `"1"`, "/v1/configs/app", 200, "two"},
		{"newer than latest (server reset) answers latest", `"7"`, "/v1/configs/app", 200, "two"},
		{"foreign etag", `"abc"`, "/v1/configs/app", 200, "two"},
		{"nothing yet and still nothing", `"0"`, "/v1/configs/absent", 304, ""},
		{"absent config with version", `"3"`, "/v1/configs/absent", 404, ""},
		{"versioned get matching", `"1"`, "/v1/configs/app?version=1", 304, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, withHdr(get(tc.path), "If-None-Match", tc.inm))
			if r.code != tc.code {
				t.Fatalf("If-None-Match %s: %d %q, want %d", tc.inm, r.code, r.body, tc.code)
			}
			if tc.wantBody != "" && r.body != tc.wantBody {
				t.Errorf("body %q, want %q", r.body, tc.wantBody)
			}
			if tc.code == 304 && tc.path == "/v1/configs/app" && r.hdr.Get("ETag") != `"2"` {
				t.Errorf("304 ETag = %q, want \"2\"", r.hdr.Get("ETag"))
			}
		})
	}
}

func TestLongPoll(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "text/plain", "one"))

	t.Run("timeout answers 304", func(t *testing.T) {
		r := ts.do(t, withHdr(get("/v1/configs/app?wait=1s"), "If-None-Match", `"1"`))
		if r.code != http.StatusNotModified || r.hdr.Get("ETag") != `"1"` {
			t.Fatalf("%d %q etag %q, want 304 \"1\"", r.code, r.body, r.hdr.Get("ETag"))
		}
	})
	t.Run("whole seconds accepted", func(t *testing.T) {
		r := ts.do(t, withHdr(get("/v1/configs/app?wait=1"), "If-None-Match", `"1"`))
		if r.code != http.StatusNotModified {
			t.Fatalf("%d %q, want 304", r.code, r.body)
		}
	})
	t.Run("already newer answers at once", func(t *testing.T) {
		r := ts.do(t, withHdr(get("/v1/configs/app?wait=60s"), "If-None-Match", `"0"`))
		if r.code != 200 || r.body != "one" {
			t.Fatalf("%d %q", r.code, r.body)
		}
	})
	t.Run("push wakes watcher", func(t *testing.T) {
		got := make(chan resp, 1)
		go func() { got <- ts.do(t, withHdr(get("/v1/configs/app?wait=60s"), "If-None-Match", `"1"`)) }()
		waitWatchers(t, ts, 1)
		ts.do(t, put("/v1/configs/app", "text/plain", "two"))
		select {
		case r := <-got:
			if r.code != 200 || r.body != "two" || r.hdr.Get("ETag") != `"2"` {
				t.Fatalf("woken watcher got %d %q %q", r.code, r.body, r.hdr.Get("ETag"))
			}
		case <-time.After(20 * time.Second):
			t.Fatal("watcher not woken by push")
		}
	})
	t.Run("creation wakes watcher of absent config", func(t *testing.T) {
		got := make(chan resp, 1)
		go func() { got <- ts.do(t, withHdr(get("/v1/configs/later?wait=60s"), "If-None-Match", `"0"`)) }()
		waitWatchers(t, ts, 1)
		ts.do(t, put("/v1/configs/later", "text/plain", "born"))
		select {
		case r := <-got:
			if r.code != 200 || r.body != "born" {
				t.Fatalf("got %d %q", r.code, r.body)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("watcher not woken by creation")
		}
	})
}

// waitWatchers waits until the watchers gauge reaches n (a deadlock guard,
// not a timing assertion).
func waitWatchers(t testing.TB, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if watchersGauge(t, ts) >= float64(n) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("watchers gauge never reached %d (at %v)", n, watchersGauge(t, ts))
}

func watchersGauge(t testing.TB, ts *testServer) float64 {
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "outrigger_config_watchers" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

func counterValue(t testing.TB, ts *testServer, name, label, value string) float64 {
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestCompareAndSwap(t *testing.T) {
	ts := startServer(t, nil)
	tests := []struct {
		name    string
		ifMatch string
		code    int
	}{
		{"create with 0", `"0"`, 201},
		{"create again with 0 conflicts", `"0"`, 412},
		{"matching version", `"1"`, 201},
		{"stale version", `"1"`, 412},
		{"weak matching", `W/"2"`, 201},
		{"list containing latest", `"1", "3"`, 201},
		{"list without latest", `"1", "2"`, 412},
		{"star on existing", `*`, 201},
		{"malformed", `"5`, 400},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := historyLen(t, ts, "app")
			r := ts.do(t, withHdr(put("/v1/configs/app", "text/plain", fmt.Sprintf("content %d", i)), "If-Match", tc.ifMatch))
			if r.code != tc.code {
				t.Fatalf("If-Match %s: %d %s, want %d", tc.ifMatch, r.code, r.body, tc.code)
			}
			if tc.code == 412 {
				if !strings.Contains(r.body, "latest version") {
					t.Errorf("412 message %q does not name the latest version", r.body)
				}
				if after := historyLen(t, ts, "app"); after != before {
					t.Errorf("history grew from %d to %d on a conflict", before, after)
				}
			}
		})
	}
	t.Run("star on absent config", func(t *testing.T) {
		r := ts.do(t, withHdr(put("/v1/configs/fresh", "text/plain", "x"), "If-Match", "*"))
		if r.code != 412 {
			t.Fatalf("%d %s, want 412", r.code, r.body)
		}
	})
	if got := counterValue(t, ts, "outrigger_config_rejects_total", "reason", "conflict"); got < 3 {
		t.Errorf("conflict rejects = %v, want ≥ 3", got)
	}
}

func TestValidationRejects(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxSize = 1024 })
	ts.do(t, put("/v1/configs/app", "application/json", `{"ok":true}`))
	tests := []struct {
		name    string
		r       req
		code    int
		msgPart string
		reason  string
	}{
		{"invalid JSON", put("/v1/configs/app", "application/json", "{\"a\": 1,\n \"b\": }"), 422, "line 2", "invalid"},
		{"invalid YAML", put("/v1/configs/app", "application/yaml", "a: [1, 2\nb: c: d\n"), 422, "yaml", "invalid"},
		{"invalid TOML", put("/v1/configs/app", "application/toml", "a = = 1\n"), 422, "toml", "invalid"},
		{"invalid XML", put("/v1/configs/app", "application/xml", "<a><b></a>"), 422, "xml", "invalid"},
		{"invalid XML text/xml", put("/v1/configs/app", "text/xml", "<a>"), 422, "xml", "invalid"},
		{"empty JSON", put("/v1/configs/app", "application/json", " "), 422, "empty", "invalid"},
		{"too large", put("/v1/configs/app", "text/plain", strings.Repeat("x", 1025)), 413, "1024", "too_large"},
		{"unknown type", put("/v1/configs/app", "image/png", "x"), 415, "unsupported", "unsupported_type"},
		{"missing type", req{method: "PUT", path: "/v1/configs/app", body: "x"}, 415, "Content-Type", "unsupported_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := counterValue(t, ts, "outrigger_config_rejects_total", "reason", tc.reason)
			r := ts.do(t, tc.r)
			if r.code != tc.code {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.code)
			}
			if !strings.Contains(strings.ToLower(r.body), strings.ToLower(tc.msgPart)) {
				t.Errorf("message %q does not mention %q", r.body, tc.msgPart)
			}
			if n := historyLen(t, ts, "app"); n != 1 {
				t.Errorf("history has %d versions after a rejected push, want 1", n)
			}
			if after := counterValue(t, ts, "outrigger_config_rejects_total", "reason", tc.reason); after != before+1 {
				t.Errorf("rejects{reason=%q} went %v → %v", tc.reason, before, after)
			}
		})
	}
}

func TestSchema(t *testing.T) {
	ts := startServer(t, nil)
	schema := `{"type":"object","required":["port"],"properties":{"port":{"type":"integer","minimum":1,"maximum":65535},"when":{"type":"string"}}}`
	if r := ts.do(t, put("/v1/schemas/app", "application/schema+json", schema)); r.code != 204 {
		t.Fatalf("PUT schema: %d %s", r.code, r.body)
	}
	if r := ts.do(t, get("/v1/schemas/app")); r.code != 200 || r.body != schema {
		t.Fatalf("GET schema: %d %s", r.code, r.body)
	}
	tests := []struct {
		name, ct, body string
		code           int
		msgPart        string
	}{
		{"json ok", "application/json", `{"port": 80}`, 201, ""},
		{"json wrong type", "application/json", `{"port": "80"}`, 422, "/port"},
		{"json missing required", "application/json", `{}`, 422, "port"},
		{"yaml ok", "application/yaml", "port: 81\nwhen: 2024-01-02T03:04:05Z\n", 201, ""},
		{"yaml out of range", "application/yaml", "port: 70000\n", 422, "maximum"},
		{"toml ok", "application/toml", "port = 82\nwhen = 1979-05-27\n", 201, ""},
		{"toml wrong type", "application/toml", "port = \"x\"\n", 422, "port"},
		{"xml cannot be checked", "application/xml", "<port>1</port>", 422, "cannot be checked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := historyLen(t, ts, "app")
			r := ts.do(t, put("/v1/configs/app", tc.ct, tc.body))
			if r.code != tc.code {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.code)
			}
			if tc.code == 422 {
				if !strings.Contains(r.body, tc.msgPart) {
					t.Errorf("message %q does not mention %q", r.body, tc.msgPart)
				}
				if after := historyLen(t, ts, "app"); after != before {
					t.Errorf("history %d → %d after a schema violation", before, after)
				}
			}
		})
	}
	badSchemas := []struct{ name, body string }{
		{"not JSON", `{"type":`},
		{"wrong keyword type", `{"type": 5}`},
		{"external file ref", `{"$ref": "file:///etc/passwd"}`},
		{"external http ref", `{"$ref": "http://127.0.0.1:1/s.json"}`},
	}
	for _, tc := range badSchemas {
		t.Run("bad schema "+tc.name, func(t *testing.T) {
			r := ts.do(t, put("/v1/schemas/other", "application/json", tc.body))
			if r.code != 422 {
				t.Fatalf("%d %s, want 422", r.code, r.body)
			}
			if r := ts.do(t, get("/v1/schemas/other")); r.code != 404 {
				t.Errorf("bad schema stored: GET %d", r.code)
			}
		})
	}
}

func TestBadNames(t *testing.T) {
	ts := startServer(t, nil)
	long := strings.Repeat("a", 200)
	paths := []struct{ name, path string }{
		{"dotdot", "/v1/configs/.."},
		{"encoded dotdot", "/v1/configs/%2e%2e"},
		{"encoded slash", "/v1/configs/a%2Fb"},
		{"NUL", "/v1/configs/a%00b"},
		{"leading dot", "/v1/configs/.hidden"},
		{"200 chars", "/v1/configs/" + long},
		{"space", "/v1/configs/a%20b"},
		{"unicode", "/v1/configs/%C3%A9t%C3%A9"},
	}
	for _, tc := range paths {
		t.Run(tc.name, func(t *testing.T) {
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			r := doURL(t, noRedirect, ts.url, put(tc.path, "text/plain", "x"))
			if r.code < 300 || (r.code >= 500) {
				t.Fatalf("PUT %s: %d %s, want a refusal", tc.path, r.code, r.body)
			}
			if r := doURL(t, noRedirect, ts.url, get(tc.path)); r.code < 300 || r.code >= 500 {
				t.Fatalf("GET %s: %d %s, want a refusal", tc.path, r.code, r.body)
			}
			r = ts.do(t, get("/v1/configs"))
			var l listResponse
			if err := json.Unmarshal([]byte(r.body), &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Configs) != 0 {
				t.Fatalf("something was stored: %+v", l.Configs)
			}
		})
	}
	t.Run("reported as 400 with the reason", func(t *testing.T) {
		r := ts.do(t, put("/v1/configs/a%00b", "text/plain", "x"))
		if r.code != 400 || !strings.Contains(r.body, "not allowed") {
			t.Fatalf("%d %s", r.code, r.body)
		}
		r = ts.do(t, put("/v1/configs/"+long, "text/plain", "x"))
		if r.code != 400 || !strings.Contains(r.body, "128") {
			t.Fatalf("%d %s", r.code, r.body)
		}
	})
}

func TestRollback(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "application/json", `{"v":1}`))
	ts.do(t, put("/v1/configs/app", "application/json", `{"v":2}`))
	r := ts.do(t, withHdr(req{method: "POST", path: "/v1/configs/app/rollback?to=1"}, "X-Outrigger-Author", "bob"))
	if r.code != 201 {
		t.Fatalf("rollback: %d %s", r.code, r.body)
	}
	v := decodeVersion(t, r.body)
	if v.Version != 3 || v.Author != "bob" || v.ContentType != "application/json" {
		t.Fatalf("rollback version = %+v", v)
	}
	if r := ts.do(t, get("/v1/configs/app")); r.body != `{"v":1}` || r.hdr.Get("ETag") != `"3"` {
		t.Fatalf("after rollback GET: %q %q", r.body, r.hdr.Get("ETag"))
	}
	tests := []struct {
		name string
		path string
		code int
	}{
		{"to the same content is a no-op", "/v1/configs/app/rollback?to=1", 200},
		{"missing to", "/v1/configs/app/rollback", 400},
		{"unknown version", "/v1/configs/app/rollback?to=42", 404},
		{"unknown config", "/v1/configs/nope/rollback?to=1", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := ts.do(t, req{method: "POST", path: tc.path}); r.code != tc.code {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.code)
			}
		})
	}
}

func TestStatusRoundTrip(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "text/plain", "one"))
	ts.do(t, put("/v1/configs/app", "text/plain", "two"))
	tests := []struct {
		name, sidecar, body string
		code                int
	}{
		{"numeric version", "pod-a", `{"version":2,"outcome":"applied","time":"2026-11-26T12:00:00Z"}`, 204},
		{"string version (source.Status)", "pod-b", `{"version":"1","outcome":"rejected","error":"nginx -t failed"}`, 204},
		{"bad outcome", "pod-c", `{"version":1,"outcome":"exploded"}`, 400},
		{"missing version", "pod-c", `{"outcome":"applied"}`, 400},
		{"malformed JSON", "pod-c", `{"version":`, 400},
		{"bad sidecar name", "..", `{"version":1,"outcome":"applied"}`, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, put("/v1/configs/app/status/"+tc.sidecar, "application/json", tc.body))
			if r.code != tc.code && !(tc.sidecar == ".." && r.code >= 300 && r.code < 500) {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.code)
			}
		})
	}
	r := ts.do(t, get("/v1/configs/app/status"))
	var rep StatusReport
	if err := json.Unmarshal([]byte(r.body), &rep); err != nil || r.code != 200 {
		t.Fatalf("status: %d %s %v", r.code, r.body, err)
	}
	if rep.Name != "app" || rep.Latest != 2 || len(rep.Sidecars) != 2 {
		t.Fatalf("status = %+v", rep)
	}
	a, b := rep.Sidecars[0], rep.Sidecars[1]
	if a.Sidecar != "pod-a" || a.Version != 2 || a.Outcome != "applied" || !a.Time.Equal(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("pod-a = %+v", a)
	}
	if b.Sidecar != "pod-b" || b.Version != 1 || b.Outcome != "rejected" || b.Error != "nginx -t failed" || b.Time.IsZero() {
		t.Errorf("pod-b = %+v", b)
	}
	if r := ts.do(t, get("/v1/configs/nope/status")); r.code != 404 {
		t.Errorf("status of unknown config: %d", r.code)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "text/plain", "x"))
	for _, p := range []string{"/healthz", "/readyz", "/readyz?verbose", "/status?format=json"} {
		deadline := time.Now().Add(10 * time.Second)
		r := ts.do(t, get(p))
		for r.code != 200 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			r = ts.do(t, get(p))
		}
		if r.code != 200 {
			t.Errorf("%s: %d %s", p, r.code, r.body)
		}
	}
	if r := ts.do(t, get("/readyz?verbose")); !strings.Contains(r.body, "[+] store ok") || !strings.Contains(r.body, "[+] watch-hub ok") {
		t.Errorf("readyz?verbose = %q", r.body)
	}
	if r := ts.do(t, get("/status?format=json")); !strings.Contains(r.body, "config-api") {
		t.Errorf("status = %q", r.body)
	}
	r := ts.do(t, get("/metrics"))
	for _, want := range []string{
		`outrigger_config_pushes_total{result="created"} 1`,
		"outrigger_config_rejects_total",
		"outrigger_config_watchers 0",
		"outrigger_config_requests_total",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
