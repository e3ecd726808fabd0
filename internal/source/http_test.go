package source

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a small real implementation of the config API's GET (with
// ETag, If-None-Match and ?wait long-poll) and status PUT for one config.
type fakeAPI struct {
	mu       sync.Mutex
	name     string
	versions []fakeVersion
	changed  chan struct{} // closed and replaced on every put
	token    string        // required bearer token ("" = none)
	requests int
	notMod   int
	statuses []fakeStatus
	fail     *fakeFail
	noSHA    bool
	badSHA   bool
}

type fakeVersion struct {
	data        []byte
	contentType string
}

type fakeStatus struct {
	path, contentType, auth string
	body                    map[string]any
}

type fakeFail struct {
	code int
	body string
}

func newFakeAPI(name string) *fakeAPI {
	return &fakeAPI{name: name, changed: make(chan struct{})}
}

func (f *fakeAPI) put(data, contentType string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions = append(f.versions, fakeVersion{[]byte(data), contentType})
	close(f.changed)
	f.changed = make(chan struct{})
	return len(f.versions)
}

func (f *fakeAPI) setToken(tok string) {
	f.mu.Lock()
	f.token = tok
	f.mu.Unlock()
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	tok, fail := f.token, f.fail
	f.mu.Unlock()
	if tok != "" && r.Header.Get("Authorization") != "Bearer "+tok {
		jsonError(w, http.StatusUnauthorized, "missing or unknown token")
		return
	}
	if fail != nil {
		w.WriteHeader(fail.code)
		_, _ = io.WriteString(w, fail.body)
		return
	}
	base := "/v1/configs/" + f.name
	switch {
	case r.Method == http.MethodGet && r.URL.Path == base:
		f.serveGet(w, r)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, base+"/status/"):
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			jsonError(w, http.StatusBadRequest, "status body: "+err.Error())
			return
		}
		f.mu.Lock()
		f.statuses = append(f.statuses, fakeStatus{r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), body})
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		jsonError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	}
}

func (f *fakeAPI) serveGet(w http.ResponseWriter, r *http.Request) {
	var wait time.Duration
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			jsonError(w, http.StatusBadRequest, fmt.Sprintf("wait %q: not a duration", ws))
			return
		}
		wait = d
	}
	inm := r.Header.Get("If-None-Match")
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		n := len(f.versions)
		changed := f.changed
		var v fakeVersion
		if n > 0 {
			v = f.versions[n-1]
		}
		f.mu.Unlock()
		if n == 0 {
			jsonError(w, http.StatusNotFound, fmt.Sprintf("config %q not found", f.name))
			return
		}
		etag := `"` + strconv.Itoa(n) + `"`
		if inm != etag {
			w.Header().Set("Content-Type", v.contentType)
			w.Header().Set("ETag", etag)
			w.Header().Set("X-Outrigger-Version", strconv.Itoa(n))
			sum := sha256.Sum256(v.data)
			f.mu.Lock()
			noSHA, badSHA := f.noSHA, f.badSHA
			f.mu.Unlock()
			switch {
			case badSHA:
				w.Header().Set("X-Outrigger-Sha256", strings.Repeat("0", 64))
			case !noSHA:
				w.Header().Set("X-Outrigger-Sha256", hex.EncodeToString(sum[:]))
			}
			_, _ = w.Write(v.data)
			return
		}
		if wait == 0 {
			break
		}
		select {
		case <-changed:
			continue
		case <-deadline.C:
		case <-r.Context().Done():
			return
		}
		break
	}
	f.mu.Lock()
	f.notMod++
	f.mu.Unlock()
	w.WriteHeader(http.StatusNotModified)
}

func (f *fakeAPI) counts() (requests, notModified int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, f.notMod
}

func startFakeAPI(t *testing.T) (*fakeAPI, *httptest.Server) {
	t.Helper()
	api := newFakeAPI("app")
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return api, srv
}

func openHTTPSource(t *testing.T, rawURL string, opts Options) *httpSource {
	t.Helper()
	if opts.Wait == 0 {
		opts.Wait = 200 * time.Millisecond
	}
	src, err := Open(rawURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := src.(*httpSource)
	hs.minPoll = 0
	t.Cleanup(func() { hs.Close() })
	return hs
}

func TestHTTPGetAndWatch(t *testing.T) {
	api, srv := startFakeAPI(t)
	api.put(`{"a":1}`, "application/json")
	src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	v1 := mustGet(t, src)
	if v1.Version != "1" || string(v1.Data) != `{"a":1}` || v1.ContentType != "application/json" || v1.Files != nil {
		t.Fatalf("Get = %+v", v1)
	}
	ch := watchAsync(ctx, src, "1")
	// Let the long-poll run out a few times: the source must loop on 304.
	deadline := time.Now().Add(testTimeout)
	for {
		if _, nm := api.counts(); nm >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 304 loops seen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	assertPending(t, ch)
	api.put(`{"a":2}`, "application/json")
	r := waitResult(t, ch)
	if r.err != nil || r.cfg.Version != "2" || string(r.cfg.Data) != `{"a":2}` {
		t.Fatalf("Watch = %+v, %v", r.cfg, r.err)
	}
	// after "" returns the current version at once; so does an old after.
	for _, after := range []string{"", "1", "abcdef0123456789", "bad\r\nheader"} {
		cfg, err := src.Watch(ctx, after)
		if err != nil || cfg.Version != "2" {
			t.Fatalf("Watch(%q) = %+v, %v", after, cfg, err)
		}
	}
}

func TestHTTPWatchCancel(t *testing.T) {
	api, srv := startFakeAPI(t)
	api.put("x", "text/plain")
	src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{Wait: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	ch := watchAsync(ctx, src, "1")
	assertPending(t, ch)
	cancel()
	if r := waitResult(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Watch after cancel: %v", r.err)
	}
}

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(api *fakeAPI)
		want  string
		is    error
	}{
		{name: "not found", setup: func(*fakeAPI) {}, want: `404 Not Found: config "app" not found`, is: ErrNotFound},
		{name: "unauthorized", setup: func(a *fakeAPI) { a.put("x", "text/plain"); a.setToken("s3cret") }, want: "401 Unauthorized: missing or unknown token"},
		{name: "server json error", setup: func(a *fakeAPI) {
			a.fail = &fakeFail{http.StatusServiceUnavailable, `{"error":"store unreachable: bbolt timeout"}`}
		}, want: "503 Service Unavailable: store unreachable: bbolt timeout"},
		{name: "plain text error", setup: func(a *fakeAPI) { a.fail = &fakeFail{http.StatusBadGateway, "upstream down\n"} }, want: "502 Bad Gateway: upstream down"},
		{name: "sha mismatch", setup: func(a *fakeAPI) { a.put("x", "text/plain"); a.badSHA = true }, want: "does not match X-Outrigger-Sha256"},
		{name: "no version header", setup: func(a *fakeAPI) {
			a.fail = &fakeFail{http.StatusOK, "hello"}
		}, want: "neither X-Outrigger-Version nor ETag"},
		{name: "empty body", setup: func(a *fakeAPI) { a.put("", "text/plain") }, want: "empty config"},
		{name: "tar content type but not a tar", setup: func(a *fakeAPI) { a.put("not a tar", "application/x-tar") }, want: "bundle: tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, srv := startFakeAPI(t)
			tt.setup(api)
			src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			for _, op := range []string{"get", "watch"} {
				var err error
				if op == "get" {
					_, err = src.Get(ctx)
				} else {
					_, err = src.Watch(ctx, "7")
				}
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("%s error %v, want %q", op, err, tt.want)
				}
				if !strings.Contains(err.Error(), srv.URL) {
					t.Errorf("%s error %q does not name the source", op, err)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("%s error %v is not %v", op, err, tt.is)
				}
			}
		})
	}
}

func TestHTTPTokens(t *testing.T) {
	api, srv := startFakeAPI(t)
	api.put("x", "text/plain")
	api.setToken("first")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	t.Run("token", func(t *testing.T) {
		src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{Token: "first"})
		mustGet(t, src)
	})
	t.Run("userinfo", func(t *testing.T) {
		u := strings.Replace(srv.URL, "http://", "http://:first@", 1)
		src := openHTTPSource(t, u+"/v1/configs/app", Options{})
		mustGet(t, src)
		if strings.Contains(src.String(), "first") {
			t.Fatalf("String() leaks the token: %s", src)
		}
	})
	t.Run("token file re-read", func(t *testing.T) {
		tf := filepath.Join(t.TempDir(), "token")
		writeFile(t, tf, "first\n")
		src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{TokenFile: tf})
		mustGet(t, src)
		api.setToken("second")
		defer api.setToken("first")
		if _, err := src.Get(ctx); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("Get with old token: %v", err)
		}
		writeFile(t, tf, "second")
		mustGet(t, src)
		writeFile(t, tf, "  \n")
		if _, err := src.Get(ctx); err == nil || !strings.Contains(err.Error(), "is empty") {
			t.Fatalf("Get with empty token file: %v", err)
		}
		if err := os.Remove(tf); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Get(ctx); err == nil || !strings.Contains(err.Error(), "--token-file") {
			t.Fatalf("Get with missing token file: %v", err)
		}
	})
}

func TestHTTPReport(t *testing.T) {
	api, srv := startFakeAPI(t)
	api.setToken("tok")
	src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{Token: "tok"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var rep Reporter = src
	when := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	if err := rep.Report(ctx, Status{Sidecar: "web-0", Version: "7", Outcome: "rejected", Error: "check failed", Time: when}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	got := api.statuses
	api.mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("statuses = %v", got)
	}
	st := got[0]
	if st.path != "/v1/configs/app/status/web-0" || st.contentType != "application/json" || st.auth != "Bearer tok" {
		t.Fatalf("status request = %+v", st)
	}
	want := map[string]any{"version": float64(7), "outcome": "rejected", "error": "check failed", "time": "2026-11-26T12:00:00Z"}
	for k, v := range want {
		if st.body[k] != v {
			t.Errorf("body[%q] = %v, want %v", k, st.body[k], v)
		}
	}
	bad := []struct {
		name string
		st   Status
		want string
	}{
		{"bad sidecar", Status{Sidecar: "../x", Version: "1", Outcome: "applied"}, "sidecar name"},
		{"empty sidecar", Status{Version: "1", Outcome: "applied"}, "sidecar name"},
		{"hash version", Status{Sidecar: "a", Version: "abcdef0123456789", Outcome: "applied"}, "not a config API version"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := rep.Report(ctx, tt.st); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Report: %v, want %q", err, tt.want)
			}
		})
	}
	api.setToken("other")
	if err := rep.Report(ctx, Status{Sidecar: "a", Version: "1", Outcome: "applied"}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Report with a wrong token: %v", err)
	}
}

// makeTar builds a tar from entries; a nil body means a header-only entry.
func makeTar(t testing.TB, entries []tar.Header, bodies []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, h := range entries {
		if h.Typeflag == tar.TypeReg && i < len(bodies) {
			h.Size = int64(len(bodies[i]))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && i < len(bodies) {
			if _, err := io.WriteString(tw, bodies[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg} }

func TestHTTPTarBundle(t *testing.T) {
	api, srv := startFakeAPI(t)
	good := makeTar(t, []tar.Header{{Name: "./", Typeflag: tar.TypeDir}, reg("./app.conf"), {Name: "conf.d/", Typeflag: tar.TypeDir}, reg("conf.d/a.ini")}, []string{"", "main", "", "[a]"})
	api.put(string(good), "application/x-tar")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, bundle := range []bool{false, true} {
		src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{Bundle: bundle})
		cfg, err := src.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Data != nil || len(cfg.Files) != 2 || string(cfg.Files["app.conf"]) != "main" || string(cfg.Files["conf.d/a.ini"]) != "[a]" {
			t.Fatalf("bundle=%v: Files = %v, Data = %q", bundle, cfg.Files, cfg.Data)
		}
	}
	hostile := makeTar(t, []tar.Header{reg("../escape")}, []string{"x"})
	api.put(string(hostile), "application/x-tar")
	src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{})
	if _, err := src.Watch(ctx, "1"); err == nil || !strings.Contains(err.Error(), "'..'") {
		t.Fatalf("hostile tar: %v", err)
	}
}

func TestUntarBundleHostile(t *testing.T) {
	many := make([]tar.Header, MaxBundleFiles+1)
	manyBodies := make([]string, len(many))
	for i := range many {
		many[i] = reg(fmt.Sprintf("f%d", i))
		manyBodies[i] = "x"
	}
	tests := []struct {
		name    string
		tar     []byte
		want    string
		tooBig  bool
		wantLen int
	}{
		{name: "ok", tar: makeTar(t, []tar.Header{reg("a"), reg("b/c")}, []string{"1", "2"}), wantLen: 2},
		{name: "dot dot", tar: makeTar(t, []tar.Header{reg("a/../../x")}, []string{"x"}), want: "'..'"},
		{name: "absolute", tar: makeTar(t, []tar.Header{reg("/etc/passwd")}, []string{"x"}), want: "absolute"},
		{name: "backslash", tar: makeTar(t, []tar.Header{reg(`..\x`)}, []string{"x"}), want: "backslash"},
		{name: "symlink", tar: makeTar(t, []tar.Header{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, nil), want: "links are not allowed"},
		{name: "hardlink", tar: makeTar(t, []tar.Header{reg("a"), {Name: "l", Typeflag: tar.TypeLink, Linkname: "a"}}, []string{"x"}), want: "links are not allowed"},
		{name: "device", tar: makeTar(t, []tar.Header{{Name: "d", Typeflag: tar.TypeChar}}, nil), want: "not a regular file"},
		{name: "fifo", tar: makeTar(t, []tar.Header{{Name: "p", Typeflag: tar.TypeFifo}}, nil), want: "not a regular file"},
		{name: "duplicate", tar: makeTar(t, []tar.Header{reg("a"), reg("./a")}, []string{"1", "2"}), want: "twice"},
		{name: "file and dir", tar: makeTar(t, []tar.Header{reg("a"), reg("a/b")}, []string{"1", "2"}), want: "both a file and the directory"},
		{name: "dir traversal", tar: makeTar(t, []tar.Header{{Name: "../d/", Typeflag: tar.TypeDir}, reg("a")}, []string{"", "1"}), want: "'..'"},
		{name: "too many files", tar: makeTar(t, many, manyBodies), tooBig: true},
		{name: "empty", tar: makeTar(t, nil, nil), want: "no regular files"},
		{name: "only dirs", tar: makeTar(t, []tar.Header{{Name: "d/", Typeflag: tar.TypeDir}}, nil), want: "no regular files"},
		{name: "garbage", tar: []byte(strings.Repeat("garbage!", 100)), want: "tar:"},
		{name: "truncated", tar: makeTar(t, []tar.Header{reg("a")}, []string{strings.Repeat("x", 2000)})[:1000], want: "tar:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := untarBundle(tt.tar)
			switch {
			case tt.tooBig:
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("err = %v, want ErrTooLarge", err)
				}
			case tt.want != "":
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
			default:
				if err != nil || len(files) != tt.wantLen {
					t.Fatalf("files = %v, err = %v", files, err)
				}
			}
		})
	}
}

func TestUntarBundleSizeLimit(t *testing.T) {
	// A header that claims more than MaxBytes must be refused before any
	// allocation of that size.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: MaxBytes + 1, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	// Do not write the body: the reader must stop at the header.
	if _, err := untarBundle(buf.Bytes()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// FuzzUntarBundle: never panics, and whatever it accepts is within limits
// and has only clean relative names.
func FuzzUntarBundle(f *testing.F) {
	f.Add(makeTar(f, []tar.Header{reg("a"), reg("b/c")}, []string{"1", "2"}))
	f.Add(makeTar(f, []tar.Header{reg("../x")}, []string{"1"}))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := untarBundle(data)
		if err != nil {
			return
		}
		total := 0
		for name, content := range files {
			if clean, err := bundleName(name); err != nil || clean != name {
				t.Fatalf("accepted name %q (%v)", name, err)
			}
			total += len(content)
		}
		if len(files) == 0 || len(files) > MaxBundleFiles || total > MaxBytes {
			t.Fatalf("accepted %d files, %d bytes", len(files), total)
		}
	})
}

func TestHTTPDeadServerNoticed(t *testing.T) {
	// A server that accepts and never answers: the transport's
	// response-header timeout must turn that into an error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	src := openHTTPSource(t, "http://"+ln.Addr().String()+"/v1/configs/app", Options{Wait: 100 * time.Millisecond})
	tr := src.client.Transport.(*http.Transport)
	if want := 100*time.Millisecond + headerSlack; tr.ResponseHeaderTimeout != want {
		t.Fatalf("ResponseHeaderTimeout = %v, want %v", tr.ResponseHeaderTimeout, want)
	}
	tr.ResponseHeaderTimeout = 300 * time.Millisecond // keep the test short
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err = src.Watch(ctx, "1")
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("Watch against a dead server: %v (ctx %v)", err, ctx.Err())
	}
}

func TestHTTPSWithCAFile(t *testing.T) {
	api := newFakeAPI("app")
	api.put("secure", "text/plain")
	srv := httptest.NewTLSServer(api)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{CAFile: ca})
	cfg, err := src.Get(ctx)
	if err != nil || string(cfg.Data) != "secure" {
		t.Fatalf("Get over TLS = %q, %v", cfg.Data, err)
	}
	untrusting := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{})
	if _, err := untrusting.Get(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Get without the CA: %v", err)
	}
	badCA := filepath.Join(t.TempDir(), "bad.pem")
	writeFile(t, badCA, "not pem")
	if _, err := Open(srv.URL+"/v1/configs/app", Options{CAFile: badCA}); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Fatalf("Open with a bad CA file: %v", err)
	}
}

func TestFormatWait(t *testing.T) {
	for d, want := range map[time.Duration]string{60 * time.Second: "60s", 1500 * time.Millisecond: "1500ms", 200 * time.Millisecond: "200ms"} {
		if got := formatWait(d); got != want {
			t.Errorf("formatWait(%v) = %q, want %q", d, got, want)
		}
	}
}
