package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fanoutConfig is the command line of `watchers fanout`.
type fanoutConfig struct {
	server     *url.URL
	name       string
	n          int
	pushes     int
	transports int
	client     string
	sources    []net.IP
	serverPID  int
	label      string
	timeout    time.Duration
	settle     time.Duration
}

func parseFanout(args []string, stderr io.Writer) (fanoutConfig, error) {
	var c fanoutConfig
	fs := flag.NewFlagSet("watchers fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "http://127.0.0.1:7700", "config API base URL (loopback)")
	fs.StringVar(&c.name, "name", "bench", "config name to watch and push")
	fs.IntVar(&c.n, "n", 1000, "number of concurrent long-poll watchers (each its own connection)")
	fs.IntVar(&c.pushes, "pushes", 20, "versions pushed, one at a time, each after every watcher got the previous one")
	fs.IntVar(&c.transports, "transports", 16, "HTTP client transports the watchers are spread over (--client http)")
	fs.StringVar(&c.client, "client", "http", "watcher client: http (net/http, as outrigger sync) or raw (a minimal HTTP/1.1 loop that leaves the shared CPUs to the server)")
	sources := fs.String("sources", "127.0.0.1", "comma-separated loopback source IPs to dial from (more IPs = more ephemeral ports)")
	fs.IntVar(&c.serverPID, "server-pid", 0, "PID of the config server, to report its RSS with all watchers waiting (0 = skip)")
	fs.StringVar(&c.label, "label", "", "first cell of the output row, e.g. the store (default: \"fanout\")")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "limit for all watchers to arm, and for one push to reach all of them")
	fs.DurationVar(&c.settle, "settle", 200*time.Millisecond, "pause after all watchers are armed before each push")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	u, err := loopbackURL("--server", *server)
	if err != nil {
		return c, err
	}
	c.server = u
	if c.sources, err = parseSources(*sources); err != nil {
		return c, err
	}
	switch {
	case c.n < 1:
		return c, fmt.Errorf("--n %d: must be at least 1", c.n)
	case c.pushes < 1:
		return c, fmt.Errorf("--pushes %d: must be at least 1", c.pushes)
	case c.client != "http" && c.client != "raw":
		return c, fmt.Errorf("--client %q: want http or raw", c.client)
	case c.client == "raw" && u.Scheme != "http":
		return c, fmt.Errorf("--client raw: --server %q: the raw client speaks plain http only", *server)
	case c.transports < 1:
		return c, fmt.Errorf("--transports %d: must be at least 1", c.transports)
	case c.timeout <= 0:
		return c, fmt.Errorf("--timeout %s: must be positive", c.timeout)
	case c.settle < 0:
		return c, fmt.Errorf("--settle %s: must not be negative", c.settle)
	case !validName(c.name):
		return c, fmt.Errorf("--name %q: want 1-128 of [A-Za-z0-9._-], not starting with '.'", c.name)
	}
	if c.label == "" {
		c.label = "fanout"
	}
	return c, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// fanoutResult is what one fanout run measured.
type fanoutResult struct {
	watchers, pushes int
	lat              latencies
	missed           int64
	errors           int64
	rssKiB           int64 // 0 = not measured
	// wake50 and wake99 are the server's own view, from its
	// outrigger_config_watch_wake_seconds histogram: hub notified → a
	// woken watcher's response written. Far below the client-measured
	// numbers means the time goes elsewhere (the store write, the
	// client's own CPU share).
	wake50, wake99 string
}

func (r fanoutResult) row(label string) string {
	rss := "—"
	if r.rssKiB > 0 {
		rss = strconv.FormatFloat(float64(r.rssKiB)/1024, 'f', 1, 64)
	}
	w50, w99 := r.wake50, r.wake99
	if w50 == "" {
		w50, w99 = "—", "—"
	}
	return fmt.Sprintf("| %s | %d | %d | %s | %s | %s | %d | %s / %s | %s |",
		label, r.watchers, r.pushes, ms(r.lat.P50), ms(r.lat.P99), ms(r.lat.Max), r.missed, w50, w99, rss)
}

// api is a small client of the config API.
type api struct {
	base   *url.URL
	name   string
	client *http.Client
}

func (a *api) configURL() string {
	return a.base.JoinPath("v1", "configs", a.name).String()
}

// push stores body as a new version and returns its number.
func (a *api) push(ctx context.Context, contentType string, body []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.configURL(), bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Outrigger-Author", "bench")
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("push %s: %w", a.configURL(), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("push %s: %s: %s", a.configURL(), resp.Status, strings.TrimSpace(string(b)))
	}
	v, err := etagVersion(resp.Header.Get("ETag"))
	if err != nil {
		return 0, fmt.Errorf("push %s: %w", a.configURL(), err)
	}
	return v, nil
}

// watchers reads the server's outrigger_config_watchers gauge; ok=false if
// the server does not export it.
func (a *api) watchers(ctx context.Context) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base.JoinPath("metrics").String(), nil)
	if err != nil {
		return 0, false
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, false
	}
	v, err := parseGauge(resp.Body, "outrigger_config_watchers")
	_, _ = io.Copy(io.Discard, resp.Body)
	return v, err == nil
}

// histogram scrapes histogram name from /metrics; nil if unavailable.
func (a *api) histogram(ctx context.Context, name string) []bucket {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base.JoinPath("metrics").String(), nil)
	if err != nil {
		return nil
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	bs, err := parseHistogram(resp.Body, name)
	_, _ = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return nil
	}
	return bs
}

// wakeHistogram is the config server's hub-to-response latency metric.
const wakeHistogram = "outrigger_config_watch_wake_seconds"

// etagVersion parses `"N"` (or W/"N").
func etagVersion(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	if len(s) < 3 || s[0] != '"' || s[len(s)-1] != '"' {
		return 0, fmt.Errorf("ETag %q: want a quoted version", s)
	}
	v, err := strconv.ParseInt(s[1:len(s)-1], 10, 64)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("ETag %q: want a quoted version ≥ 1", s)
	}
	return v, nil
}

// newTransports builds k transports, dialling from the given source IPs
// in turn, each allowed enough idle connections to keep every watcher's.
func newTransports(k, n int, sources []net.IP) []*http.Transport {
	ts := make([]*http.Transport, k)
	for i := range ts {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: sources[i%len(sources)]}}
		ts[i] = &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: n/k + 64,
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		}
	}
	return ts
}

func fanout(ctx context.Context, c fanoutConfig, stderr io.Writer) (fanoutResult, error) {
	res := fanoutResult{watchers: c.n, pushes: c.pushes}
	if lim := raiseNoFile(); lim != 0 && lim < uint64(c.n)+64 {
		return res, fmt.Errorf("--n %d: open-file limit is %d; raise it (ulimit -n)", c.n, lim)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ts := newTransports(c.transports, c.n, c.sources)
	defer func() {
		for _, t := range ts {
			t.CloseIdleConnections()
		}
	}()
	ctl := &api{base: c.server, name: c.name, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}}
	base, err := ctl.push(ctx, "application/json", fmt.Appendf(nil, `{"bench":"fanout","seq":0,"start":%d}`+"\n", time.Now().UnixNano()))
	if err != nil {
		return res, err
	}

	// arrivals[k][w] is when watcher w got version base+k+1, in ns since
	// the push of that version started; got[k] counts them.
	arrivals := make([][]int64, c.pushes)
	for k := range arrivals {
		arrivals[k] = make([]int64, c.n)
	}
	got := make([]atomic.Int64, c.pushes)
	pushStart := make([]atomic.Int64, c.pushes) // unix ns
	var armed, errs atomic.Int64
	var wg sync.WaitGroup
	for w := range c.n {
		record := func(v int64, at time.Time) {
			k := v - base - 1
			if k < 0 || k >= int64(c.pushes) {
				return
			}
			arrivals[k][w] = at.UnixNano() - pushStart[k].Load()
			got[k].Add(1)
		}
		if c.client == "raw" {
			d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: c.sources[w%len(c.sources)]}}
			u, _ := url.Parse(ctl.configURL())
			wg.Go(func() { watchRaw(ctx, d, rawAddr(u), u.Host, u.EscapedPath(), base, record, &armed, &errs) })
			continue
		}
		cl := &http.Client{Transport: ts[w%len(ts)]}
		wg.Go(func() { watch(ctx, cl, ctl.configURL(), base, record, &armed, &errs) })
	}
	defer wg.Wait()
	defer cancel()

	waitArmed := func() error {
		deadline := time.Now().Add(c.timeout)
		for {
			if armed.Load() == int64(c.n) {
				if g, ok := ctl.watchers(ctx); !ok || g >= float64(c.n) {
					return nil
				}
			}
			if time.Now().After(deadline) {
				g, _ := ctl.watchers(ctx)
				return fmt.Errorf("only %d of %d watchers armed (server gauge %.0f) after %s; %d request errors", armed.Load(), c.n, g, c.timeout, errs.Load())
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if err := waitArmed(); err != nil {
		return res, err
	}
	if c.serverPID > 0 {
		if res.rssKiB, err = rssKiB(c.serverPID); err != nil {
			fmt.Fprintf(stderr, "watchers: server RSS: %v\n", err)
		}
	}
	fmt.Fprintf(stderr, "watchers: %d armed; pushing %d versions\n", c.n, c.pushes)
	wakeBefore := ctl.histogram(ctx, wakeHistogram)

	var samples []time.Duration
	for k := range c.pushes {
		time.Sleep(c.settle)
		pushStart[k].Store(time.Now().UnixNano())
		v, err := ctl.push(ctx, "application/json", fmt.Appendf(nil, `{"bench":"fanout","seq":%d}`+"\n", k+1))
		if err != nil {
			return res, err
		}
		if v != base+int64(k)+1 {
			return res, fmt.Errorf("push %d got version %d, want %d: is someone else pushing %q?", k+1, v, base+int64(k)+1, c.name)
		}
		deadline := time.Now().Add(c.timeout)
		for got[k].Load() < int64(c.n) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		res.missed += int64(c.n) - got[k].Load()
		if err := waitArmed(); err != nil {
			return res, fmt.Errorf("after push %d: %w", k+1, err)
		}
	}
	if after := ctl.histogram(ctx, wakeHistogram); after != nil {
		last := 0.0
		for _, b := range after {
			if !math.IsInf(b.LE, 1) {
				last = b.LE
			}
		}
		le, ok := quantileBound(wakeBefore, after, 0.50)
		res.wake50 = boundMS(le, ok, last)
		le, ok = quantileBound(wakeBefore, after, 0.99)
		res.wake99 = boundMS(le, ok, last)
	}
	cancel()
	wg.Wait()
	for k := range arrivals {
		for _, ns := range arrivals[k] {
			if ns > 0 {
				samples = append(samples, time.Duration(ns))
			}
		}
	}
	res.lat = summarize(samples)
	res.errors = errs.Load()
	if res.missed > 0 {
		return res, fmt.Errorf("%d of %d deliveries missed", res.missed, c.n*c.pushes)
	}
	return res, nil
}

// watch long-polls url from version have on, calling got for each new
// version, until ctx ends. armed counts watchers with a poll in flight.
//
// It is frugal because it shares the CPUs with the server it measures:
// one request reused for every poll (only If-None-Match changes), the
// connection kept alive (the body is drained before Close), and the
// arrival time taken when the first byte of the response arrives
// (httptrace), not after the client stack has parsed it and handed it
// over.
func watch(ctx context.Context, cl *http.Client, url string, have int64, got func(v int64, at time.Time), armed, errs *atomic.Int64) {
	var firstByte atomic.Int64 // unix ns, set by the transport's read loop
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { firstByte.Store(time.Now().UnixNano()) },
	})
	req, err := http.NewRequestWithContext(tctx, http.MethodGet, url+"?wait=60s", nil)
	if err != nil {
		errs.Add(1)
		return
	}
	for ctx.Err() == nil {
		// Reusing req is allowed: the previous response's body is closed.
		req.Header.Set("If-None-Match", `"`+strconv.FormatInt(have, 10)+`"`)
		firstByte.Store(0)
		armed.Add(1)
		resp, err := cl.Do(req)
		armed.Add(-1)
		at := time.Now()
		if ns := firstByte.Load(); ns != 0 {
			at = time.Unix(0, ns)
		}
		if err != nil {
			if ctx.Err() == nil {
				errs.Add(1)
				sleepCtx(ctx, 100*time.Millisecond)
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			v, err := etagVersion(resp.Header.Get("ETag"))
			if err != nil || v <= have {
				errs.Add(1)
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			have = v
			got(v, at)
		case http.StatusNotModified:
		default:
			errs.Add(1)
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
}

// rawAddr is u's host:port, with the scheme's default port.
func rawAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
