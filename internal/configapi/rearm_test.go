package configapi

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestParseRearmHead(t *testing.T) {
	const ok = "GET /v1/configs/app?wait=60s HTTP/1.1\r\nHost: 127.0.0.1:7700\r\nIf-None-Match: \"3\"\r\nUser-Agent: outrigger\r\n\r\n"
	cases := []struct {
		name string
		head string
		want *rearmReq // nil = not taken here
	}{
		{name: "plain", head: ok, want: &rearmReq{name: "app", query: "wait=60s", inm: `"3"`}},
		{name: "token", head: "GET /v1/configs/a.b-c_d?wait=1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer t0k\r\nif-none-match:\t\"1\", \"2\" \r\n\r\n",
			want: &rearmReq{name: "a.b-c_d", query: "wait=1", auth: "Bearer t0k", inm: `"1", "2"`}},
		{name: "HEAD", head: strings.Replace(ok, "GET", "HEAD", 1)},
		{name: "HTTP/1.0", head: strings.Replace(ok, "HTTP/1.1", "HTTP/1.0", 1)},
		{name: "other route", head: strings.Replace(ok, "/app?", "/app/status?", 1)},
		{name: "percent-encoded", head: strings.Replace(ok, "/app?", "/%61pp?", 1)},
		{name: "dot name", head: strings.Replace(ok, "/app?", "/..?", 1)},
		{name: "fragment", head: strings.Replace(ok, "wait=60s", "wait=60s#x", 1)},
		{name: "absolute form", head: strings.Replace(ok, "/v1/configs/app", "http://x/v1/configs/app", 1)},
		{name: "bare LF", head: strings.Replace(ok, "\r\nUser-Agent", "\nUser-Agent", 1)},
		{name: "bare CR in value", head: strings.Replace(ok, "outrigger", "out\rrigger", 1)},
		{name: "obs-fold", head: strings.Replace(ok, "\r\nUser-Agent: outrigger", "\r\nUser-Agent: out\r\n rigger", 1)},
		{name: "space before colon", head: strings.Replace(ok, "User-Agent:", "User-Agent :", 1)},
		{name: "no Host", head: strings.Replace(ok, "Host: 127.0.0.1:7700\r\n", "", 1)},
		{name: "two Hosts", head: strings.Replace(ok, "\r\n\r\n", "\r\nHost: y\r\n\r\n", 1)},
		{name: "odd Host", head: strings.Replace(ok, "127.0.0.1:7700", "a/b", 1)},
		{name: "no If-None-Match", head: strings.Replace(ok, "If-None-Match: \"3\"\r\n", "", 1)},
		{name: "two If-None-Match", head: strings.Replace(ok, "\r\n\r\n", "\r\nIf-None-Match: \"4\"\r\n\r\n", 1)},
		{name: "two Authorization", head: strings.Replace(ok, "\r\n\r\n", "\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 1)},
		{name: "Content-Length", head: strings.Replace(ok, "\r\n\r\n", "\r\nContent-Length: 0\r\n\r\n", 1)},
		{name: "Transfer-Encoding", head: strings.Replace(ok, "\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n\r\n", 1)},
		{name: "Connection close", head: strings.Replace(ok, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)},
		{name: "Expect", head: strings.Replace(ok, "\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n", 1)},
		{name: "Upgrade", head: strings.Replace(ok, "\r\n\r\n", "\r\nUpgrade: h2c\r\n\r\n", 1)},
		{name: "non-ASCII value", head: strings.Replace(ok, "outrigger", "outr\xc3\xa9gger", 1)},
		{name: "trailing bytes", head: ok + "G"},
		{name: "truncated", head: strings.TrimSuffix(ok, "\r\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseRearmHead([]byte(tc.head))
			switch {
			case tc.want == nil && ok:
				t.Fatalf("taken: %+v", got)
			case tc.want != nil && !ok:
				t.Fatal("not taken")
			case tc.want != nil && got != *tc.want:
				t.Fatalf("got %+v, want %+v", got, *tc.want)
			}
		})
	}
}

// FuzzParseRearmHead: whatever parseRearmHead takes, net/http reads as
// the same bodiless, keep-alive GET of the same config with the same
// query, Authorization and If-None-Match.
func FuzzParseRearmHead(f *testing.F) {
	f.Add("GET /v1/configs/app?wait=60s HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"3\"\r\n\r\n")
	f.Add("GET /v1/configs/app?wait=1&x=%zz HTTP/1.1\r\nHost: [::1]:80\r\nAuthorization:  Bearer a \r\nIf-None-Match: *\r\n\r\n")
	f.Add("GET /v1/configs/app HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"3\"\r\nX: a\tb\r\n\r\n")
	f.Fuzz(func(t *testing.T, head string) {
		r, ok := parseRearmHead([]byte(head))
		if !ok {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("taken, but net/http refuses %q: %v", head, err)
		}
		switch {
		case req.Method != http.MethodGet || !req.ProtoAtLeast(1, 1) || req.Close:
			t.Fatalf("%q: %s %s close=%v", head, req.Method, req.Proto, req.Close)
		case req.ContentLength != 0 || len(req.TransferEncoding) != 0:
			t.Fatalf("%q: body framing %d %v", head, req.ContentLength, req.TransferEncoding)
		case req.URL.Path != "/v1/configs/"+r.name || req.URL.RawPath != "" || req.URL.RawQuery != r.query:
			t.Fatalf("%q: URL %q %q %q, parsed %+v", head, req.URL.Path, req.URL.RawPath, req.URL.RawQuery, r)
		case req.Header.Get("Authorization") != r.auth || req.Header.Get("If-None-Match") != r.inm:
			t.Fatalf("%q: headers %q, parsed %+v", head, req.Header, r)
		case len(req.Header.Values("If-None-Match")) != 1 || len(req.Header.Values("Authorization")) > 1:
			t.Fatalf("%q: repeated headers %q", head, req.Header)
		case req.Host == "" || bytes.ContainsAny([]byte(req.Host), " /"):
			t.Fatalf("%q: host %q", head, req.Host)
		}
	})
}
