package proxy

import (
	"fmt"
	"net/http"
	"testing"
)

// TestUpstreamDirectModes runs the same requests through the proxy role with
// --upstream-direct on (the default: the handler's own HTTP/1.1 client) and
// off (httputil.ReverseProxy), over HTTP/1.1 and HTTP/2, and checks that the
// app sees the same request and the client the same response either way.
func TestUpstreamDirectModes(t *testing.T) {
	const n = 20 // enough sequential requests to reuse pooled upstream connections
	for _, direct := range []bool{true, false} {
		for _, h2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("direct=%v/h2=%v", direct, h2), func(t *testing.T) {
				e := newEnv(t, func(c *Config) { c.UpstreamDirect = direct })
				e.waitReady()
				c := e.client(e.clientTLS(), h2)
				for i := range n {
					url := fmt.Sprintf("https://%s/item/%d?q=%d", e.addr(), i, i)
					resp, ec := get(t, c, url, http.Header{"X-Forwarded-For": {"203.0.113.9"}})
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("GET %s: status %d", url, resp.StatusCode)
					}
					if wantMajor := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != wantMajor {
						t.Fatalf("client spoke HTTP/%d, want %d", resp.ProtoMajor, wantMajor)
					}
					if want := fmt.Sprintf("/item/%d", i); ec.Path != want || ec.Query != fmt.Sprintf("q=%d", i) {
						t.Fatalf("app saw path %q query %q, want %q q=%d", ec.Path, ec.Query, want, i)
					}
					// The client is not a trusted proxy: its X-Forwarded-For is replaced.
					if ec.XFF != "127.0.0.1" {
						t.Fatalf("app saw X-Forwarded-For %q, want 127.0.0.1", ec.XFF)
					}
					if ec.Host != e.addr() {
						t.Fatalf("app saw Host %q, want the client's %q (--preserve-host)", ec.Host, e.addr())
					}
				}
				got := metricValue(t, e.reg, "outrigger_requests_total", map[string]string{"code": "200", "method": "GET"})
				if got != n {
					t.Fatalf("outrigger_requests_total{code=200,method=GET} = %v, want %d", got, n)
				}
				if err := e.stop(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
