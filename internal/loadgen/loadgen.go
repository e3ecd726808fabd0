// Package loadgen is a small, bounded HTTP load generator for Outrigger's
// reliability tests. It sends requests from a fixed number of workers to one
// URL until a duration, a request count or the context ends, and accounts for
// every request it sends: each one is either OK, Failed (by status code or by
// a classified transport error) or Canceled (the caller's context ended while
// it was in flight). Latency percentiles come from a fixed-size log-linear
// histogram, so memory does not grow with the number of requests.
//
// It does not pace requests (each worker sends its next request as soon as
// the previous one finished: a closed-loop generator), it does not follow
// redirects, and it only talks to loopback addresses: a URL whose host is
// not 127.0.0.0/8, ::1 or "localhost" is refused, and the dialer it builds
// refuses to connect anywhere else. This is the project's network rule for
// tests, enforced in code.
package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxDuration caps every run, even one bounded only by MaxRequests, so a
// test can never hang in the generator.
const MaxDuration = 10 * time.Minute

// DefaultTimeout is the per-request timeout when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// maxErrorSamples is how many distinct error messages a Result keeps.
const maxErrorSamples = 8

// Options describes one load run.
type Options struct {
	// URL is the target, http or https, on a loopback host.
	URL string
	// Method is the HTTP method (default GET).
	Method string
	// Body is sent with every request (nil = no body).
	Body []byte
	// Header is added to every request.
	Header http.Header
	// Concurrency is the number of workers, each with at most one request in
	// flight (default 1).
	Concurrency int
	// Duration stops issuing new requests after this long; in-flight
	// requests still finish and are counted. Zero means MaxDuration, and at
	// least one of Duration and MaxRequests must be set.
	Duration time.Duration
	// MaxRequests stops after this many requests in total (0 = no limit).
	MaxRequests int64
	// HTTP2 negotiates HTTP/2 (ALPN h2 for https, prior-knowledge h2c for
	// http) on the client loadgen builds. Ignored when Client is set.
	HTTP2 bool
	// NewConnPerRequest opens a fresh connection (and TLS handshake) for
	// every request instead of reusing keep-alive connections. Ignored when
	// Client is set, except that requests are still marked Close.
	NewConnPerRequest bool
	// TLSConfig is used by the client loadgen builds (nil = default
	// verification against system roots). Ignored when Client is set.
	TLSConfig *tls.Config
	// Client, if set, sends the requests as is (its transport's dialer is the
	// caller's responsibility; the URL is still checked).
	Client *http.Client
	// Timeout bounds each request including reading its body (default
	// DefaultTimeout).
	Timeout time.Duration
	// OKStatus decides which status codes count as OK (default: below 400).
	OKStatus func(code int) bool
	// Check, if set, is given every response with an OK status and its whole
	// body; a non-nil error makes the request Failed, classified "check".
	Check func(resp *http.Response, body []byte) error
}

// Result accounts for every request of a run: Sent = OK + Failed + Canceled.
// A request is Failed when its status is not OK (see ByStatus) or when it got
// no complete response (see Errors).
type Result struct {
	Sent, OK, Failed, Canceled int64
	// ByStatus counts responses by status code (OK and failed ones).
	ByStatus map[int]int64
	// Errors counts requests that got no (complete) response, by class: see
	// Classify. A failed Check is counted as "check".
	Errors map[string]int64
	// ByProto counts responses by protocol ("HTTP/1.1", "HTTP/2.0").
	ByProto map[string]int64
	// ErrorSamples holds up to 8 distinct error messages, for logs.
	ErrorSamples []string
	// P50, P99 and Max are latencies of requests that got a response.
	P50, P99, Max time.Duration
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// String is a one-line summary for logs.
func (r Result) String() string {
	return fmt.Sprintf("sent=%d ok=%d failed=%d canceled=%d p50=%s p99=%s max=%s status=%s errors=%s",
		r.Sent, r.OK, r.Failed, r.Canceled, r.P50, r.P99, r.Max, fmtStatus(r.ByStatus), fmtMap(r.Errors))
}

func fmtStatus(m map[int]int64) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d:%d", k, m[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func fmtMap(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// validate checks o and fills defaults into a copy.
func (o Options) validate() (Options, *url.URL, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return o, nil, fmt.Errorf("loadgen: URL %q: %w", o.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return o, nil, fmt.Errorf("loadgen: URL %q: scheme must be http or https", o.URL)
	}
	if !IsLoopbackHost(u.Hostname()) {
		return o, nil, fmt.Errorf("loadgen: URL %q: host %q is not loopback (127.0.0.0/8, ::1, localhost); tests must not leave the machine", o.URL, u.Hostname())
	}
	if o.Concurrency < 0 {
		return o, nil, fmt.Errorf("loadgen: concurrency %d: must not be negative", o.Concurrency)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.Duration < 0 || o.MaxRequests < 0 {
		return o, nil, fmt.Errorf("loadgen: duration %v, max requests %d: must not be negative", o.Duration, o.MaxRequests)
	}
	if o.Duration == 0 && o.MaxRequests == 0 {
		return o, nil, errors.New("loadgen: neither Duration nor MaxRequests set: a run must be bounded")
	}
	if o.Duration == 0 || o.Duration > MaxDuration {
		o.Duration = MaxDuration
	}
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.OKStatus == nil {
		o.OKStatus = func(code int) bool { return code < 400 }
	}
	return o, u, nil
}

// IsLoopbackHost reports whether host (without port) is a loopback IP or
// "localhost".
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// loopbackDialer refuses to connect to anything but a loopback IP, whatever
// a name resolved to.
func loopbackDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("loadgen: dial %q: %w", addr, err)
		}
		if strings.EqualFold(host, "localhost") {
			host = "127.0.0.1"
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("loadgen: dial %q: not a loopback address", addr)
		}
		return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
	}
}

// newClient builds the client for o when the caller gave none.
func newClient(o Options, u *url.URL) *http.Client {
	tr := &http.Transport{
		DialContext:         loopbackDialer(),
		TLSClientConfig:     o.TLSConfig.Clone(),
		MaxIdleConnsPerHost: o.Concurrency,
		MaxIdleConns:        o.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableKeepAlives:   o.NewConnPerRequest,
		DisableCompression:  true,
	}
	p := new(http.Protocols)
	switch {
	case o.HTTP2 && u.Scheme == "http":
		p.SetUnencryptedHTTP2(true)
	case o.HTTP2:
		p.SetHTTP2(true)
		p.SetHTTP1(true)
	default:
		p.SetHTTP1(true)
	}
	tr.Protocols = p
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Run sends load as described by opts and returns the accounting. It returns
// an error only for invalid options; request failures are in the Result.
func Run(ctx context.Context, opts Options) (Result, error) {
	o, u, err := opts.validate()
	if err != nil {
		return Result{}, err
	}
	client := o.Client
	if client == nil {
		client = newClient(o, u)
		defer client.CloseIdleConnections()
	}
	start := time.Now()
	stopIssuing := start.Add(o.Duration)
	var issued atomic.Int64
	workers := make([]*worker, o.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := newWorker()
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(stopIssuing) {
				if o.MaxRequests > 0 && issued.Add(1) > o.MaxRequests {
					return
				}
				w.do(ctx, client, o)
			}
		}()
	}
	wg.Wait()
	res := Result{
		ByStatus: map[int]int64{},
		Errors:   map[string]int64{},
		ByProto:  map[string]int64{},
		Elapsed:  time.Since(start),
	}
	var h Histogram
	samples := map[string]bool{}
	for _, w := range workers {
		res.Sent += w.sent
		res.OK += w.ok
		res.Failed += w.failed
		res.Canceled += w.canceled
		for k, v := range w.byStatus {
			res.ByStatus[k] += v
		}
		for k, v := range w.errors {
			res.Errors[k] += v
		}
		for k, v := range w.byProto {
			res.ByProto[k] += v
		}
		for _, s := range w.samples {
			if !samples[s] && len(res.ErrorSamples) < maxErrorSamples {
				samples[s] = true
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
		h.Merge(&w.hist)
	}
	res.P50, res.P99, res.Max = h.Quantile(0.50), h.Quantile(0.99), h.Max()
	return res, nil
}

// worker keeps its own counters so the hot path takes no locks.
type worker struct {
	sent, ok, failed, canceled int64
	byStatus                   map[int]int64
	errors                     map[string]int64
	byProto                    map[string]int64
	samples                    []string
	hist                       Histogram
}

func newWorker() *worker {
	return &worker{byStatus: map[int]int64{}, errors: map[string]int64{}, byProto: map[string]int64{}}
}

func (w *worker) fail(class string, err error) {
	w.failed++
	w.errors[class]++
	if len(w.samples) < maxErrorSamples {
		w.samples = append(w.samples, class+": "+err.Error())
	}
}

// do sends one request and accounts for it.
func (w *worker) do(ctx context.Context, client *http.Client, o Options) {
	w.sent++
	rctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var body io.Reader
	if o.Body != nil {
		body = bytes.NewReader(o.Body)
	}
	req, err := http.NewRequestWithContext(rctx, o.Method, o.URL, body)
	if err != nil { // the URL was validated; only a bad Method gets here
		w.fail("other", err)
		return
	}
	for k, vs := range o.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Close = o.NewConnPerRequest
	t0 := time.Now()
	resp, err := client.Do(req)
	if err == nil {
		var b []byte
		if o.Check != nil && o.OKStatus(resp.StatusCode) {
			b, err = io.ReadAll(resp.Body)
		} else {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
		if err == nil {
			w.hist.Record(time.Since(t0))
			w.byStatus[resp.StatusCode]++
			w.byProto[resp.Proto]++
			switch {
			case !o.OKStatus(resp.StatusCode):
				w.failed++
				if len(w.samples) < maxErrorSamples {
					w.samples = append(w.samples, "status: "+resp.Status)
				}
			case o.Check != nil:
				if cerr := o.Check(resp, b); cerr != nil {
					w.fail("check", cerr)
				} else {
					w.ok++
				}
			default:
				w.ok++
			}
			return
		}
	}
	if ctx.Err() != nil { // the caller stopped the run, not a failure of the target
		w.canceled++
		return
	}
	w.fail(Classify(err), err)
}
