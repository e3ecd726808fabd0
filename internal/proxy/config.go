package proxy

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/outrigger-sidecar/outrigger/internal/proxy/forward"
)

// Client authentication modes of --client-auth.
const (
	ClientAuthRequire  = "require"
	ClientAuthOptional = "optional"
)

// Config holds every flag of `outrigger proxy`. Durations are Go durations
// ("5s", "1m"); sizes accept K/M/G suffixes (powers of 1024).
type Config struct {
	Listen         string // --listen
	ReusePort      bool   // --reuse-port
	HandoverSocket string // --handover-socket
	Upstream       string // --upstream
	UnsafeUpstream bool   // --unsafe-upstream
	UpstreamDirect bool   // --upstream-direct
	HTTP1Fast      bool   // --http1-fast

	CertFile          string        // --cert
	KeyFile           string        // --key
	Hostnames         []string      // --hostname
	CertCheckInterval time.Duration // --cert-check-interval
	ClientCA          string        // --client-ca
	ClientAuth        string        // --client-auth
	ClientCertHeader  string        // --client-cert-header
	H2                bool          // --h2

	RedirectHTTP          string        // --redirect-http
	RedirectHTTPSPort     int           // --redirect-https-port
	HSTS                  bool          // --hsts
	HSTSMaxAge            time.Duration // --hsts-max-age
	HSTSIncludeSubdomains bool          // --hsts-include-subdomains

	TrustedProxies []netip.Prefix // --trusted-proxies
	ProxyProtocol  bool           // --proxy-protocol
	PreserveHost   bool           // --preserve-host
	AccessLog      bool           // --access-log

	MaxBody              int64         // --max-body
	MaxHeaderBytes       int           // --max-header-bytes
	MaxInflight          int           // --max-inflight
	MaxQueue             int           // --max-queue
	QueueTimeout         time.Duration // --queue-timeout
	MaxConcurrentStreams int           // --max-concurrent-streams

	ReadHeaderTimeout     time.Duration // --read-header-timeout
	ReadTimeout           time.Duration // --read-timeout
	WriteTimeout          time.Duration // --write-timeout
	IdleTimeout           time.Duration // --idle-timeout
	DialTimeout           time.Duration // --dial-timeout
	UpstreamTimeout       time.Duration // --upstream-timeout
	RetryWindow           time.Duration // --upstream-retry-window
	UpstreamCheckInterval time.Duration // --upstream-check-interval
	ShutdownDelay         time.Duration // --shutdown-delay
	DrainTimeout          time.Duration // --drain-timeout
}

// DefaultConfig returns the documented defaults (the values RegisterFlags
// binds).
func DefaultConfig() Config {
	return Config{
		Listen:                ":8443",
		ReusePort:             true,
		Upstream:              "http://127.0.0.1:8080",
		UpstreamDirect:        true,
		HTTP1Fast:             true,
		CertCheckInterval:     time.Minute,
		H2:                    true,
		HSTSMaxAge:            365 * 24 * time.Hour,
		PreserveHost:          true,
		AccessLog:             true,
		MaxHeaderBytes:        64 << 10,
		QueueTimeout:          10 * time.Second,
		MaxConcurrentStreams:  250,
		ReadHeaderTimeout:     10 * time.Second,
		IdleTimeout:           120 * time.Second,
		DialTimeout:           forward.DefaultDialTimeout,
		UpstreamTimeout:       60 * time.Second,
		RetryWindow:           5 * time.Second,
		UpstreamCheckInterval: 2 * time.Second,
		ShutdownDelay:         5 * time.Second,
		DrainTimeout:          30 * time.Second,
	}
}

// RegisterFlags binds every field to fs with its default (DefaultConfig).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Listen, "listen", d.Listen, "HTTPS listen address HOST:PORT (\":8443\" = all interfaces). The socket uses SO_REUSEPORT (see --reuse-port) so a new proxy can bind the same port during a rolling restart")
	fs.BoolVar(&c.ReusePort, "reuse-port", d.ReusePort, "set SO_REUSEPORT on the listen sockets so an old and a new proxy can share the port while one drains; disable to get \"address in use\" for a second instance")
	fs.StringVar(&c.HandoverSocket, "handover-socket", "", "Unix socket PATH for zero-loss restarts on one host: a proxy started with the same PATH takes the listening sockets of the running one (their accept queue included), and once it serves, the old one drains and exits; the socket file is mode 0600 and only the same user (or root) may connect (empty = off; Linux only)")
	fs.StringVar(&c.Upstream, "upstream", d.Upstream, "the app: http://HOST:PORT, h2c://HOST:PORT or unix:/PATH; must be loopback or a unix socket unless --unsafe-upstream")
	fs.BoolVar(&c.UpstreamDirect, "upstream-direct", d.UpstreamDirect, "forward simple requests (no body, or a Content-Length body up to 64K; no upgrade) to http:// and unix: upstreams on the request's own goroutine over pooled keep-alive connections, bypassing net/http's Transport (roughly half the CPU per request); false = every request through httputil.ReverseProxy. h2c upstreams always use ReverseProxy")
	fs.BoolVar(&c.HTTP1Fast, "http1-fast", d.HTTP1Fast, "serve plain HTTP/1.1 requests (GET or HEAD without a body, Expect, Upgrade or Connection: close, whole head in one read) with Outrigger's own lean server in front of net/http, about a third less CPU per small request; every other request, and the rest of its connection, goes to net/http. Same timeouts, limits, guard, metrics and drain, byte-identical responses; differences: a client that disconnects mid-request is noticed after 50ms rather than at once, and outrigger_open_connections counts a connection from its first request. Its keep-alive connections idle for 100ms park: until their next request they hold no goroutine or buffers (about 9 KB per idle TLS connection instead of 25 KB; Linux). false = net/http serves all HTTP/1.1")
	fs.BoolVar(&c.UnsafeUpstream, "unsafe-upstream", false, "allow a non-loopback --upstream: plaintext HTTP then leaves the pod (logged as a warning)")

	fs.StringVar(&c.CertFile, "cert", "", "PEM certificate chain, leaf first; reloaded on change, on SIGHUP and every --cert-check-interval (empty with --key empty: self-signed in memory, development only)")
	fs.StringVar(&c.KeyFile, "key", "", "PEM private key of --cert")
	c.Hostnames = nil
	fs.Var(&listValue{p: &c.Hostnames}, "hostname", "name or IP for the self-signed certificate; repeatable or comma-separated (default localhost,127.0.0.1,::1 and the host name)")
	fs.DurationVar(&c.CertCheckInterval, "cert-check-interval", d.CertCheckInterval, "how often --cert, --key and --client-ca are re-read in case a file event was missed (0 = never)")
	fs.StringVar(&c.ClientCA, "client-ca", "", "PEM bundle of CAs for client certificates (mTLS); reloaded like --cert")
	fs.StringVar(&c.ClientAuth, "client-auth", "", "with --client-ca: \"require\" (default) rejects handshakes without a valid client certificate, \"optional\" verifies one only if sent")
	fs.StringVar(&c.ClientCertHeader, "client-cert-header", "", "request header that carries the verified client certificate identity upstream, e.g. X-Client-Cert-Subject (empty = off; a client-sent copy is always removed)")
	fs.BoolVar(&c.H2, "h2", d.H2, "offer HTTP/2 via ALPN (h2, http/1.1); false = HTTP/1.1 only")

	fs.StringVar(&c.RedirectHTTP, "redirect-http", "", "also listen for plain HTTP on ADDR (e.g. :8080) and answer 308 to https://HOST[:PORT]/path?query (empty = off)")
	fs.IntVar(&c.RedirectHTTPSPort, "redirect-https-port", 0, "port in redirect targets (0 = the port of --listen; 443 is omitted); set 443 when a Service maps 443 to --listen")
	fs.BoolVar(&c.HSTS, "hsts", false, "send Strict-Transport-Security on HTTPS responses (replacing the app's)")
	fs.DurationVar(&c.HSTSMaxAge, "hsts-max-age", d.HSTSMaxAge, "HSTS max-age, rounded down to whole seconds (default one year = max-age=31536000)")
	fs.BoolVar(&c.HSTSIncludeSubdomains, "hsts-include-subdomains", false, "add includeSubDomains to the HSTS header")

	c.TrustedProxies = nil
	fs.Var(&prefixListValue{p: &c.TrustedProxies}, "trusted-proxies", "comma-separated CIDRs or IPs of proxies in front of this one whose X-Forwarded-*/Forwarded headers are kept (appended to); with --proxy-protocol also the only peers allowed to connect (empty = none trusted)")
	fs.BoolVar(&c.ProxyProtocol, "proxy-protocol", false, "require a PROXY protocol v1/v2 header on every connection to --listen and --redirect-http (the client address comes from it); if --trusted-proxies is set, connections from other peers are closed")
	fs.BoolVar(&c.PreserveHost, "preserve-host", d.PreserveHost, "send the client's Host header upstream (false = the upstream address)")
	fs.BoolVar(&c.AccessLog, "access-log", d.AccessLog, "log one JSON line per request")

	fs.Var(byteSizeValue{p: &c.MaxBody}, "max-body", "largest request body in bytes, K/M/G suffixes (e.g. 100M); larger get 413 (0 = unlimited, the default, so existing uploads keep working)")
	c.MaxHeaderBytes = d.MaxHeaderBytes
	fs.Var(intSizeValue{p: &c.MaxHeaderBytes}, "max-header-bytes", "largest request header block in bytes, K/M suffixes; larger get 431 (default 64K)")
	fs.IntVar(&c.MaxInflight, "max-inflight", 0, "most concurrent upstream requests (0 = unlimited)")
	fs.IntVar(&c.MaxQueue, "max-queue", 0, "requests that may wait for a --max-inflight slot; beyond that 503 with Retry-After")
	fs.DurationVar(&c.QueueTimeout, "queue-timeout", d.QueueTimeout, "longest wait for a --max-inflight slot before 503 (0 = until the client gives up)")
	fs.IntVar(&c.MaxConcurrentStreams, "max-concurrent-streams", d.MaxConcurrentStreams, "HTTP/2 streams per connection")

	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", d.ReadHeaderTimeout, "time for a client to send the TLS handshake, PROXY header and request headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 0, "time to read a whole request including its body (0 = off, so uploads and streaming are not cut)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 0, "time to write a whole response (0 = off, so SSE, WebSocket and long downloads are not cut)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", d.IdleTimeout, "close client keep-alive connections idle this long")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", d.DialTimeout, "time to connect to the upstream")
	fs.DurationVar(&c.UpstreamTimeout, "upstream-timeout", d.UpstreamTimeout, "time for the upstream's response headers after the request was sent; then 504 (0 = no limit)")
	fs.DurationVar(&c.RetryWindow, "upstream-retry-window", d.RetryWindow, "how long requests refused (or reset) at connect (app restarting) are retried before 502 (0 = no retries)")
	fs.DurationVar(&c.UpstreamCheckInterval, "upstream-check-interval", d.UpstreamCheckInterval, "period of the readiness dial to the upstream")
	fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", d.ShutdownDelay, "on SIGTERM, report not-ready and keep serving this long so load balancers stop sending traffic")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", d.DrainTimeout, "after --shutdown-delay, wait this long for in-flight requests and WebSockets, then cut them")
}

// Validate checks the configuration before anything listens. Errors name the
// flag and its value.
func (c *Config) Validate() error {
	var errs []error
	add := func(flagName string, value any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s %q: %s", flagName, fmt.Sprint(value), fmt.Sprintf(format, args...)))
	}
	if err := validateHostPort(c.Listen); err != nil {
		add("listen", c.Listen, "%v", err)
	}
	if c.HandoverSocket != "" {
		if err := validateSocketPath(c.HandoverSocket); err != nil {
			add("handover-socket", c.HandoverSocket, "%v", err)
		}
	}
	if up, err := forward.ParseUpstream(c.Upstream); err != nil {
		errs = append(errs, err) // already names --upstream
	} else if !up.IsLoopback() && !c.UnsafeUpstream {
		add("upstream", c.Upstream, "not a loopback address or unix socket, so plaintext would leave the pod; pass --unsafe-upstream to allow it")
	}

	switch {
	case c.CertFile != "" && c.KeyFile == "":
		add("key", c.KeyFile, "required with --cert")
	case c.CertFile == "" && c.KeyFile != "":
		add("cert", c.CertFile, "required with --key")
	}
	for _, f := range []struct{ name, path string }{{"cert", c.CertFile}, {"key", c.KeyFile}, {"client-ca", c.ClientCA}} {
		if f.path == "" {
			continue
		}
		if err := readable(f.path); err != nil {
			add(f.name, f.path, "%v", err)
		}
	}
	for _, h := range c.Hostnames {
		if h == "" || strings.ContainsAny(h, " \t/\\@") {
			add("hostname", h, "not a host name or IP address")
		}
	}
	switch c.ClientAuth {
	case "":
	case ClientAuthRequire, ClientAuthOptional:
		if c.ClientCA == "" {
			add("client-auth", c.ClientAuth, "requires --client-ca")
		}
	default:
		add("client-auth", c.ClientAuth, "must be require or optional")
	}
	if c.ClientCertHeader != "" {
		switch {
		case !httpguts.ValidHeaderFieldName(c.ClientCertHeader):
			add("client-cert-header", c.ClientCertHeader, "not a valid header name")
		case c.ClientCA == "":
			add("client-cert-header", c.ClientCertHeader, "requires --client-ca (only verified certificates are forwarded)")
		}
	}

	if c.RedirectHTTP != "" {
		if err := validateHostPort(c.RedirectHTTP); err != nil {
			add("redirect-http", c.RedirectHTTP, "%v", err)
		} else if samePort(c.RedirectHTTP, c.Listen) {
			add("redirect-http", c.RedirectHTTP, "uses the same port as --listen %q", c.Listen)
		}
	}
	if c.RedirectHTTPSPort < 0 || c.RedirectHTTPSPort > 65535 {
		add("redirect-https-port", c.RedirectHTTPSPort, "port out of range 0-65535")
	}
	if c.HSTSMaxAge < 0 {
		add("hsts-max-age", c.HSTSMaxAge, "must not be negative")
	}
	if c.ProxyProtocol && c.ReadHeaderTimeout <= 0 {
		add("read-header-timeout", c.ReadHeaderTimeout, "must be positive with --proxy-protocol (it bounds the wait for the PROXY header)")
	}

	if c.MaxBody < 0 {
		add("max-body", c.MaxBody, "must not be negative")
	}
	if c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 16<<20 {
		add("max-header-bytes", c.MaxHeaderBytes, "must be between 1K and 16M")
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"max-inflight", c.MaxInflight}, {"max-queue", c.MaxQueue}} {
		if n.v < 0 {
			add(n.name, n.v, "must not be negative")
		}
	}
	if c.MaxQueue > 0 && c.MaxInflight == 0 {
		add("max-queue", c.MaxQueue, "needs --max-inflight")
	}
	if c.MaxConcurrentStreams < 1 || c.MaxConcurrentStreams > 1<<20 {
		add("max-concurrent-streams", c.MaxConcurrentStreams, "must be between 1 and 1048576")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"cert-check-interval", c.CertCheckInterval}, {"queue-timeout", c.QueueTimeout},
		{"read-header-timeout", c.ReadHeaderTimeout}, {"read-timeout", c.ReadTimeout},
		{"write-timeout", c.WriteTimeout}, {"idle-timeout", c.IdleTimeout},
		{"dial-timeout", c.DialTimeout}, {"upstream-timeout", c.UpstreamTimeout},
		{"upstream-retry-window", c.RetryWindow}, {"shutdown-delay", c.ShutdownDelay},
		{"drain-timeout", c.DrainTimeout},
	} {
		if d.v < 0 {
			add(d.name, d.v, "must not be negative")
		}
	}
	if c.UpstreamCheckInterval <= 0 {
		add("upstream-check-interval", c.UpstreamCheckInterval, "must be positive")
	}
	return errors.Join(errs...)
}

// hstsValue renders the Strict-Transport-Security header ("" when off).
func (c *Config) hstsValue() string {
	if !c.HSTS {
		return ""
	}
	v := "max-age=" + strconv.FormatInt(int64(c.HSTSMaxAge/time.Second), 10)
	if c.HSTSIncludeSubdomains {
		v += "; includeSubDomains"
	}
	return v
}

// validateHostPort accepts HOST:PORT with an optional host and a numeric
// port 0-65535 (0 picks a free port, for tests).
func validateHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %w", err)
	}
	if strings.ContainsAny(host, " /\\@") {
		return fmt.Errorf("invalid host %q", host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || port == "" || strings.HasPrefix(port, "+") {
		return fmt.Errorf("port %q out of range 0-65535", port)
	}
	return nil
}

// samePort reports whether two listen addresses would collide: same
// non-zero port on overlapping hosts (an empty or unspecified host overlaps
// everything).
func samePort(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return wild(ha) || wild(hb) || ha == hb
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	return nil
}

// validateSocketPath checks a Unix socket path: short enough for sun_path,
// no NUL, and its directory exists.
func validateSocketPath(path string) error {
	switch {
	case strings.ContainsRune(path, 0):
		return errors.New("contains a NUL byte")
	case len(path) > 107:
		return fmt.Errorf("%d bytes long; Unix socket paths are limited to 107", len(path))
	}
	dir := path[:strings.LastIndexByte(path, '/')+1]
	if dir == "" {
		dir = "."
	}
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("directory: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
