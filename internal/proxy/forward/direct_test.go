package forward

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDirectModeSuite re-runs this package's tests in a child process with
// DirectHTTP1 enabled in every end-to-end environment.
func TestDirectModeSuite(t *testing.T) {
	if testDirect {
		t.Skip("already running in direct mode")
	}
	if testing.Short() {
		t.Skip("runs the whole suite again")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^Test", "-test.skip=^TestDirectModeSuite$", "-test.timeout=300s")
	cmd.Env = append(os.Environ(), directEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("suite with DirectHTTP1 failed: %v\n%s", err, out)
	}
}

func TestDirectEligibility(t *testing.T) {
	up := mustUpstream(t, "http://127.0.0.1:1")
	h, err := New(Config{Upstream: up, DirectHTTP1: true}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(method, target string, body io.Reader, cl int64) *http.Request {
		r, _ := http.NewRequest(method, target, body)
		r.ContentLength = cl
		return r
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"GET", mk("GET", "http://x/a?b=c", nil, 0), true},
		{"small POST", mk("POST", "http://x/", strings.NewReader("x"), 1), true},
		{"64 KiB POST", mk("POST", "http://x/", strings.NewReader("x"), directMaxBody), true},
		{"large POST", mk("POST", "http://x/", strings.NewReader("x"), directMaxBody+1), false},
		{"unknown length", mk("POST", "http://x/", strings.NewReader("x"), -1), false},
		{"semicolon query", mk("GET", "http://x/?a=1;b=2", nil, 0), false},
		{"CONNECT", mk("CONNECT", "http://x/", nil, 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.directEligible(tc.r); got != tc.want {
				t.Errorf("directEligible = %v, want %v", got, tc.want)
			}
		})
	}
	h2c, err := New(Config{Upstream: mustUpstream(t, "h2c://127.0.0.1:1"), DirectHTTP1: true}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if h2c.directEligible(mk("GET", "http://x/", nil, 0)) {
		t.Error("h2c upstream took the direct path")
	}
}

// TestDirectPoolReuseAndStaleConns checks that the direct path reuses its
// connection and notices when the app closed an idle one.
func TestDirectPoolReuseAndStaleConns(t *testing.T) {
	var conns int
	s := httptestServer(t, http.HandlerFunc(echoHandler), func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns++
		}
	})
	e := newEnv(t, Config{Upstream: mustUpstream(t, s.URL), DirectHTTP1: true}, nil)
	c := e.client(t, false)
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/p", strings.NewReader("abc"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeEcho(t, resp); got.Body != "abc" || got.Proto != "HTTP/1.1" {
			t.Fatalf("upstream saw %+v", got)
		}
	}
	if len(e.h.pool.idle) != 1 {
		t.Fatalf("%d idle direct connections, want 1", len(e.h.pool.idle))
	}
	// Pooled, it holds no buffers (they went back to their pools, and
	// came back for each of the three requests on it).
	if uc := e.h.pool.idle[0]; uc.br != nil || uc.bw != nil || uc.body.br != nil || uc.resp.Body != nil {
		t.Errorf("idle pooled connection holds buffers or a response: br %v bw %v body %v resp %v",
			uc.br != nil, uc.bw != nil, uc.body.br != nil, uc.resp.Body != nil)
	}
	// The app drops its idle connections (as on restart or idle timeout);
	// a POST must not be sent on the dead one.
	s.CloseClientConnections()
	waitFor(t, func() bool { return !e.h.pool.idle[0].alive() })
	req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/p", strings.NewReader("after"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeEcho(t, resp); got.Body != "after" {
		t.Errorf("upstream saw %+v", got)
	}
}
