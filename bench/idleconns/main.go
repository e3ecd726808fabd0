// Command idleconns holds many idle keep-alive TLS connections open against
// a proxy, so bench/run.sh can measure the proxy's memory per idle client.
//
// It dials --n TLS connections to --url (HTTP/1.1 via ALPN, so each client
// is its own connection; with --proto h2, HTTP/2, one client connection per
// TLS connection), sends one GET on each and reads the whole
// response, then keeps every connection open and prints "ready N" on
// stdout. It waits for SIGINT or SIGTERM (or --hold to pass), closes the
// connections and exits. A connection that fails is an error: the
// measurement would be wrong otherwise.
//
// It does not verify certificates (--insecure is the benchmark default
// because the harness generates its own) unless --ca is given, it does not
// keep the connections alive with further requests, and it only connects to
// loopback addresses.
//
// Usage:
//
//	idleconns --url https://127.0.0.1:8443/1k --n 1000
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	url        *url.URL
	n          int
	parallel   int
	ca         string
	timeout    time.Duration
	hold       time.Duration
	rawURL     string
	serverName string
	proto      string // "h1" or "h2"
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("idleconns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.rawURL, "url", "https://127.0.0.1:8443/1k", "https URL on a loopback address; one GET of it is sent on every connection")
	fs.IntVar(&c.n, "n", 1000, "number of TLS connections to open and hold")
	fs.IntVar(&c.parallel, "parallel", 32, "connections dialled concurrently while opening")
	fs.StringVar(&c.ca, "ca", "", "PEM CA bundle to verify the server (empty = do not verify; the benchmark's certificate is self-made)")
	fs.StringVar(&c.serverName, "server-name", "", "TLS server name to send and verify (default: the URL's host)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-connection limit for dial, handshake and the first response")
	fs.StringVar(&c.proto, "proto", "h1", "protocol of each connection: h1 (HTTP/1.1) or h2 (HTTP/2; the server must negotiate it)")
	fs.DurationVar(&c.hold, "hold", 0, "exit after holding the connections this long (0 = until SIGINT/SIGTERM)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	u, err := url.Parse(c.rawURL)
	if err != nil {
		return c, fmt.Errorf("--url %q: %w", c.rawURL, err)
	}
	if u.Scheme != "https" {
		return c, fmt.Errorf("--url %q: scheme must be https", c.rawURL)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return c, fmt.Errorf("--url %q: host must be a loopback IP", c.rawURL)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "443")
	}
	c.url = u
	if c.proto != "h1" && c.proto != "h2" {
		return c, fmt.Errorf("--proto %q: want h1 or h2", c.proto)
	}
	if c.n < 1 {
		return c, fmt.Errorf("--n %d: must be at least 1", c.n)
	}
	if c.parallel < 1 {
		return c, fmt.Errorf("--parallel %d: must be at least 1", c.parallel)
	}
	if c.timeout <= 0 {
		return c, fmt.Errorf("--timeout %s: must be positive", c.timeout)
	}
	if c.hold < 0 {
		return c, fmt.Errorf("--hold %s: must not be negative", c.hold)
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	raiseNoFile(c.n + 64)
	alpn := map[string]string{"h1": "http/1.1", "h2": "h2"}[c.proto]
	tc := &tls.Config{NextProtos: []string{alpn}, ServerName: c.serverName, MinVersion: tls.VersionTLS12}
	if c.serverName == "" {
		tc.ServerName = c.url.Hostname()
	}
	if c.ca != "" {
		pemData, err := os.ReadFile(c.ca)
		if err != nil {
			return fmt.Errorf("--ca %q: %w", c.ca, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return fmt.Errorf("--ca %q: no PEM certificates found", c.ca)
		}
		tc.RootCAs = pool
	} else {
		tc.InsecureSkipVerify = true // the benchmark's own throwaway certificate
	}
	conns, err := openAll(ctx, c, tc)
	defer func() {
		for _, cn := range conns {
			_ = cn.Close()
		}
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ready %d\n", len(conns))
	if c.hold > 0 {
		t := time.NewTimer(c.hold)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return nil
	}
	<-ctx.Done()
	return nil
}

// openAll opens c.n connections, c.parallel at a time; on the first error
// it stops and returns what it opened so the caller can close them.
func openAll(ctx context.Context, c config, tc *tls.Config) ([]io.Closer, error) {
	var (
		mu    sync.Mutex
		conns = make([]io.Closer, 0, c.n)
		first error
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	for range c.parallel {
		wg.Go(func() {
			for i := range next {
				cn, err := openOne(ctx, c, tc)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = fmt.Errorf("connection %d of %d to %s: %w", i+1, c.n, c.url.Host, err)
						cancel()
					}
				} else {
					conns = append(conns, cn)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range c.n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil && len(conns) < c.n {
		first = fmt.Errorf("interrupted after %d of %d connections: %w", len(conns), c.n, ctx.Err())
	}
	return conns, first
}

// openOne dials, handshakes and does one request, leaving the connection
// idle and open.
func openOne(ctx context.Context, c config, tc *tls.Config) (io.Closer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.proto == "h2" {
		return openH2(ctx, c, tc)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: tc}
	cn, err := d.DialContext(ctx, "tcp", c.url.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = cn.SetDeadline(dl)
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: outrigger-idleconns\r\n\r\n", c.url.RequestURI(), c.url.Host)
	if _, err := io.WriteString(cn, req); err != nil {
		_ = cn.Close()
		return nil, fmt.Errorf("writing request: %w", err)
	}
	br := bufio.NewReader(cn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		_ = cn.Close()
		return nil, fmt.Errorf("reading response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		_ = cn.Close()
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = cn.Close()
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	if resp.Close || br.Buffered() > 0 {
		_ = cn.Close()
		return nil, errors.New("server did not keep the connection alive")
	}
	_ = cn.SetDeadline(time.Time{})
	return cn, nil
}

// openH2 does the request of openOne over HTTP/2: a client connection of
// its own (net/http's ClientConn, HTTP/2 only), left open and idle; its
// Close ends it.
func openH2(ctx context.Context, c config, tc *tls.Config) (io.Closer, error) {
	tr := &http.Transport{TLSClientConfig: tc.Clone(), ForceAttemptHTTP2: true}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	cc, err := tr.NewClientConn(ctx, "https", c.url.Host)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url.String(), nil)
	if err != nil {
		_ = cc.Close()
		return nil, err
	}
	req.Header.Set("User-Agent", "outrigger-idleconns")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("request: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	switch {
	case err != nil:
		err = fmt.Errorf("reading body: %w", err)
	case resp.ProtoMajor != 2:
		err = fmt.Errorf("answered over %s, not HTTP/2", resp.Proto)
	case resp.StatusCode != http.StatusOK:
		err = fmt.Errorf("status %s", resp.Status)
	case cc.Err() != nil:
		err = fmt.Errorf("server did not keep the connection open: %w", cc.Err())
	}
	if err != nil {
		_ = cc.Close()
		return nil, err
	}
	return cc, nil
}

// raiseNoFile lifts the soft open-file limit towards want (up to the hard
// limit); Go already raises it at start-up, this is belt and braces.
func raiseNoFile(want int) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return
	}
	if r.Cur >= uint64(want) {
		return
	}
	r.Cur = min(uint64(want), r.Max)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
}
