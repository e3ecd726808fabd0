package h1fast

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// parsePlain builds the request that http.ReadRequest returns for head, a
// request head plainHead accepted, with context ctx (FuzzParsePlain checks
// they agree). It needs fewer allocations: one string for the whole head,
// one array for the header values, the map, the URL and the request.
func parsePlain(ctx context.Context, head []byte) (*http.Request, error) {
	s := string(head[:len(head)-2]) // each line ends in CRLF
	eol := strings.Index(s, "\r\n")
	line, rest := s[:eol], s[eol+2:]
	method := http.MethodGet
	if line[0] == 'H' {
		method = http.MethodHead
	}
	target := line[len(method)+1 : len(line)-len(" HTTP/1.1")]
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, err
	}
	n := strings.Count(rest, "\r\n")
	vals := make([]string, n)
	hdr := make(http.Header, n)
	var host string
	for rest != "" {
		i := strings.Index(rest, "\r\n")
		line, rest = rest[:i], rest[i+2:]
		name, value, _ := strings.Cut(line, ":")
		value = trimOWS(value)
		key := http.CanonicalHeaderKey(name) // no allocation when already canonical
		if key == "Host" {
			host = value // ReadRequest moves it out of the header too
			continue
		}
		vals[0] = value
		if prior, dup := hdr[key]; dup {
			hdr[key] = append(prior, vals[0]) // prior is capped: this copies
		} else {
			hdr[key] = vals[0:1:1]
		}
		vals = vals[1:]
	}
	if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	var zero http.Request
	r := zero.WithContext(ctx) // the one way to set the context; copies zero
	r.Method = method
	r.URL = u
	r.Proto = "HTTP/1.1"
	r.ProtoMajor, r.ProtoMinor = 1, 1
	r.Header = hdr
	r.Body = http.NoBody
	r.Host = host
	r.RequestURI = target
	return r, nil
}

// trimOWS removes spaces and tabs around v (strings.Trim builds a set on
// every call).
func trimOWS(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}
