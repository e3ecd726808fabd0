// Command naiveproxy is the "naive Go" reference point of the benchmarks
// (see /work/shared/ANCHORS.md): net/http's TLS server in front of
// httputil.ReverseProxy with a clone of http.DefaultTransport, no tuning.
// It shows what Outrigger's own proxying path gains over the obvious
// implementation, measured in the same run.
//
// It is not a product: no limits, no timeouts beyond the defaults, no
// logging, no graceful drain. It listens on loopback only.
//
// Usage:
//
//	naiveproxy --listen 127.0.0.1:8443 --upstream http://127.0.0.1:8080 --cert C --key K
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "naiveproxy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("naiveproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "HTTPS listen address HOST:PORT (loopback only)")
	upstream := fs.String("upstream", "http://127.0.0.1:8080", "upstream base URL (http, loopback only)")
	certFile := fs.String("cert", "", "PEM certificate (required)")
	keyFile := fs.String("key", "", "PEM private key (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := loopbackAddr(*listen); err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	u, err := url.Parse(*upstream)
	if err != nil {
		return fmt.Errorf("--upstream %q: %w", *upstream, err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("--upstream %q: scheme must be http", *upstream)
	}
	if err := loopbackAddr(u.Host); err != nil {
		return fmt.Errorf("--upstream %q: %w", *upstream, err)
	}
	pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("--cert %q --key %q: %w", *certFile, *keyFile, err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.SetXForwarded()
		},
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}},
	}
	fmt.Fprintf(stdout, "naiveproxy listening https=%s upstream=%s\n", ln.Addr(), u)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// loopbackAddr accepts HOST:PORT whose host is a loopback IP literal.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("host must be a loopback IP such as 127.0.0.1")
	}
	return nil
}
