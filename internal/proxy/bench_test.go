package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/tcpserve"
)

// BenchmarkProxy1KiB measures one GET through the whole proxy role (TLS,
// net/http or HTTP/2 server, forwarding handler, metrics) to a real loopback
// app, per protocol and upstream path. The client, the proxy and the app
// share the process, so ns/op and allocs/op include all three; compare runs,
// not absolute values.
func BenchmarkProxy1KiB(b *testing.B) {
	for _, bc := range []struct {
		name   string
		h2     bool
		direct bool
	}{
		{"h1/direct", false, true},
		{"h1/reverseproxy", false, false},
		{"h2/direct", true, true},
		{"h2/reverseproxy", true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, func(c *Config) { c.UpstreamDirect = bc.direct })
			e.waitReady()
			c := e.client(e.clientTLS(), bc.h2)
			url := "https://" + e.addr() + "/bench"
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkProxyServerSide1KiB is BenchmarkProxy1KiB/h1/direct, served by
// net/http and with --http1-fast, with the client and the app reduced to
// raw sockets (fixed request bytes; a canned 1 KiB keep-alive response), so
// that allocs/op and ns/op are mostly the proxy's own per-request cost: TLS,
// the HTTP/1.1 server, the smuggling guard and the forwarding handler.
func BenchmarkProxyServerSide1KiB(b *testing.B) {
	b.Run("net-http", func(b *testing.B) { benchServerSide(b, false) })
	b.Run("http1-fast", func(b *testing.B) { benchServerSide(b, true) })
}

func benchServerSide(b *testing.B, fast bool) {
	app := cannedApp(b)
	e := newEnv(b, func(c *Config) { c.Upstream = app; c.UpstreamDirect = true; c.HTTP1Fast = fast })
	e.waitReady()
	conns := make(chan *rawClient, 64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var c *rawClient
		select {
		case c = <-conns:
		default:
			var err error
			if c, err = dialRaw(e.addr(), e.clientTLS()); err != nil {
				b.Error(err)
				return
			}
		}
		defer func() { conns <- c }()
		for pb.Next() {
			if err := c.get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	close(conns)
	for c := range conns {
		_ = c.tc.Close()
	}
}

// cannedApp is a loopback app that answers every request on a keep-alive
// connection with the same 1 KiB response, without parsing beyond the end
// of the request head. It returns its http:// URL.
func cannedApp(b *testing.B) string {
	b.Helper()
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("a", 1024))
	return "http://" + tcpserve.Start(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

// rawClient sends a fixed GET on one TLS connection and reads the response
// by its Content-Length.
type rawClient struct {
	tc *tls.Conn
	br *bufio.Reader
}

var rawRequest = []byte("GET /bench HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")

func dialRaw(addr string, cfg *tls.Config) (*rawClient, error) {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	tc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	return &rawClient{tc: tc, br: bufio.NewReaderSize(tc, 8<<10)}, nil
}

func (c *rawClient) get() error {
	if _, err := c.tc.Write(rawRequest); err != nil {
		return err
	}
	status, cl := 0, -1
	for first := true; ; first = false {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if len(line) < 12 {
				return fmt.Errorf("bad status line %q", line)
			}
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			cl, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if status != http.StatusOK || cl != 1024 {
		return fmt.Errorf("status %d, content-length %d", status, cl)
	}
	_, err := c.br.Discard(cl)
	return err
}
