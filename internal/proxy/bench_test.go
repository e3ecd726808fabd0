package proxy

import (
	"io"
	"net/http"
	"testing"
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
