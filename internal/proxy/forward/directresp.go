package forward

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The direct path's fast response parser. Most app responses are of one
// plain shape: "HTTP/1.1 200 OK", a Content-Length, a handful of ordinary
// headers, all already in the read buffer. parseSimpleResponse handles
// exactly that shape with three allocations (one string for the header
// block, one backing array for the values, the map entries) instead of
// http.ReadResponse's dozen, and writes the headers straight into the
// client's response header map. Anything else — chunked or close-delimited
// bodies, HEAD, 1xx/204/304, HTTP/1.0, Connection options, obsolete line
// folding, invalid or duplicate framing headers, a header block not yet
// fully buffered — is left untouched in the buffer for http.ReadResponse,
// which stays the reference (FuzzParseSimpleResponse checks the two agree).

// maxSimpleContentLength keeps the Content-Length digits well inside int64.
const maxSimpleContentLengthDigits = 18

// fixedBody reads exactly n bytes of a Content-Length body from br. Unlike
// io.LimitedReader it reports a connection that ends early as
// io.ErrUnexpectedEOF, so a truncated body is never taken for a whole one.
type fixedBody struct {
	br *bufio.Reader
	n  int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if err == io.EOF && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && b.n == 0 {
		err = io.EOF
	}
	return n, err
}

func (b *fixedBody) Close() error { return nil }

// parseSimpleResponse parses a response header that is entirely in br and
// of the simple shape described above, adds its end-to-end headers to dst
// and consumes it, leaving br at the body. It returns ok=false, with br
// untouched and dst unchanged, for anything else.
func parseSimpleResponse(br *bufio.Reader, method string, dst http.Header, body *fixedBody) (status int, contentLength int64, ok bool) {
	if method == http.MethodHead || br.Buffered() == 0 {
		return 0, 0, false
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, 0, false
	}
	block := buf[:end+2] // each line ends in CRLF
	// Status line: exactly "HTTP/1.1 NNN" then end of line or " reason".
	const proto = "HTTP/1.1 "
	if len(block) < len(proto)+3+2 || string(block[:len(proto)]) != proto {
		return 0, 0, false
	}
	for _, c := range block[len(proto) : len(proto)+3] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		status = status*10 + int(c-'0')
	}
	if status < 200 || status == http.StatusNoContent || status == http.StatusNotModified || status > 599 {
		return 0, 0, false
	}
	eol := bytes.Index(block, []byte("\r\n"))
	if rest := block[len(proto)+3 : eol]; len(rest) > 0 && (rest[0] != ' ' || !validReason(rest)) {
		return 0, 0, false
	}
	lines := block[eol+2:]

	// First pass: validate and find the framing; nothing is allocated.
	n := 0
	contentLength = -1
	for l := lines; len(l) > 0; {
		i := bytes.Index(l, []byte("\r\n"))
		line := l[:i]
		l = l[i+2:]
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || len(name) == 0 || !validFieldName(name) {
			return 0, 0, false // includes obs-fold (leading space) and bare CR/LF
		}
		for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
			value = value[1:]
		}
		for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
			value = value[:len(value)-1]
		}
		if !validFieldValue(value) {
			return 0, 0, false
		}
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if contentLength >= 0 || len(value) == 0 || len(value) > maxSimpleContentLengthDigits {
				return 0, 0, false
			}
			var v int64
			for _, c := range value {
				if c < '0' || c > '9' {
					return 0, 0, false
				}
				v = v*10 + int64(c-'0')
			}
			contentLength = v
		case asciiEqualFold(name, "Connection"):
			if !asciiEqualFold(value, "keep-alive") {
				return 0, 0, false // close, or options naming headers to drop
			}
			continue
		case asciiEqualFold(name, "Keep-Alive"):
			continue // hop-by-hop
		case asciiEqualFold(name, "Transfer-Encoding"), asciiEqualFold(name, "Trailer"),
			asciiEqualFold(name, "Upgrade"), asciiEqualFold(name, "Te"),
			asciiEqualFold(name, "Proxy-Connection"), asciiEqualFold(name, "Proxy-Authenticate"),
			asciiEqualFold(name, "Proxy-Authorization"):
			return 0, 0, false
		}
		n++
	}
	if contentLength < 0 {
		return 0, 0, false
	}

	// Second pass: one string for the block, one array for the values.
	s := string(lines)
	vals := make([]string, n)
	for len(s) > 0 {
		i := strings.Index(s, "\r\n")
		line := s[:i]
		s = s[i+2:]
		name, value, _ := strings.Cut(line, ":")
		if len(name) == len("Keep-Alive") && (strings.EqualFold(name, "Keep-Alive") || strings.EqualFold(name, "Connection")) {
			continue
		}
		key := http.CanonicalHeaderKey(name) // no allocation when already canonical
		for value != "" && (value[0] == ' ' || value[0] == '\t') {
			value = value[1:]
		}
		for value != "" && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
			value = value[:len(value)-1]
		}
		vals[0] = value
		if prior, dup := dst[key]; dup {
			dst[key] = append(prior, vals[0]) // prior is capped: this copies
		} else {
			dst[key] = vals[0:1:1]
		}
		vals = vals[1:]
	}
	_, _ = br.Discard(end + 4)
	*body = fixedBody{br: br, n: contentLength}
	return status, contentLength, true
}

// asciiEqualFold reports whether b equals s ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
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

func validFieldName(b []byte) bool {
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// validFieldValue accepts visible ASCII, obs-text, space and tab (RFC 9110
// field-value), the same set net/http lets through.
func validFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validReason checks the status line after the code: " reason-phrase".
func validReason(b []byte) bool { return validFieldValue(b) }
