package configapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// noRedirect is a client that reports redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestUIServesAssets(t *testing.T) {
	ts := startServer(t, nil)
	cases := []struct {
		name     string
		r        req
		code     int
		ctype    string // prefix of Content-Type
		contains string
		location string
	}{
		{name: "index", r: get("/ui/"), code: 200, ctype: "text/html; charset=utf-8", contains: `<script src="diff.js" defer></script>`},
		{name: "index by name", r: get("/ui/index.html"), code: 200, ctype: "text/html; charset=utf-8", contains: "<title>Outrigger configs</title>"},
		{name: "stylesheet", r: get("/ui/app.css"), code: 200, ctype: "text/css", contains: "--bg"},
		{name: "script", r: get("/ui/app.js"), code: 200, ctype: "text/javascript", contains: "'use strict';"},
		{name: "diff script", r: get("/ui/diff.js"), code: 200, ctype: "text/javascript", contains: "window.OutriggerDiff"},
		{name: "head", r: req{method: "HEAD", path: "/ui/app.js"}, code: 200, ctype: "text/javascript"},
		{name: "bare /ui redirects", r: get("/ui"), code: 301, location: "/ui/"},
		{name: "unknown asset", r: get("/ui/nope.js"), code: 404, ctype: "text/plain", contains: "nope.js"},
		{name: "subdirectory", r: get("/ui/ui/app.js"), code: 404},
		{name: "embed root is not exposed", r: get("/ui/ui.go"), code: 404},
		{name: "dot segments refused", r: get("/ui/../v1/configs"), code: 400},
		{name: "encoded traversal", r: get("/ui/..%2fui.go"), code: 400},
		{name: "encoded slash", r: get("/ui/x%2fapp.js"), code: 404},
		{name: "post is no endpoint", r: req{method: "POST", path: "/ui/", body: "x"}, code: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := doURL(t, noRedirect, ts.url, tc.r)
			if res.code != tc.code {
				t.Fatalf("%s %s: status %d, want %d; body %q", tc.r.method, tc.r.path, res.code, tc.code, res.body)
			}
			if tc.ctype != "" && !strings.HasPrefix(res.hdr.Get("Content-Type"), tc.ctype) {
				t.Errorf("Content-Type %q, want %q", res.hdr.Get("Content-Type"), tc.ctype)
			}
			if tc.contains != "" && !strings.Contains(res.body, tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			if tc.location != "" && res.hdr.Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", res.hdr.Get("Location"), tc.location)
			}
			if tc.code < 400 {
				checkUIHeaders(t, res.hdr)
			}
		})
	}
}

func checkUIHeaders(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q: want default-src 'self' and nothing unsafe", csp)
	}
	want := map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestUIWithTokens: the page itself needs no token (it carries no data),
// while the data calls it makes still do.
func TestUIWithTokens(t *testing.T) {
	dir := t.TempDir()
	tokens := writeFile(t, dir, "tokens.yaml", "tokens:\n  - {name: viewer, token: \"viewer-token-0123456789\", role: read}\n")
	ts := startServer(t, func(c *Config) { c.Tokens = tokens })
	if res := ts.do(t, get("/ui/")); res.code != 200 {
		t.Fatalf("GET /ui/ with --tokens and no token: %d, want 200", res.code)
	}
	if res := ts.do(t, get("/v1/configs")); res.code != 401 {
		t.Fatalf("GET /v1/configs without token: %d, want 401", res.code)
	}
	if res := ts.do(t, withHdr(get("/v1/configs"), "Authorization", "Bearer viewer-token-0123456789")); res.code != 200 {
		t.Fatalf("GET /v1/configs with token: %d, want 200", res.code)
	}
}

func TestUIConditionalGet(t *testing.T) {
	ts := startServer(t, nil)
	first := ts.do(t, get("/ui/app.js"))
	etag := first.hdr.Get("ETag")
	if first.code != 200 || etag == "" {
		t.Fatalf("GET /ui/app.js: %d, ETag %q", first.code, etag)
	}
	if cc := first.hdr.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	again := ts.do(t, withHdr(get("/ui/app.js"), "If-None-Match", etag))
	if again.code != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: %d, want 304", etag, again.code)
	}
}

// TestUIAssetHygiene guards the rules the CSP relies on and the escaping
// rule of the page: no inline scripts or styles, no handler attributes, no
// innerHTML, no eval, and only relative asset URLs.
func TestUIAssetHygiene(t *testing.T) {
	assets, err := loadUIAssets()
	if err != nil {
		t.Fatal(err)
	}
	html := string(assets["index.html"].data)
	js := string(assets["app.js"].data) + string(assets["diff.js"].data)
	cases := []struct {
		name, file, text string
		re               *regexp.Regexp
	}{
		{name: "inline script", file: "index.html", text: html, re: regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)},
		{name: "inline style element", file: "index.html", text: html, re: regexp.MustCompile(`<style`)},
		{name: "style attribute", file: "index.html", text: html, re: regexp.MustCompile(`\sstyle=`)},
		{name: "event handler attribute", file: "index.html", text: html, re: regexp.MustCompile(`\son[a-z]+=`)},
		{name: "absolute asset URL", file: "index.html", text: html, re: regexp.MustCompile(`(?:src|href)="(?:https?:)?//`)},
		{name: "innerHTML", file: "app.js+diff.js", text: js, re: regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write`)},
		{name: "eval", file: "app.js+diff.js", text: js, re: regexp.MustCompile(`\beval\(|new Function\(`)},
		{name: "string timers", file: "app.js+diff.js", text: js, re: regexp.MustCompile(`set(?:Timeout|Interval)\(\s*['"]`)},
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("index.html: script without src: %s", tag)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if m := tc.re.FindString(tc.text); m != "" {
				t.Errorf("%s contains %q", tc.file, m)
			}
		})
	}
}

// FuzzUIPath: whatever the path under /ui/, the handler serves one of the
// embedded files with its security headers, or refuses; it never
// serves anything else (the embed root, the API) and never panics.
func FuzzUIPath(f *testing.F) {
	for _, s := range []string{"", "index.html", "app.js", "app.css", "../handler.go", "ui.go", "a/b", "%2e%2e/x", "app.js/", "APP.JS", "\x00", "app.js?x=1", "app.js#x"} {
		f.Add(s)
	}
	st, err := store.OpenBolt(f.TempDir(), store.BoltOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	h, stop, err := NewHandler(st, DefaultConfig(), Deps{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(stop)
	assets, err := loadUIAssets()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/ui/", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.Path = "/ui/" + p
		r.URL.RawPath = ""
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			name := strings.TrimPrefix(r.URL.Path, "/ui/")
			if name == "" {
				name = "index.html"
			}
			a, ok := assets[name]
			if !ok {
				t.Fatalf("path %q: 200 for a file that is not an asset", r.URL.Path)
			}
			if !bytes.Equal(w.Body.Bytes(), a.data) {
				t.Fatalf("path %q: body is not asset %q", r.URL.Path, name)
			}
			checkUIHeaders(t, w.Result().Header)
		case http.StatusNotFound, http.StatusBadRequest:
		default:
			t.Fatalf("path %q: status %d", r.URL.Path, w.Code)
		}
	})
}
