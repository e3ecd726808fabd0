package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewRejectsBadConfig(t *testing.T) {
	up := Upstream{Scheme: "http", Addr: "127.0.0.1:1", Raw: "http://127.0.0.1:1"}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no upstream", Config{}, "Upstream is not set"},
		{"bad scheme", Config{Upstream: Upstream{Scheme: "ftp", Addr: "x", Raw: "ftp://x"}}, "scheme must be"},
		{"empty addr", Config{Upstream: Upstream{Scheme: "http", Raw: "http://"}}, "empty address"},
		{"negative body", Config{Upstream: up, MaxBody: -1}, "MaxBody"},
		{"negative timeout", Config{Upstream: up, UpstreamTimeout: -time.Second}, "UpstreamTimeout"},
		{"negative queue", Config{Upstream: up, MaxQueue: -1}, "MaxQueue"},
		{"bad cert header", Config{Upstream: up, ClientCertHeader: "X Bad"}, "not a valid header name"},
		{"bad hsts", Config{Upstream: up, HSTS: "max-age=1\r\nX: y"}, "not a valid header value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, Deps{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New: %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewSharesRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	up := mustUpstream(t, "http://127.0.0.1:1")
	for i := range 2 {
		if _, err := New(Config{Upstream: up}, Deps{Registry: reg}); err != nil {
			t.Fatalf("New #%d on a shared registry: %v", i, err)
		}
	}
}

func TestClassify(t *testing.T) {
	dial := func(err error, network string) error {
		return &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", err)}
	}
	for _, tc := range []struct {
		name string
		err  error
		want errKind
	}{
		{"refused tcp", dial(syscall.ECONNREFUSED, "tcp"), kindRefused},
		{"refused wrapped", fmt.Errorf("x: %w", dial(syscall.ECONNREFUSED, "tcp")), kindRefused},
		{"unix socket missing", dial(syscall.ENOENT, "unix"), kindRefused},
		{"connect reset (listener closed with the SYN queued)", dial(syscall.ECONNRESET, "tcp"), kindRefused},
		{"tcp ENOENT is not refused", dial(syscall.ENOENT, "tcp"), kindOther},
		{"refused on read is not a dial", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNREFUSED}, kindOther},
		{"dial timeout", dial(&timeoutError{"i/o timeout"}, "tcp"), kindTimeout},
		{"deadline", context.DeadlineExceeded, kindTimeout},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, kindReset},
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}, kindReset},
		{"eof", io.EOF, kindReset},
		{"unexpected eof", fmt.Errorf("body: %w", io.ErrUnexpectedEOF), kindReset},
		{"dns", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "app", IsNotFound: true}}, kindDNS},
		{"dns timeout", &net.DNSError{Err: "timeout", Name: "app", IsTimeout: true}, kindTimeout},
		{"tls record", tls.RecordHeaderError{Msg: "bad"}, kindTLS},
		{"tls alert", tls.AlertError(40), kindTLS},
		{"other", errors.New("backend tried to switch protocol"), kindOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
			if wantStatus := map[bool]int{true: 504, false: 502}[tc.want == kindTimeout]; statusFor(classify(tc.err)) != wantStatus {
				t.Errorf("status %d, want %d", statusFor(classify(tc.err)), wantStatus)
			}
		})
	}
}

func TestMetricsAndAccessLog(t *testing.T) {
	_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "short and stout")
	}))
	e := newEnv(t, Config{Upstream: up, AccessLog: true}, nil)
	c := e.client(t, true)
	for _, m := range []string{"GET", "BREW", "PROPFIND", "DELETE"} {
		req, _ := http.NewRequest(m, e.front.URL+"/pot?secret=1", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, tc := range []struct {
		method string
		want   float64
	}{{"GET", 1}, {"DELETE", 1}, {"OTHER", 2}, {"BREW", 0}} {
		if got := metricValue(t, e.reg, "outrigger_requests_total", map[string]string{"code": "418", "method": tc.method}); got != tc.want {
			t.Errorf("requests_total{418,%s} = %v, want %v", tc.method, got, tc.want)
		}
	}
	if got := metricValue(t, e.reg, "outrigger_request_duration_seconds", nil); got != 4 {
		t.Errorf("duration histogram count %v, want 4", got)
	}
	var access []map[string]any
	for _, l := range e.logs.lines(t) {
		if l["msg"] == "request" {
			access = append(access, l)
		}
	}
	if len(access) != 4 {
		t.Fatalf("%d access log lines, want 4", len(access))
	}
	l := access[0]
	for _, k := range []string{"time", "start", "client", "method", "host", "path", "status", "bytes", "duration_seconds", "upstream_seconds", "proto", "tls_version"} {
		if _, ok := l[k]; !ok {
			t.Errorf("access log lacks %q: %v", k, l)
		}
	}
	if l["client"] != "127.0.0.1" || l["path"] != "/pot" || l["status"] != float64(418) || l["bytes"] != float64(15) ||
		l["proto"] != "HTTP/2.0" || l["tls_version"] != "TLS 1.3" || l["level"] != "INFO" {
		t.Errorf("access log line %v", l)
	}
	if strings.Contains(fmt.Sprint(l), "secret") {
		t.Error("query string logged")
	}
}

func TestBufferPool(t *testing.T) {
	var p bufferPool
	b := p.Get()
	if len(b) != copyBufSize {
		t.Fatalf("len %d", len(b))
	}
	p.Put(b)
	p.Put(make([]byte, 10)) // foreign small buffers are dropped, not pooled
	if got := p.Get(); len(got) != copyBufSize {
		t.Fatalf("len %d after Put", len(got))
	}
	if n := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); n > 0 {
		t.Errorf("%v allocs per Get/Put", n)
	}
}

// timeoutError is a net.Error that reports a timeout, like the dialer's.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

func TestLogLimiter(t *testing.T) {
	l := logLimiter{burst: 2}
	t0 := time.Unix(1000, 0)
	type step struct {
		at             time.Time
		ok             bool
		wantSuppressed int
	}
	for i, s := range []step{
		{t0, true, 0},
		{t0.Add(100 * time.Millisecond), true, 0},
		{t0.Add(200 * time.Millisecond), false, 0},
		{t0.Add(300 * time.Millisecond), false, 0},
		{t0.Add(time.Second), true, 2}, // new window reports the two dropped
		{t0.Add(time.Second), true, 0},
		{t0.Add(time.Second), false, 0},
	} {
		ok, sup := l.allow(s.at)
		if ok != s.ok || sup != s.wantSuppressed {
			t.Errorf("step %d: allow = %v, %d; want %v, %d", i, ok, sup, s.ok, s.wantSuppressed)
		}
	}
}
