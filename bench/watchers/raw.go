package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The raw client (--client raw) is a minimal HTTP/1.1 long-poll loop: one
// goroutine and one keep-alive connection per watcher, the request bytes
// formatted once per version, the response head parsed in place. It
// exists because the watchers share the CPUs with the server they
// measure: net/http's client spends a read-loop and a write-loop
// goroutine and a few dozen allocations per poll, which on a 2-core
// machine with 10,000 watchers is as much CPU as the server's own work.
// It speaks only what the config API answers a long poll with (a status
// line, headers, a Content-Length body); anything else is an error.

// maxHeadLines bounds a response head.
const maxHeadLines = 64

// responseHead is what the raw client needs from a response head.
type responseHead struct {
	code    int
	etag    string
	length  int64 // Content-Length; -1 if absent
	closing bool  // Connection: close
}

var errChunked = errors.New("chunked response: the raw client wants Content-Length")

// readResponseHead parses a status line and headers from br. It does not
// read the body.
func readResponseHead(br *bufio.Reader) (responseHead, error) {
	h := responseHead{length: -1}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return h, fmt.Errorf("status line: %w", err)
	}
	line = bytes.TrimRight(line, "\r\n")
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(rest) < 3 {
		return h, fmt.Errorf("status line %q: want HTTP/1.x NNN", line)
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil || code < 100 || code > 999 || (len(rest) > 3 && rest[3] != ' ') {
		return h, fmt.Errorf("status line %q: bad status code", line)
	}
	h.code = code
	for i := 0; ; i++ {
		if i == maxHeadLines {
			return h, fmt.Errorf("more than %d header lines", maxHeadLines)
		}
		line, err := br.ReadSlice('\n')
		if err != nil {
			return h, fmt.Errorf("header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, fmt.Errorf("header line %q: no colon", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				return h, fmt.Errorf("Content-Length %q: want a non-negative integer", v)
			}
			h.length = n
		case bytes.EqualFold(k, []byte("ETag")):
			h.etag = string(v)
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return h, errChunked
		case bytes.EqualFold(k, []byte("Connection")):
			h.closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	if h.length < 0 && h.code != 304 && h.code != 204 && h.code >= 200 {
		return h, errors.New("response without Content-Length")
	}
	return h, nil
}

// watchRaw is watch over the raw client: it dials addr with d, sends
// GET path with If-None-Match, and records a new version's arrival when
// the first byte of its response is readable.
func watchRaw(ctx context.Context, d *net.Dialer, addr, host, path string, have int64, got func(v int64, at time.Time), armed, errs *atomic.Int64) {
	var lc liveConn
	stop := context.AfterFunc(ctx, lc.shut) // unblocks a read in flight
	defer stop()
	defer lc.shut()
	var c net.Conn
	var br *bufio.Reader
	fail := func() {
		if c != nil {
			_ = c.Close()
			c = nil
		}
		if ctx.Err() == nil {
			errs.Add(1)
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
	var req []byte
	for ctx.Err() == nil {
		if c == nil {
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				fail()
				continue
			}
			if !lc.set(conn) {
				return
			}
			c, br = conn, bufio.NewReaderSize(conn, 2048)
		}
		req = fmt.Appendf(req[:0], "GET %s?wait=60s HTTP/1.1\r\nHost: %s\r\nIf-None-Match: \"%d\"\r\n\r\n", path, host, have)
		armed.Add(1)
		_, err := c.Write(req)
		if err == nil {
			_, err = br.Peek(1)
		}
		at := time.Now()
		armed.Add(-1)
		if err != nil {
			fail()
			continue
		}
		h, err := readResponseHead(br)
		if err == nil && h.length > 0 {
			_, err = br.Discard(int(h.length))
		}
		if err != nil {
			fail()
			continue
		}
		if h.closing {
			_ = c.Close()
			c = nil
		}
		switch h.code {
		case 200:
			v, err := etagVersion(h.etag)
			if err != nil || v <= have {
				fail()
				continue
			}
			have = v
			got(v, at)
		case 304:
		default:
			fail()
		}
	}
}

// liveConn is a watcher's current connection, closed from another
// goroutine when the run ends.
type liveConn struct {
	mu   sync.Mutex
	c    net.Conn
	done bool
}

// set makes c current; false (and c closed) if the run has ended.
func (l *liveConn) set(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		_ = c.Close()
		return false
	}
	l.c = c
	return true
}

func (l *liveConn) shut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	if l.c != nil {
		_ = l.c.Close()
	}
}
