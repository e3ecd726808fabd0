package forward

import (
	"crypto/x509"
	"net/http"
	"net/netip"
	"strings"
)

// peerAddr parses the connection's remote address (r.RemoteAddr). It fails
// for listeners that have no IP peer, such as unix sockets.
func peerAddr(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// peerString returns a.String() for a parsed from remote by peerAddr, without
// allocating in the common case: remote is "a.b.c.d:port" with an IPv4
// address, whose text netip only accepts in the canonical dotted-decimal
// form a.String() produces, so the host part of remote is that string.
func peerString(remote string, a netip.Addr) string {
	if a.Is4() {
		if i := strings.LastIndexByte(remote, ':'); i > 0 && remote[0] != '[' {
			if host := remote[:i]; len(host) <= len("255.255.255.255") && strings.IndexByte(host, ':') < 0 {
				return host
			}
		}
	}
	return a.String()
}

// trusted reports whether a is one of the configured trusted proxies.
func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientInfo is what the proxy knows about who sent a request.
type clientInfo struct {
	peer       netip.Addr // the TCP peer; invalid if unknown
	peerStr    string     // peer as text, "" if unknown
	trusted    bool       // peer is a trusted proxy whose forwarding headers are kept
	realClient string     // the original client as best known ("" if unknown)
}

// inspectClient works out the peer and, behind trusted proxies, the original
// client: the rightmost X-Forwarded-For entry that is not itself a trusted
// proxy (entries left of it could have been written by the client).
func (h *Handler) inspectClient(r *http.Request) clientInfo {
	var ci clientInfo
	a, ok := peerAddr(r.RemoteAddr)
	if !ok {
		return ci
	}
	ci.peer = a
	ci.peerStr = peerString(r.RemoteAddr, a)
	ci.realClient = ci.peerStr
	if len(h.cfg.TrustedProxies) == 0 || !h.trusted(a) {
		return ci
	}
	ci.trusted = true
	xff := r.Header["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			j := strings.LastIndexByte(line, ',')
			entry := strings.TrimSpace(line[j+1:])
			if j < 0 {
				line = ""
			} else {
				line = line[:j]
			}
			if entry == "" {
				continue
			}
			ea, ok := parseForwardedIP(entry)
			if !ok {
				// Garbage from upstream of the trusted chain: stop at the last good hop.
				return ci
			}
			ci.realClient = ea.String()
			if !h.trusted(ea) {
				return ci
			}
		}
	}
	return ci
}

// parseForwardedIP accepts "1.2.3.4", "2001:db8::1", "[2001:db8::1]" and
// the same with a ":port" suffix, as seen in X-Forwarded-For in the wild.
func parseForwardedIP(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// fwdHeaders are the forwarding header values for one request ("" = omit).
// The Forwarded value is either the string forwarded or, when that is empty,
// built while it is written (appendForwarded) from prior, ci, reqHost and
// reqProto, which saves building a string per request on the direct path.
type fwdHeaders struct {
	xff, proto, host, forwarded, realIP, cert string

	prior             []string // a trusted peer's Forwarded values, kept in front
	ci                clientInfo
	reqHost, reqProto string
}

// forwardedValues computes X-Forwarded-For/-Proto/-Host, Forwarded,
// X-Real-IP and the client certificate header for a request from peer ci.
func (h *Handler) forwardedValues(in *http.Request, ci clientInfo) fwdHeaders {
	var f fwdHeaders
	h.fillForwarded(&f, in, ci)
	f.forwarded = string(f.appendForwarded(make([]byte, 0, 64+len(f.reqHost))))
	return f
}

// appendForwarded appends the Forwarded header value: the trusted prior
// values, then this hop's element.
func (f *fwdHeaders) appendForwarded(b []byte) []byte {
	if f.forwarded != "" {
		return append(b, f.forwarded...)
	}
	for _, p := range f.prior {
		b = append(b, p...)
		b = append(b, ", "...)
	}
	return appendForwardedElement(b, &f.ci, f.reqHost, f.reqProto)
}

// fillForwarded fills *f (which must be zero) with forwardedValues'
// values but the Forwarded string, which the direct path appends where the
// header is written (appendForwarded). The direct path keeps f in its
// per-request writer, off the handler goroutine's stack (see serveDirect).
func (h *Handler) fillForwarded(f *fwdHeaders, in *http.Request, ci clientInfo) {
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}

	// X-Forwarded-For: appended to for trusted peers, replaced otherwise.
	if ci.peerStr != "" {
		f.xff = ci.peerStr
		if ci.trusted {
			if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
				f.xff = strings.Join(prior, ", ") + ", " + f.xff
			}
		}
	}

	// X-Forwarded-Proto and -Host describe the original request: a trusted
	// proxy's values win, otherwise ours.
	f.proto = proto
	if v := in.Header["X-Forwarded-Proto"]; ci.trusted && len(v) > 0 {
		f.proto = v[0]
	}
	f.host = in.Host
	if v := in.Header["X-Forwarded-Host"]; ci.trusted && len(v) > 0 {
		f.host = v[0]
	}

	// RFC 7239 Forwarded: the trusted peer's elements, then ours.
	f.ci, f.reqHost, f.reqProto = ci, in.Host, proto
	if ci.trusted {
		f.prior = in.Header["Forwarded"]
	}

	// X-Real-IP: the original client, never what an untrusted client claims.
	f.realIP = ci.realClient

	if h.certHeader != "" && in.TLS != nil && len(in.TLS.VerifiedChains) > 0 && len(in.TLS.VerifiedChains[0]) > 0 {
		f.cert = certIdentity(in.TLS.VerifiedChains[0][0])
	}
}

// setForwarded writes the forwarding headers on out (which ReverseProxy has
// already stripped of the client's X-Forwarded-* and Forwarded headers) and
// removes headers a client must not be able to inject.
func (h *Handler) setForwarded(in *http.Request, out http.Header, ci clientInfo) {
	f := h.forwardedValues(in, ci)

	delete(out, "X-Real-Ip")
	// httpoxy: a "Proxy" request header becomes HTTP_PROXY in CGI-style apps.
	delete(out, "Proxy")
	if !ci.trusted {
		stripSpoofable(out)
	}
	if h.certHeader != "" {
		delete(out, h.certHeader)
	}

	// One backing array for the single-valued headers saves an allocation
	// per header on the hot path; it never grows (6 values at most), and each
	// slice is capped at one element so an append elsewhere copies.
	vals := make([]string, 0, 6)
	set := func(name, v string) {
		if v == "" {
			return
		}
		vals = append(vals, v)
		n := len(vals)
		out[name] = vals[n-1 : n : n]
	}
	set("X-Forwarded-For", f.xff)
	set("X-Forwarded-Proto", f.proto)
	set("X-Forwarded-Host", f.host)
	set("Forwarded", f.forwarded)
	set("X-Real-Ip", f.realIP)
	if h.certHeader != "" {
		set(h.certHeader, f.cert)
	}
}

// appendForwardedElement appends one RFC 7239 forwarded-element:
// for=192.0.2.1;host=example.com;proto=https, with IPv6 nodes quoted and
// bracketed (for="[2001:db8::1]") and values quoted when not tokens.
func appendForwardedElement(b []byte, ci *clientInfo, host, proto string) []byte {
	b = append(b, "for="...)
	switch {
	case ci.peerStr == "":
		b = append(b, "unknown"...)
	case ci.peer.Is6():
		b = append(b, `"[`...)
		b = append(b, ci.peerStr...)
		b = append(b, `]"`...)
	default:
		b = append(b, ci.peerStr...)
	}
	if host != "" {
		b = append(b, ";host="...)
		if isToken(host) {
			b = append(b, host...)
		} else {
			b = appendQuoted(b, host)
		}
	}
	b = append(b, ";proto="...)
	return append(b, proto...)
}

func isToken(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !isTokenChar(v[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// certIdentity renders a verified client certificate as one header value in
// the style of Envoy's X-Forwarded-Client-Cert:
//
//	Subject="CN=client,O=Acme";URI=spiffe://example.org/app;DNS=a.example;Email=x@example.org;IP=192.0.2.1
//
// Values that are not tokens (the Subject always has ',' or '=') are quoted
// with '"' and '\' escaped; control characters are dropped.
func certIdentity(c *x509.Certificate) string {
	var b strings.Builder
	b.WriteString("Subject=")
	writeQuoted(&b, c.Subject.String())
	for _, u := range c.URIs {
		b.WriteString(";URI=")
		writeIdentityValue(&b, u.String())
	}
	for _, d := range c.DNSNames {
		b.WriteString(";DNS=")
		writeIdentityValue(&b, d)
	}
	for _, e := range c.EmailAddresses {
		b.WriteString(";Email=")
		writeIdentityValue(&b, e)
	}
	for _, ip := range c.IPAddresses {
		b.WriteString(";IP=")
		writeIdentityValue(&b, ip.String())
	}
	return b.String()
}

func writeIdentityValue(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f || c == ';' || c == ',' || c == '"' || c == '\\' || c == '=' {
			writeQuoted(b, v)
			return
		}
	}
	b.WriteString(v)
}

// writeQuoted writes v as a quoted-string with '"' and '\\' escaped and
// control characters (which no header value may carry) dropped.
func writeQuoted(b *strings.Builder, v string) {
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// appendQuoted is writeQuoted appending to b.
func appendQuoted(b []byte, v string) []byte {
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// stripSpoofable removes headers that legacy frameworks read as "the client's
// IP" or "the request was HTTPS" but that only a proxy should set. From an
// untrusted peer they can only be forged (claiming https on a plain listener,
// or an internal IP to pass an allow-list).
func stripSpoofable(h http.Header) {
	for k := range h {
		if isSpoofable(k) {
			delete(h, k)
		}
	}
}

// isSpoofable reports whether the canonical header name k is one of the
// client-IP / scheme claims stripSpoofable removes.
func isSpoofable(k string) bool {
	switch k {
	case "X-Forwarded-Port", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Server",
		"X-Forwarded-Prefix", "X-Url-Scheme", "Front-End-Https", "X-Client-Ip", "True-Client-Ip",
		"X-Cluster-Client-Ip", "X-Original-Forwarded-For", "Cf-Connecting-Ip", "Fastly-Client-Ip",
		"X-Originating-Ip", "X-Remote-Ip", "X-Remote-Addr", "Client-Ip":
		return true
	}
	return false
}
