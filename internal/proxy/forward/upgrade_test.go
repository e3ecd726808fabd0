package forward

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsEcho is a WebSocket app that echoes messages until the peer closes.
func wsEcho(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Logf("accept: %v", err)
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
}

func dialWS(t *testing.T, e *env) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	u := "wss" + strings.TrimPrefix(e.front.URL, "https") + "/ws"
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: e.client(t, false)})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	return c
}

func echoOnce(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != msg {
		t.Fatalf("read %d bytes, %v; want the %d bytes sent", len(got), err, len(msg))
	}
}

func TestWebSocketEchoAndDrain(t *testing.T) {
	_, up := startUpstream(t, wsEcho(t))
	// MaxInflight 1 and no queue: upgraded connections must not take slots.
	e := newEnv(t, Config{Upstream: up, MaxInflight: 1, AccessLog: true}, nil)

	t.Run("echo", func(t *testing.T) {
		c := dialWS(t, e)
		for _, m := range []string{"hello", strings.Repeat("big", 10000), ""} {
			echoOnce(t, c, m)
		}
		// Ordinary requests still get the in-flight slot.
		if code, _, _ := get(t, e.client(t, true), e.front.URL+"/plain"); code == http.StatusServiceUnavailable {
			t.Errorf("plain request rejected while a WebSocket is open")
		}
		if n := e.h.Upgraded(); n != 1 {
			t.Errorf("Upgraded() = %d, want 1", n)
		}
		_ = c.Close(websocket.StatusNormalClosure, "bye")
		waitFor(t, func() bool { return e.h.Upgraded() == 0 })
		waitFor(t, func() bool {
			return metricValue(t, e.reg, "outrigger_requests_total", map[string]string{"code": "101", "method": "GET"}) == 1
		})
	})

	t.Run("drain waits for the client to close", func(t *testing.T) {
		c := dialWS(t, e)
		echoOnce(t, c, "before drain")
		drained := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			drained <- e.h.Drain(ctx)
		}()
		// Still usable while draining.
		echoOnce(t, c, "during drain")
		select {
		case err := <-drained:
			t.Fatalf("Drain returned %v with a connection open", err)
		default:
		}
		_ = c.Close(websocket.StatusGoingAway, "done")
		if err := <-drained; err != nil {
			t.Errorf("Drain: %v", err)
		}
	})

	t.Run("new upgrades refused while draining", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		u := "wss" + strings.TrimPrefix(e.front.URL, "https") + "/ws"
		_, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: e.client(t, false)})
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("dial while draining: resp %v, err %v; want 503", resp, err)
		}
	})
}

func TestDrainDeadlineClosesUpgraded(t *testing.T) {
	_, up := startUpstream(t, wsEcho(t))
	e := newEnv(t, Config{Upstream: up}, nil)
	c := dialWS(t, e)
	echoOnce(t, c, "x")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := e.h.Drain(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 upgraded") {
		t.Errorf("Drain = %v, want deadline error naming 1 connection", err)
	}
	// The connection was cut: the client sees it end.
	rctx, rcancel := context.WithTimeout(context.Background(), testTimeout)
	defer rcancel()
	if _, _, err := c.Read(rctx); err == nil {
		t.Error("read on a drained connection succeeded")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Error("connection was not closed by Drain")
	}
	waitFor(t, func() bool { return e.h.Upgraded() == 0 })
	if err := e.h.Drain(context.Background()); err != nil {
		t.Errorf("second Drain: %v", err)
	}
}

func TestUpgradeRejectedByApp(t *testing.T) {
	_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	}))
	e := newEnv(t, Config{Upstream: up}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	u := "wss" + strings.TrimPrefix(e.front.URL, "https") + "/ws"
	_, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: e.client(t, false)})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("resp %v err %v, want the app's 403", resp, err)
	}
	if e.h.Upgraded() != 0 {
		t.Error("rejected upgrade still tracked")
	}
}

// TestUpgradeHeaderDoesNotBypassLimit: a request with Upgrade headers that
// the app answers normally must still be subject to MaxInflight.
func TestUpgradeHeaderDoesNotBypassLimit(t *testing.T) {
	app := newBlockingApp()
	_, up := startUpstream(t, app)
	defer app.releaseAll()
	e := newEnv(t, Config{Upstream: up, MaxInflight: 1}, nil)
	c := e.client(t, false)
	done := make(chan int, 1)
	go func() { code, _, _ := get(t, c, e.front.URL+"/1"); done <- code }()
	<-app.arrived
	req, _ := http.NewRequest(http.MethodGet, e.front.URL+"/2", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "foo")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("upgrade-flavoured request got %d with the limit reached, want 503", resp.StatusCode)
	}
	app.releaseAll()
	if code := <-done; code != http.StatusOK {
		t.Errorf("first request %d", code)
	}
}
