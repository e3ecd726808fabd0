package forward

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDeadlineSlack(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    time.Duration
		want time.Duration
	}{
		{"tiny", 16 * time.Millisecond, time.Millisecond},
		{"one second", time.Second, time.Second / 16},
		{"capped", time.Minute, maxDeadlineSlack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := deadlineSlack(tc.d); got != tc.want {
				t.Errorf("deadlineSlack(%v) = %v, want %v", tc.d, got, tc.want)
			}
		})
	}
}

// TestArmReadDeadline checks that an armed deadline is kept while it is at
// least d away and re-armed (never early) otherwise.
func TestArmReadDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	uc := &upConn{nc: a}
	const d = time.Second
	t0 := time.Now()
	uc.armReadDeadline(t0, d)
	first := uc.rdl
	if want := t0.Add(d + deadlineSlack(d)); !first.Equal(want) {
		t.Fatalf("armed %v, want %v", first, want)
	}
	for _, tc := range []struct {
		name    string
		at      time.Duration // after t0
		rearmed bool
	}{
		{"same instant", 0, false},
		{"within the slack", deadlineSlack(d) / 2, false},
		{"at the slack's end", deadlineSlack(d), false},
		{"past the slack", deadlineSlack(d) + time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uc.rdl = first
			now := t0.Add(tc.at)
			uc.armReadDeadline(now, d)
			if got := !uc.rdl.Equal(first); got != tc.rearmed {
				t.Fatalf("re-armed = %v, want %v", got, tc.rearmed)
			}
			if uc.rdl.Before(now.Add(d)) {
				t.Fatalf("deadline %v is less than d after %v: the timeout would fire early", uc.rdl, now)
			}
		})
	}
	uc.clearReadDeadline()
	if !uc.rdl.IsZero() {
		t.Fatal("clearReadDeadline kept a deadline")
	}
}

// TestDirectUpstreamTimeoutOnReusedConn checks the coarse deadline end to
// end: a deadline left armed by a buffered response must neither cut the
// next request on the same connection early nor a slow streamed body, and a
// slow app still gets 504.
func TestDirectUpstreamTimeoutOnReusedConn(t *testing.T) {
	const timeout = 400 * time.Millisecond
	s := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fast":
			_, _ = io.WriteString(w, "fast")
		case "/late": // answers within the timeout, but past the first request's deadline
			time.Sleep(timeout / 2)
			_, _ = io.WriteString(w, "late")
		case "/stream": // headers at once, then a body slower than the timeout
			w.WriteHeader(http.StatusOK)
			for range 3 {
				_, _ = io.WriteString(w, "tick")
				w.(http.Flusher).Flush()
				time.Sleep(timeout / 2)
			}
		case "/hang":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}), nil)
	e := newEnv(t, Config{Upstream: mustUpstream(t, s.URL), DirectHTTP1: true, UpstreamTimeout: timeout}, nil)
	c := e.client(t, false)
	for _, step := range []struct {
		path, body string
		status     int
		sleep      time.Duration // before the request
	}{
		{"/fast", "fast", http.StatusOK, 0},
		{"/late", "late", http.StatusOK, timeout * 3 / 4},
		{"/fast", "fast", http.StatusOK, 0},
		{"/stream", strings.Repeat("tick", 3), http.StatusOK, 0},
		{"/fast", "fast", http.StatusOK, 0},
		{"/hang", "", http.StatusGatewayTimeout, 0},
	} {
		time.Sleep(step.sleep)
		resp, err := c.Get(e.front.URL + step.path)
		if err != nil {
			t.Fatalf("GET %s: %v", step.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: reading body: %v", step.path, err)
		}
		if resp.StatusCode != step.status {
			t.Fatalf("GET %s: status %d, want %d", step.path, resp.StatusCode, step.status)
		}
		if step.status == http.StatusOK && string(body) != step.body {
			t.Fatalf("GET %s: body %q, want %q", step.path, body, step.body)
		}
		if step.status == http.StatusGatewayTimeout && !strings.Contains(string(body), "504") {
			t.Fatalf("GET %s: body %q", step.path, body)
		}
	}
}
