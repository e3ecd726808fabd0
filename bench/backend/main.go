// Command backend is the upstream of Outrigger's side-by-side benchmarks: a
// plain Go net/http server on loopback that answers fixed-size bodies, so
// that every proxy in bench/run.sh is measured in front of the same app.
//
// It serves GET /1k (1,024 bytes), GET /64k (65,536 bytes), GET /bytes?size=N
// (N bytes, at most 16 MiB) and GET /healthz, over plain HTTP on --listen
// and, when --tls-listen is set, over HTTPS with HTTP/2 on that address: the
// "ceiling" candidate, the backend terminating TLS itself with no proxy.
//
// It does not log requests, compress, or do anything else that would make
// the backend rather than the proxy the thing being measured. It refuses
// to listen anywhere but loopback: benchmarks never leave the machine.
//
// Usage:
//
//	backend --listen 127.0.0.1:18080 [--tls-listen 127.0.0.1:18443 --cert C --key K]
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
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// maxBytes caps /bytes?size= so a typo cannot make the backend allocate
// gigabytes.
const maxBytes = 16 << 20

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	listen, tlsListen, cert, key string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:18080", "plain HTTP listen address HOST:PORT (loopback only)")
	fs.StringVar(&c.tlsListen, "tls-listen", "", "also serve HTTPS (TLS 1.2+, HTTP/2) on this loopback HOST:PORT; needs --cert and --key (empty = off)")
	fs.StringVar(&c.cert, "cert", "", "PEM certificate for --tls-listen")
	fs.StringVar(&c.key, "key", "", "PEM private key for --tls-listen")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := checkLoopback(c.listen); err != nil {
		return c, fmt.Errorf("--listen %q: %w", c.listen, err)
	}
	if c.tlsListen != "" {
		if err := checkLoopback(c.tlsListen); err != nil {
			return c, fmt.Errorf("--tls-listen %q: %w", c.tlsListen, err)
		}
		if c.cert == "" || c.key == "" {
			return c, fmt.Errorf("--tls-listen %q: needs --cert and --key", c.tlsListen)
		}
	}
	return c, nil
}

// checkLoopback accepts HOST:PORT whose host is a loopback IP literal.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return errors.New("host must be a loopback IP such as 127.0.0.1")
	}
	return nil
}

// newHandler returns the benchmark endpoints. Bodies are built once so a
// request costs no allocation for the payload.
func newHandler() http.Handler {
	body1k := payload(1 << 10)
	body64k := payload(64 << 10)
	fixed := func(b []byte) http.HandlerFunc {
		n := strconv.Itoa(len(b))
		return func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"application/octet-stream"}
			h["Content-Length"] = []string{n}
			_, _ = w.Write(b)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /1k", fixed(body1k))
	mux.Handle("GET /64k", fixed(body64k))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("size"))
		if err != nil || n < 0 || n > maxBytes {
			http.Error(w, fmt.Sprintf("size %q: want an integer 0..%d", r.URL.Query().Get("size"), maxBytes), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(payload(n))
	})
	return mux
}

// payload is n printable bytes, so a body dumped to a terminal stays legible.
func payload(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789\n"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return b
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	h := newHandler()
	newServer := func() *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Minute}
	}
	plain, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", c.listen, err)
	}
	servers := []*http.Server{newServer()}
	listeners := []net.Listener{plain}
	if c.tlsListen != "" {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			_ = plain.Close()
			return fmt.Errorf("--cert %q --key %q: %w", c.cert, c.key, err)
		}
		ln, err := net.Listen("tcp", c.tlsListen)
		if err != nil {
			_ = plain.Close()
			return fmt.Errorf("--tls-listen %q: %w", c.tlsListen, err)
		}
		s := newServer()
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		servers = append(servers, s)
		listeners = append(listeners, ln)
	}
	// The script waits for this line before it starts a proxy in front.
	fmt.Fprintf(stdout, "backend listening http=%s", plain.Addr())
	if len(listeners) > 1 {
		fmt.Fprintf(stdout, " https=%s", listeners[1].Addr())
	}
	fmt.Fprintln(stdout)

	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() {
			var err error
			if s.TLSConfig != nil {
				err = s.ServeTLS(listeners[i], "", "")
			} else {
				err = s.Serve(listeners[i])
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutCtx)
	}
	return first
}
