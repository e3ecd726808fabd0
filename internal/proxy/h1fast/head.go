package h1fast

import (
	"bytes"

	"golang.org/x/net/http/httpguts"
)

// plainHead reports whether buf starts with a complete request head that
// this package serves (see the package documentation), and its length.
// Anything else, including a head not yet fully buffered or longer than
// maxBytes, is left to net/http.
func plainHead(buf []byte, maxBytes int) (int, bool) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 || end+4 > maxBytes {
		return 0, false
	}
	head := buf[:end+2] // every line ends in CRLF
	eol := bytes.Index(head, []byte("\r\n"))
	line := head[:eol]
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[len("GET "):]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		line = line[len("HEAD "):]
	default:
		return 0, false
	}
	target, ok := bytes.CutSuffix(line, []byte(" HTTP/1.1"))
	if !ok || !plainTarget(target) {
		return 0, false
	}
	hosts := 0
	for rest := head[eol+2:]; len(rest) > 0; {
		i := bytes.Index(rest, []byte("\r\n"))
		line, rest = rest[:i], rest[i+2:]
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || len(name) == 0 {
			return 0, false
		}
		for _, c := range name {
			if !httpguts.IsTokenRune(rune(c)) {
				return 0, false // includes obs-fold (leading space) and "Name :"
			}
		}
		for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
			value = value[1:]
		}
		for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
			value = value[:len(value)-1]
		}
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return 0, false // bare CR or LF, NUL, other controls
			}
		}
		switch {
		case len(name) == len("Host") && equalFold(name, "Host"):
			hosts++
			if len(value) == 0 || !validHost(value) {
				return 0, false
			}
		case len(name) == len("Connection") && equalFold(name, "Connection"):
			if !equalFold(value, "keep-alive") {
				return 0, false
			}
		case needsNetHTTP(name):
			return 0, false
		}
	}
	if hosts != 1 {
		return 0, false
	}
	return end + 4, true
}

// needsNetHTTP reports whether a request with header field name is left to
// net/http: framing, expectations, upgrades, hop-by-hop fields.
func needsNetHTTP(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "Te")
	case 6:
		return equalFold(name, "Expect")
	case 7:
		return equalFold(name, "Upgrade") || equalFold(name, "Trailer")
	case 10:
		return equalFold(name, "Keep-Alive")
	case 14:
		return equalFold(name, "Content-Length") || equalFold(name, "Http2-Settings")
	case 16:
		return equalFold(name, "Proxy-Connection")
	case 17:
		return equalFold(name, "Transfer-Encoding")
	}
	return false
}

// plainTarget accepts an origin-form target of visible ASCII without a
// fragment whose path has only well-formed percent escapes, so that
// http.ReadRequest cannot fail on it.
func plainTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	inPath := true
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c <= ' ' || c >= 0x7f || c == '#':
			return false
		case c == '?':
			inPath = false
		case c == '%' && inPath:
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validHost is httpguts.ValidHostHeader for bytes, without a conversion:
// letters, digits and !$%&'()*+,-.:;=[]_~ (TestValidHost compares them).
func validHost(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte("!$%&'()*+,-.:;=[]_~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

// equalFold reports whether b equals s ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
