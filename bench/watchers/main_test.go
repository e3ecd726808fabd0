package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/configapi"
)

// startAPI runs a real config API server (bbolt in a temp dir) on
// 127.0.0.1:0 and returns its base URL.
func startAPI(t *testing.T) string {
	t.Helper()
	cfg := configapi.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.DrainTimeout = 2 * time.Second
	reg := prometheus.NewRegistry()
	srv, err := configapi.New(cfg, configapi.Deps{Registry: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("config server: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("config server did not stop")
		}
	})
	return "http://" + srv.Addr().String()
}

func TestFanout(t *testing.T) {
	base := startAPI(t)
	tests := []struct {
		name string
		args []string
		n    int
	}{
		{name: "one watcher", args: []string{"--n", "1", "--pushes", "2"}, n: 1},
		{name: "many watchers two sources", args: []string{"--n", "200", "--pushes", "3", "--transports", "4", "--sources", "127.0.0.1,127.0.0.2"}, n: 200},
		{name: "raw client", args: []string{"--n", "200", "--pushes", "3", "--client", "raw", "--sources", "127.0.0.1,127.0.0.2"}, n: 200},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out strings.Builder
			args := append([]string{"fanout", "--server", base, "--name", "t" + strconv.Itoa(i), "--server-pid", strconv.Itoa(os.Getpid()),
				"--label", "bbolt", "--settle", "10ms", "--timeout", "20s"}, tc.args...)
			if err := run(ctx, args, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			cells := strings.Split(strings.Trim(strings.TrimSpace(out.String()), "|"), "|")
			if len(cells) != 9 {
				t.Fatalf("row %q has %d cells, want 9", out.String(), len(cells))
			}
			if wake := strings.TrimSpace(cells[7]); !strings.HasPrefix(wake, "≤ ") && !strings.HasPrefix(wake, "> ") {
				t.Errorf("server wake cell %q: want bucket bounds", wake)
			}
			if got := strings.TrimSpace(cells[0]); got != "bbolt" {
				t.Errorf("label %q", got)
			}
			if got := strings.TrimSpace(cells[1]); got != strconv.Itoa(tc.n) {
				t.Errorf("watchers %q, want %d", got, tc.n)
			}
			if got := strings.TrimSpace(cells[6]); got != "0" {
				t.Errorf("missed %q, want 0", got)
			}
			for _, c := range cells[3:6] {
				if v, err := strconv.ParseFloat(strings.TrimSpace(c), 64); err != nil || v <= 0 {
					t.Errorf("latency cell %q is not a positive number", c)
				}
			}
			if rss := strings.TrimSpace(cells[8]); rss == "—" {
				t.Error("RSS not measured")
			}
		})
	}
}

// TestReload drives reload mode against a real config server and a small
// app that long-polls it the way `outrigger sync` does and serves the
// greeting of the version it applied.
func TestReload(t *testing.T) {
	base := startAPI(t)
	var greeting atomic.Value
	greeting.Store("none")
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, greeting.Load().(string)+"\n")
	})}
	srvURL := serve(t, app)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		var have int64
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/configs/app?wait=30s", nil)
			if have > 0 {
				req.Header.Set("If-None-Match", fmt.Sprintf(`"%d"`, have))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			var c appConfig
			if resp.StatusCode == http.StatusOK {
				_ = json.NewDecoder(resp.Body).Decode(&c)
				have, _ = etagVersion(resp.Header.Get("ETag"))
				greeting.Store(c.Greeting)
			} else {
				time.Sleep(20 * time.Millisecond) // 404 before the first push
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}()
	var out strings.Builder
	err := run(ctx, []string{"reload", "--server", base, "--app", srvURL, "--pushes", "5", "--gap", "0s", "--label", "test"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "| test | 5 | ") {
		t.Fatalf("row %q", out.String())
	}
}

func TestReloadTimesOut(t *testing.T) {
	base := startAPI(t)
	app := serve(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "never changes\n")
	})})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"reload", "--server", base, "--app", app, "--pushes", "1", "--timeout", "100ms"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "never showed") {
		t.Fatalf("err = %v, want a timeout naming the app", err)
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no mode", args: nil, want: "usage"},
		{name: "unknown mode", args: []string{"fan"}, want: `unknown mode "fan"`},
		{name: "remote server", args: []string{"fanout", "--server", "http://192.0.2.1:7700"}, want: "loopback"},
		{name: "bad scheme", args: []string{"fanout", "--server", "ftp://127.0.0.1"}, want: "scheme"},
		{name: "bad url", args: []string{"fanout", "--server", "http://[::1"}, want: "--server"},
		{name: "zero watchers", args: []string{"fanout", "--n", "0"}, want: "--n 0"},
		{name: "zero pushes", args: []string{"fanout", "--pushes", "0"}, want: "--pushes 0"},
		{name: "unknown client", args: []string{"fanout", "--client", "curl"}, want: `--client "curl"`},
		{name: "raw client over https", args: []string{"fanout", "--client", "raw", "--server", "https://127.0.0.1:7700"}, want: "plain http only"},
		{name: "zero transports", args: []string{"fanout", "--transports", "0"}, want: "--transports 0"},
		{name: "remote source", args: []string{"fanout", "--sources", "127.0.0.1,10.0.0.1"}, want: `"10.0.0.1" is not a loopback IP`},
		{name: "empty sources", args: []string{"fanout", "--sources", ","}, want: "no addresses"},
		{name: "bad name", args: []string{"fanout", "--name", "../x"}, want: `--name "../x"`},
		{name: "negative settle", args: []string{"fanout", "--settle", "-1s"}, want: "--settle"},
		{name: "zero timeout", args: []string{"fanout", "--timeout", "0s"}, want: "--timeout"},
		{name: "stray", args: []string{"fanout", "x"}, want: "unexpected argument"},
		{name: "remote app", args: []string{"reload", "--app", "http://example.com/"}, want: "--app"},
		{name: "zero poll", args: []string{"reload", "--poll", "0s"}, want: "--poll"},
		{name: "reload zero pushes", args: []string{"reload", "--pushes", "0"}, want: "--pushes 0"},
		{name: "negative gap", args: []string{"reload", "--gap", "-1s"}, want: "--gap"},
		{name: "server down", args: []string{"reload", "--server", "http://127.0.0.1:1", "--pushes", "1"}, want: "push http://127.0.0.1:1/v1/configs/app"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
