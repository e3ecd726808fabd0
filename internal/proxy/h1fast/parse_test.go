package h1fast

import (
	"bufio"
	"bytes"
	"context"
	"reflect"
	"testing"
)

var plainSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"HEAD /x?y=z HTTP/1.1\r\nHost: a:1\r\nUser-Agent: u\r\nAccept: */*\r\n\r\n",
	"GET /a%20b/../c?q=%zz;x HTTP/1.1\r\nhost: A.example\r\nx-dup: 1\r\nX-Dup: 2\r\nX-Empty:\r\nX-Sp:  \t v \t \r\n\r\n",
	"GET //x/y HTTP/1.1\r\nHost: [::1]:8\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nCache-Control: max-age=1\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: \x80\xff obs-text\r\naccept-ENCODING: gzip\r\n\r\n",
	"GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /%2 HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a:b HTTP/1.1\r\nHost: h\r\n\r\n",
}

// FuzzParsePlain checks that for every head plainHead accepts, parsePlain
// builds exactly the request http.ReadRequest does.
func FuzzParsePlain(f *testing.F) {
	for _, s := range plainSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := plainHead(b, 1<<20)
		if !ok {
			return
		}
		want, err := http_ReadRequest(b[:n])
		if err != nil {
			t.Fatalf("plainHead accepted %q but ReadRequest fails: %v", b[:n], err)
		}
		got, err := parsePlain(testCtx, b[:n])
		want = want.WithContext(testCtx)
		if err != nil {
			t.Fatalf("parsePlain(%q): %v", b[:n], err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parsePlain(%q)\n got %#v\nwant %#v", b[:n], got, want)
		}
	})
}

func TestParsePlainSeeds(t *testing.T) {
	for _, s := range plainSeeds {
		n, ok := plainHead([]byte(s), 1<<20)
		if !ok {
			continue
		}
		want, err := http_ReadRequest([]byte(s[:n]))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		got, err := parsePlain(testCtx, []byte(s[:n]))
		want = want.WithContext(testCtx)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parsePlain(%q)\n got %#v (%v)\nwant %#v", s, got, err, want)
		}
	}
}

var testCtx = context.WithValue(context.Background(), testCtxKey{}, 1)

type testCtxKey struct{}

func http_ReadRequest(b []byte) (*httpRequest, error) {
	return readRequestRef(bufio.NewReader(bytes.NewReader(b)))
}
