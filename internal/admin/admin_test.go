package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// start runs a Server on 127.0.0.1:0 for the test and returns its base URL.
func start(t *testing.T, cfg Config, deps Deps) string {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return "http://" + s.Addr().String()
}

// get performs one request and returns status, content type and body.
func get(t *testing.T, method, url string, header http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

type snapshot struct {
	Upstream string            `json:"upstream"`
	Version  int               `json:"version"`
	Certs    map[string]string `json:"certs"`
	Tags     []string          `json:"tags"`
	Note     string            `json:"note"`
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "outrigger_test_requests_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)

	var upstreamDown atomic.Bool
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	checks := []Check{
		{Name: "cert", Ready: func() error { return nil }},
		{Name: "upstream", Ready: func() error {
			if upstreamDown.Load() {
				return errors.New("dial tcp 127.0.0.1:8080: connection refused\nsecond line")
			}
			return nil
		}},
	}
	base := start(t, Config{Pprof: true}, Deps{
		Gatherer: reg,
		Checks:   checks,
		Status: func() any {
			return snapshot{Upstream: "http://127.0.0.1:8080", Version: 7,
				Certs: map[string]string{"main": "CN=example"}, Tags: []string{"a", "b"}, Note: "<script>x</script>"}
		},
	})
	plain := start(t, Config{}, Deps{Checks: []Check{
		{Name: "panics", Ready: func() error { panic("boom") }},
		{Name: "hangs", Ready: func() error { <-release; return nil }},
		{Name: "nil func"},
	}})

	tests := []struct {
		name     string
		base     string
		method   string
		path     string
		accept   string
		down     bool
		wantCode int
		wantCT   string
		want     []string
		dontWant []string
	}{
		{name: "healthz", path: "/healthz", wantCode: 200, wantCT: "text/plain", want: []string{"ok"}},
		{name: "healthz head", method: "HEAD", path: "/healthz", wantCode: 200},
		{name: "healthz post refused", method: "POST", path: "/healthz", wantCode: 405},
		{name: "readyz ready", path: "/readyz", wantCode: 200, want: []string{"ready\n"}, dontWant: []string{"[+]"}},
		{name: "readyz verbose", path: "/readyz?verbose", wantCode: 200, want: []string{"[+] cert ok\n", "[+] upstream ok\n", "ready\n"}},
		{name: "readyz failing", path: "/readyz", down: true, wantCode: 503,
			want: []string{"[-] upstream: dial tcp 127.0.0.1:8080: connection refused second line\n", "not ready\n"}, dontWant: []string{"cert"}},
		{name: "readyz failing verbose", path: "/readyz?verbose", down: true, wantCode: 503, want: []string{"[+] cert ok", "[-] upstream:"}},
		{name: "readyz panicking and hanging checks", base: plain, path: "/readyz", wantCode: 503,
			want: []string{"[-] panics: check panicked: boom", "[-] hangs: no answer within 800ms"}, dontWant: []string{"nil func"}},
		{name: "readyz delete refused", method: "DELETE", path: "/readyz", wantCode: 405},
		{name: "metrics", path: "/metrics", wantCode: 200, want: []string{"outrigger_test_requests_total 3", "go_goroutines"}},
		{name: "metrics without gatherer", base: plain, path: "/metrics", wantCode: 200},
		{name: "status html", path: "/status", accept: "text/html,application/xhtml+xml", wantCode: 200, wantCT: "text/html",
			want:     []string{"<td>upstream</td>", "http://127.0.0.1:8080", "<td>certs.main</td>", "a, b", "&lt;script&gt;", "class=\"ok\">ready"},
			dontWant: []string{"<script>x"}},
		{name: "status html not ready", path: "/status", down: true, wantCode: 200, want: []string{"not ready", "connection refused"}},
		{name: "status json by accept", path: "/status", accept: "application/json", wantCode: 200, wantCT: "application/json",
			want: []string{`"ready": true`, `"version": 7`, `"name": "upstream"`}},
		{name: "status json by query", path: "/status?format=json", wantCode: 200, wantCT: "application/json", want: []string{`"status": {`}},
		{name: "status without snapshot", base: plain, path: "/status?format=json", wantCode: 200, want: []string{`"ready": false`}, dontWant: []string{`"status"`}},
		{name: "status put refused", method: "PUT", path: "/status", wantCode: 405},
		{name: "pprof index", path: "/debug/pprof/", wantCode: 200, want: []string{"goroutine"}},
		{name: "pprof goroutine", path: "/debug/pprof/goroutine?debug=1", wantCode: 200, want: []string{"goroutine profile"}},
		{name: "pprof off by default", base: plain, path: "/debug/pprof/", wantCode: 404},
		{name: "index", path: "/", wantCode: 200, want: []string{"/healthz", "/debug/pprof/"}},
		{name: "unknown path", path: "/nope", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstreamDown.Store(tt.down)
			defer upstreamDown.Store(false)
			b := tt.base
			if b == "" {
				b = base
			}
			method := tt.method
			if method == "" {
				method = "GET"
			}
			h := http.Header{}
			if tt.accept != "" {
				h.Set("Accept", tt.accept)
			}
			code, ct, body := get(t, method, b+tt.path, h)
			if code != tt.wantCode {
				t.Fatalf("%s %s = %d, want %d; body %q", method, tt.path, code, tt.wantCode, body)
			}
			if tt.wantCT != "" && !strings.HasPrefix(ct, tt.wantCT) {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantCT)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(body, w) {
					t.Errorf("body has %q:\n%s", w, body)
				}
			}
		})
	}
}

func TestMountOnForeignMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	Mount(mux, Deps{Checks: []Check{{Name: "store", Ready: func() error { return errors.New("bolt closed") }}}})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct {
		name, method, path string
		want               int
	}{
		{name: "healthz", method: "GET", path: "/healthz", want: 200},
		{name: "post to healthz is 405, not the catch-all", method: "POST", path: "/healthz", want: 405},
		{name: "readyz failing", method: "GET", path: "/readyz", want: 503},
		{name: "catch-all still works", method: "GET", path: "/v1/configs", want: http.StatusTeapot},
		{name: "no pprof through Mount", method: "GET", path: "/debug/pprof/", want: http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := get(t, tt.method, srv.URL+tt.path, nil)
			if code != tt.want {
				t.Fatalf("%s %s = %d (%q), want %d", tt.method, tt.path, code, body, tt.want)
			}
		})
	}
}

func TestNewPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = New(Config{Addr: addr}, Deps{})
	if err == nil || !strings.Contains(err.Error(), `--admin "`+addr+`"`) {
		t.Fatalf("New on a busy port = %v, want an error naming --admin %q", err, addr)
	}
	if _, err := New(Config{Addr: "nonsense"}, Deps{}); err == nil || !strings.Contains(err.Error(), "--admin") {
		t.Fatalf("New with a bad address = %v", err)
	}
}

func TestRunLifecycle(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	url := "http://" + s.Addr().String() + "/healthz"
	if code, _, _ := get(t, "GET", url, nil); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Fatal("listener still accepting after Run returned")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Run = %v", err)
	}
}

func TestCloseWithoutRun(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not released by Close: %v", err)
	}
	ln.Close()
}

func TestWantsJSON(t *testing.T) {
	tests := []struct {
		name, query, accept string
		want                bool
	}{
		{name: "browser", accept: "text/html,application/xhtml+xml,*/*;q=0.8", want: false},
		{name: "curl default", accept: "*/*", want: false},
		{name: "json", accept: "application/json", want: true},
		{name: "problem json", accept: "application/problem+json", want: true},
		{name: "json and html prefers html", accept: "application/json, text/html", want: false},
		{name: "query wins", query: "format=json", accept: "text/html", want: true},
		{name: "query html", query: "format=html", accept: "application/json", want: false},
		{name: "garbage accept", accept: ";;;,", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/status?"+tt.query, nil)
			r.Header.Set("Accept", tt.accept)
			if got := wantsJSON(r); got != tt.want {
				t.Fatalf("wantsJSON = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFlatten(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want []row
	}{
		{name: "nil", in: nil, want: nil},
		{name: "scalar", in: 42, want: []row{{"status", "42"}}},
		{name: "nested", in: map[string]any{"b": map[string]any{"c": true}, "a": "x"}, want: []row{{"a", "x"}, {"b.c", "true"}}},
		{name: "scalar array", in: map[string]any{"l": []any{1, "two", nil}}, want: []row{{"l", "1, two, null"}}},
		{name: "object array", in: map[string]any{"l": []any{map[string]any{"n": 1}}}, want: []row{{"l[0].n", "1"}}},
		{name: "big number kept exact", in: json.RawMessage(`{"n": 12345678901234567890}`), want: []row{{"n", "12345678901234567890"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got := flatten(raw)
			if len(got) != len(tt.want) {
				t.Fatalf("flatten = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("flatten = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestStatusSnapshotFailures(t *testing.T) {
	tests := []struct {
		name   string
		status func() any
		want   string
	}{
		{name: "panics", status: func() any { panic("nil map") }, want: "status panicked: nil map"},
		{name: "unencodable", status: func() any { return map[string]any{"c": make(chan int)} }, want: "encode status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := start(t, Config{}, Deps{Status: tt.status})
			for _, q := range []string{"", "?format=json"} {
				code, _, body := get(t, "GET", base+"/status"+q, nil)
				if code != 200 || !strings.Contains(body, tt.want) {
					t.Fatalf("/status%s = %d %q, want 200 containing %q", q, code, body, tt.want)
				}
			}
		})
	}
}

func FuzzFlatten(f *testing.F) {
	for _, s := range []string{`{"a":{"b":[1,{"c":null}]}}`, `[]`, `"x"`, `{"":{"":[]}}`, `[[[[1]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rows := flatten(raw)
		for i := 1; i < len(rows); i++ {
			if rows[i-1].Key > rows[i].Key {
				t.Fatalf("rows not sorted: %v", rows)
			}
		}
	})
}

func FuzzWantsJSON(f *testing.F) {
	for _, s := range []string{"application/json", "text/html;q=0.9, application/json", "*/*", `a/b; c="`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		r := httptest.NewRequest("GET", "/status", nil)
		r.Header.Set("Accept", accept)
		_ = wantsJSON(r)
	})
}
