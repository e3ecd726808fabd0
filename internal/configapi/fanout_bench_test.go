package configapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rawWatcher is one long-poll watcher on its own keep-alive connection,
// speaking just enough HTTP/1.1 to re-arm cheaply, so that the benchmark
// measures the server rather than a client stack sharing its CPUs.
type rawWatcher struct {
	c    net.Conn
	br   *bufio.Reader
	path string
	have int64
}

func dialWatcher(addr, name string, have int64) (*rawWatcher, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawWatcher{c: c, br: bufio.NewReaderSize(c, 1024), path: "/v1/configs/" + name + "?wait=60s", have: have}, nil
}

// arm sends the long-poll request for the next version.
func (w *rawWatcher) arm() error {
	_, err := fmt.Fprintf(w.c, "GET %s HTTP/1.1\r\nHost: bench\r\nIf-None-Match: \"%d\"\r\n\r\n", w.path, w.have)
	return err
}

// await reads one response; it returns its status and ETag version.
func (w *rawWatcher) await() (int, int64, error) {
	line, err := w.br.ReadString('\n')
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("status line %q", line)
	}
	code, _ := strconv.Atoi(f[1])
	var clen, v int64
	for {
		h, err := w.br.ReadString('\n')
		if err != nil {
			return 0, 0, err
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		k, val, _ := strings.Cut(h, ":")
		val = strings.TrimSpace(val)
		switch strings.ToLower(k) {
		case "content-length":
			clen, _ = strconv.ParseInt(val, 10, 64)
		case "etag":
			v, _ = strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
		}
	}
	if _, err := io.CopyN(io.Discard, w.br, clen); err != nil {
		return 0, 0, err
	}
	return code, v, nil
}

// BenchmarkFanout measures one push reaching every long-poll watcher: N
// watchers (each its own connection, real loopback TCP) wait on one
// config; each iteration pushes a new version over HTTP and stops when
// every watcher has read its 200. Re-arming is outside the timer.
// hold=true is the server as it runs (watchers parked outside net/http,
// answered by hub workers, re-arms held until the wave is answered);
// hold=false serves every watcher in its handler without a hold, for
// comparison.
//
//	go test -run XXX -bench Fanout -benchtime 30x ./internal/configapi/
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, hold := range []bool{true, false} {
			b.Run(fmt.Sprintf("watchers=%d/hold=%v", n, hold), func(b *testing.B) { benchFanout(b, n, hold) })
		}
	}
}

func benchFanout(b *testing.B, n int, hold bool) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = b.TempDir()
	cfg.DrainTimeout = 5 * time.Second
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Deps{
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registry: reg, Gatherer: reg,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv.api.hub.noHold = !hold
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	addr := srv.Addr().String()
	base := "http://" + addr + "/v1/configs/fan"
	hc := &http.Client{Timeout: 30 * time.Second}
	push := func(i int) int64 {
		r, err := http.NewRequest(http.MethodPut, base, strings.NewReader(fmt.Sprintf(`{"seq":%d}`, i)))
		if err != nil {
			b.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			b.Fatalf("push %d: %s", i, res.Status)
		}
		v, err := strconv.ParseInt(strings.Trim(res.Header.Get("ETag"), `"`), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	have := push(0)
	ws := make([]*rawWatcher, n)
	for i := range ws {
		if ws[i], err = dialWatcher(addr, "fan", have); err != nil {
			b.Fatal(err)
		}
		defer ws[i].c.Close()
	}
	waitArmed := func() {
		deadline := time.Now().Add(30 * time.Second)
		for gaugeValue(b, reg, "outrigger_config_watchers") < float64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("only %v of %d watchers armed", gaugeValue(b, reg, "outrigger_config_watchers"), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for _, w := range ws {
		if err := w.arm(); err != nil {
			b.Fatal(err)
		}
	}
	waitArmed()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		var bad atomic.Int64
		for _, w := range ws {
			wg.Go(func() {
				code, v, err := w.await()
				if err != nil || code != http.StatusOK || v <= w.have {
					bad.Add(1)
					return
				}
				w.have = v
			})
		}
		want := push(i + 1)
		wg.Wait()
		if bad.Load() > 0 {
			b.Fatalf("push %d (version %d): %d watchers did not get it", i+1, want, bad.Load())
		}
		b.StopTimer()
		for _, w := range ws {
			if err := w.arm(); err != nil {
				b.Fatal(err)
			}
		}
		waitArmed()
		b.StartTimer()
	}
}

// gaugeValue reads an unlabelled gauge from reg.
func gaugeValue(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
