package main

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestReadResponseHead(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want responseHead
		err  string
	}{
		{name: "200 with body", in: "HTTP/1.1 200 OK\r\nEtag: \"7\"\r\nContent-Length: 12\r\n\r\n",
			want: responseHead{code: 200, etag: `"7"`, length: 12}},
		{name: "304 without length", in: "HTTP/1.1 304 Not Modified\r\nETag: \"7\"\r\n\r\n",
			want: responseHead{code: 304, etag: `"7"`, length: -1}},
		{name: "connection close", in: "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
			want: responseHead{code: 503, length: 0, closing: true}},
		{name: "bare LF", in: "HTTP/1.0 200 OK\nContent-Length: 1\n\n", want: responseHead{code: 200, length: 1}},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", err: "chunked"},
		{name: "no length", in: "HTTP/1.1 200 OK\r\n\r\n", err: "without Content-Length"},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: "non-negative"},
		{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", err: "status line"},
		{name: "bad code", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: "bad status code"},
		{name: "long code", in: "HTTP/1.1 2000 OK\r\n\r\n", err: "bad status code"},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", err: "no colon"},
		{name: "truncated", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", err: "header"},
		{name: "empty", in: "", err: "status line"},
		{name: "too many headers", in: "HTTP/1.1 304 x\r\n" + strings.Repeat("A: b\r\n", maxHeadLines+1) + "\r\n", err: "header lines"},
		{name: "header line beyond buffer", in: "HTTP/1.1 304 x\r\nA: " + strings.Repeat("b", 5000) + "\r\n\r\n", err: "header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readResponseHead(bufio.NewReaderSize(strings.NewReader(tc.in), 2048))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := readResponseHead(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))); !errors.Is(err, errChunked) {
		t.Errorf("chunked: err %v, want errChunked", err)
	}
}

func FuzzReadResponseHead(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nEtag: \"7\"\r\nContent-Length: 12\r\n\r\nbody")
	f.Add("HTTP/1.1 304 Not Modified\r\n\r\n")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		h, err := readResponseHead(bufio.NewReaderSize(strings.NewReader(in), 2048))
		if err != nil {
			return
		}
		if h.code < 100 || h.code > 999 {
			t.Fatalf("accepted status %d from %q", h.code, in)
		}
		if h.length < -1 || (h.length == -1 && h.code >= 200 && h.code != 204 && h.code != 304) {
			t.Fatalf("accepted length %d for %d from %q", h.length, h.code, in)
		}
	})
}
