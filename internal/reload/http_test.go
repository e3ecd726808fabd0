package reload

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTP(t *testing.T) {
	var lastMethod atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		lastMethod.Store(r.Method)
		if r.Header.Get("X-Test") != "" {
			w.Header().Set("X-Echo", r.Header.Get("X-Test"))
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "config rejected: line 3", http.StatusInternalServerError)
	})
	mux.HandleFunc("/redirect-loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/redirect-loop", http.StatusFound)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(strings.Repeat("x", 100000)))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(srv.Close)

	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/reload"
	ln.Close()

	tests := []struct {
		name string
		h    HTTP
		want string // "" = success
	}{
		{"200 with default POST", HTTP{URL: srv.URL + "/ok"}, ""},
		{"204 with PUT", HTTP{URL: srv.URL + "/ok", Method: http.MethodPut}, ""},
		{"204", HTTP{URL: srv.URL + "/nocontent"}, ""},
		{"500 carries body", HTTP{URL: srv.URL + "/fail"}, "500 Internal Server Error: config rejected: line 3"},
		{"404", HTTP{URL: srv.URL + "/missing"}, "404"},
		{"huge body truncated", HTTP{URL: srv.URL + "/huge"}, "more bytes"},
		{"redirect loop", HTTP{URL: srv.URL + "/redirect-loop"}, "redirects"},
		{"timeout", HTTP{URL: srv.URL + "/hang", Timeout: 100 * time.Millisecond}, "deadline exceeded"},
		{"connection refused", HTTP{URL: closed}, "refused"},
		{"bad URL", HTTP{URL: "http://[::1"}, "missing ']'"},
		{"bad method", HTTP{URL: srv.URL, Method: "BAD METHOD"}, "invalid method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.Reload(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
	if m, _ := lastMethod.Load().(string); m != http.MethodPut {
		t.Errorf("last method %q", m)
	}
}

func TestHTTPStringRedactsPassword(t *testing.T) {
	h := HTTP{URL: "http://user:secret@127.0.0.1:9/reload"}
	if s := h.String(); strings.Contains(s, "secret") || !strings.HasPrefix(s, "POST ") {
		t.Fatalf("String() = %q", s)
	}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		c    Command
		want string // "" = success
	}{
		{"true", Command{Cmd: "true"}, ""},
		{"writes a file", Command{Cmd: "echo reloaded > " + filepath.Join(dir, "out")}, ""},
		{"exit code with output", Command{Cmd: "echo 'nginx: [emerg] bad directive' >&2; exit 3"}, "exit status 3: nginx: [emerg] bad directive"},
		{"not found", Command{Cmd: "no-such-command-xyz"}, "not found"},
		{"timeout kills the group", Command{Cmd: "sleep 30 & sleep 30; wait", Timeout: 200 * time.Millisecond}, "timed out after 200ms"},
		{"huge output truncated", Command{Cmd: "yes | head -c 100000; exit 1"}, "more bytes"},
		{"empty", Command{}, "empty command"},
		{"env replaced", Command{Cmd: `test "$FOO" = bar`, Env: []string{"FOO=bar"}}, ""},
		{"dir used", Command{Cmd: "test -f out", Dir: dir}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Reload(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
			if len(err.Error()) > maxOutput+500 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestCommandContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Command{Cmd: "sleep 30"}).Reload(ctx); err == nil {
		t.Fatal("cancelled context: no error")
	}
}

type fakeCount struct {
	name  string
	err   error
	calls *atomic.Int32
}

func (f fakeCount) Reload(context.Context) error { f.calls.Add(1); return f.err }
func (f fakeCount) String() string               { return f.name }

func TestMulti(t *testing.T) {
	var a, b, c atomic.Int32
	errA := errors.New("a failed")
	errC := errors.New("c failed")
	m := Multi{
		fakeCount{"a", errA, &a},
		fakeCount{"b", nil, &b},
		fakeCount{"c", errC, &c},
	}
	err := m.Reload(context.Background())
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Fatalf("err = %v, want both failures", err)
	}
	if a.Load() != 1 || b.Load() != 1 || c.Load() != 1 {
		t.Fatalf("calls a=%d b=%d c=%d, want all once", a.Load(), b.Load(), c.Load())
	}
	if s := m.String(); s != "a + b + c" {
		t.Errorf("String() = %q", s)
	}
	if err := (Multi{}).Reload(context.Background()); err != nil {
		t.Errorf("empty Multi: %v", err)
	}
	// Real reloaders compose: a command and an HTTP hook.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	if err := (Multi{Command{Cmd: "true"}, HTTP{URL: srv.URL}}).Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
}
