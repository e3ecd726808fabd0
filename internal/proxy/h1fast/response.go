package h1fast

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// response is the http.ResponseWriter of one request. It follows net/http's
// response and chunkWriter (Go 1.26) rule for rule, for HTTP/1.1 requests
// without a body; where the header can be fixed at WriteHeader without
// changing a byte of the output (see eager), it is written at once instead
// of being cloned and written at the first flush.
type response struct {
	c             *conn
	req           *http.Request
	isHEAD        bool
	handlerHeader http.Header
	snapshot      http.Header // the header as of WriteHeader, if Header was called before
	calledHeader  bool
	wroteHeader   bool // WriteHeader was called with a final status
	sentHeader    bool // the header is in the connection's buffer
	handlerDone   bool
	chunking      bool
	closeAfter    bool
	status        int
	contentLength int64 // -1 = unknown
	written       int64
	trailers      []string
	w             *bufio.Writer // the 2048-byte buffer in front of the chunk writer; nil until needed
	cw            chunkWriter
	facts         hdrFacts // of the header WriteHeader saw (eager) or of the snapshot
	kvArr         [16]keyValues
	scratch       [32]byte
	clenBuf       [20]byte
}

// keyValues is one header field as it will be written.
type keyValues struct {
	key      string
	values   []string
	excluded bool
}

// hdrFacts is what writing a response header needs to know about it,
// gathered in one pass: the fields in sorted order and the values that
// decide the framing.
type hdrFacts struct {
	kvs                 []keyValues
	haveType, hasCL     bool
	hasDate, hasTrailer bool // Date present; Trailer present or TrailerPrefix keys
	te, ce, conn, cl    string
	trailerDecl         []string // values of Trailer
}

// scan gathers the facts of h, sorted as Header.WriteSubset sorts.
func (w *response) scan(h http.Header) {
	f := hdrFacts{kvs: w.kvArr[:0]}
	for k, vv := range h {
		f.kvs = append(f.kvs, keyValues{key: k, values: vv})
		switch k {
		case "Content-Type":
			f.haveType = true
		case "Content-Length":
			f.hasCL = true
			f.cl = first(vv)
		case "Date":
			f.hasDate = true
		case "Transfer-Encoding":
			f.te = first(vv)
		case "Content-Encoding":
			f.ce = first(vv)
		case "Connection":
			f.conn = first(vv)
		case "Trailer":
			f.hasTrailer = true
			f.trailerDecl = vv
		default:
			if strings.HasPrefix(k, http.TrailerPrefix) {
				f.hasTrailer = true
			}
		}
	}
	if len(f.kvs) > 1 {
		slices.SortFunc(f.kvs, func(a, b keyValues) int { return strings.Compare(a.key, b.key) })
	}
	w.facts = f
}

func first(vv []string) string {
	if len(vv) > 0 {
		return vv[0]
	}
	return ""
}

// bufferBeforeChunking is net/http's buffer in front of the chunk writer: a
// body that ends within it gets a Content-Length instead of chunking.
const bufferBeforeChunking = 2048

var bodyBufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufferBeforeChunking) }}

var (
	excludedHeadersNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}
	errBodyNotAllowed     = http.ErrBodyNotAllowed
	errContentLength      = http.ErrContentLength
)

func (w *response) reset(c *conn, req *http.Request, hdr http.Header) {
	*w = response{c: c, req: req, isHEAD: req.Method == http.MethodHead, handlerHeader: hdr, contentLength: -1}
	w.cw.res = w
}

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header {
	if w.snapshot == nil && w.wroteHeader && !w.sentHeader {
		w.snapshot = w.handlerHeader.Clone()
	}
	w.calledHeader = true
	return w.handlerHeader
}

// WriteHeader implements http.ResponseWriter.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		w.c.s.logf("http: superfluous response.WriteHeader call")
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	bw := w.c.bw
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		writeStatusLine(bw, code, w.scratch[:])
		_ = w.handlerHeader.WriteSubset(bw, excludedHeadersNoBody)
		bw.WriteString("\r\n")
		_ = bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	badCL := false
	if cl := get(w.handlerHeader, "Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			badCL = true
		}
	}
	if !badCL {
		w.scan(w.handlerHeader)
		if w.eager() {
			// Nothing the header depends on can change before the
			// first flush: write it now, which also spares net/http's
			// clone.
			w.cw.writeHeader(nil)
			return
		}
	}
	if w.calledHeader {
		w.snapshot = w.handlerHeader.Clone()
	}
	if badCL {
		w.c.s.logf("http: invalid Content-Length of %q", get(w.handlerHeader, "Content-Length"))
		w.handlerHeader.Del("Content-Length")
	}
	w.facts = hdrFacts{}
}

// eager reports whether the header written now is byte for byte the one
// net/http would write at the first flush: no Content-Type to sniff from
// the body, no Content-Length to compute from it. It needs scan's facts.
func (w *response) eager() bool {
	f := &w.facts
	bodyOK := bodyAllowedForStatus(w.status)
	hasTE := f.te != ""
	if bodyOK && !f.haveType && f.ce == "" && !hasTE {
		return false // Content-Type may be sniffed
	}
	if !f.hasTrailer && !hasTE && bodyOK && !f.hasCL {
		return false // Content-Length may be computed
	}
	return true
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, errBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, errContentLength
	}
	if w.sentHeader && !w.chunking && w.w == nil {
		// Plain body after an eager header: the buffer in front of the
		// chunk writer would not change a byte.
		return w.cw.Write(p)
	}
	return w.bodyWriter().Write(p)
}

func (w *response) bodyWriter() *bufio.Writer {
	if w.w == nil {
		w.w = bodyBufPool.Get().(*bufio.Writer)
		w.w.Reset(&w.cw)
	}
	return w.w
}

// FlushError sends what was written so far to the client.
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var err error
	if w.w != nil {
		err = w.w.Flush()
	}
	return errors.Join(err, w.cw.flush())
}

// Flush implements http.Flusher.
func (w *response) Flush() { _ = w.FlushError() }

// finish completes the response after the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.w != nil {
		_ = w.w.Flush()
		w.w.Reset(nil)
		bodyBufPool.Put(w.w)
		w.w = nil
	}
	w.cw.close()
	_ = w.c.bw.Flush()
}

// release returns the body buffer after a handler panic.
func (w *response) release() {
	if w.w != nil {
		w.w.Reset(nil)
		bodyBufPool.Put(w.w)
		w.w = nil
	}
}

// reusable reports whether the connection can serve another request.
func (w *response) reusable() bool {
	if w.closeAfter {
		return false
	}
	if !w.isHEAD && w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.contentLength != w.written {
		return false
	}
	return w.c.werr == nil
}

func (w *response) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if !httpguts.ValidTrailerHeader(k) {
		return
	}
	w.trailers = append(w.trailers, k)
}

func (w *response) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.handlerHeader {
		if kk, found := strings.CutPrefix(k, http.TrailerPrefix); found {
			if t == nil {
				t = make(http.Header)
			}
			t[kk] = vv
		}
	}
	for _, k := range w.trailers {
		if t == nil {
			t = make(http.Header)
		}
		for _, v := range w.handlerHeader[k] {
			t.Add(k, v)
		}
	}
	return t
}

// chunkWriter writes the header before the first body bytes and frames the
// body (chunked or as is) into the connection's buffer.
type chunkWriter struct {
	res *response
}

func (cw *chunkWriter) Write(p []byte) (int, error) {
	w := cw.res
	if !w.sentHeader {
		cw.writeHeader(p)
	}
	if w.isHEAD {
		return len(p), nil // eat writes
	}
	bw := w.c.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(w.scratch[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunking && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		_ = w.c.nc.Close()
	}
	return n, err
}

func (cw *chunkWriter) flush() error {
	if !cw.res.sentHeader {
		cw.writeHeader(nil)
	}
	return cw.res.c.bw.Flush()
}

func (cw *chunkWriter) close() {
	w := cw.res
	if !w.sentHeader {
		cw.writeHeader(nil)
	}
	if w.chunking {
		bw := w.c.bw
		bw.WriteString("0\r\n")
		if t := w.finalTrailers(); t != nil {
			_ = t.Write(bw)
		}
		bw.WriteString("\r\n")
	}
}

// writeHeader decides the framing and writes the status line and header;
// p is the start of the body (for sniffing and, once the handler is done,
// its length).
func (cw *chunkWriter) writeHeader(p []byte) {
	w := cw.res
	if w.sentHeader {
		return
	}
	w.sentHeader = true
	keepAlives := w.c.s.doKeepAlives()

	// The header written is net/http's snapshot if one was taken, else the
	// live header (unchanged since WriteHeader scanned it, or empty
	// because the handler never asked for it).
	if w.snapshot != nil || w.facts.kvs == nil {
		h := w.snapshot
		if h == nil {
			h = w.handlerHeader
		}
		w.scan(h)
	}
	f := &w.facts
	del := func(key string) {
		for i := range f.kvs {
			if f.kvs[i].key == key {
				f.kvs[i].excluded = true
			}
		}
	}
	var extra extraHeader

	trailers := false
	for i := range f.kvs {
		if strings.HasPrefix(f.kvs[i].key, http.TrailerPrefix) {
			f.kvs[i].excluded = true
			trailers = true
		}
	}
	for _, v := range f.trailerDecl {
		trailers = true
		foreachHeaderElement(v, w.declareTrailer)
	}

	te := f.te
	hasTE := te != ""
	if w.handlerDone && !trailers && !hasTE && bodyAllowedForStatus(w.status) && !f.hasCL && (!w.isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		extra.contentLength = strconv.AppendInt(w.clenBuf[:0], int64(len(p)), 10)
	}
	hasCL := w.contentLength != -1
	if f.conn == "close" || !keepAlives {
		w.closeAfter = true
	}
	code := w.status
	if bodyAllowedForStatus(code) {
		if f.ce == "" && !f.haveType && !hasTE && len(p) > 0 {
			extra.contentType = http.DetectContentType(p)
		}
	} else {
		del("Content-Length")
		del("Transfer-Encoding")
		if code == http.StatusNotModified {
			del("Content-Type")
		}
	}
	extra.date = !f.hasDate
	if hasCL && hasTE && te != "identity" {
		w.c.s.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.contentLength)
		del("Content-Length")
		hasCL = false
	}
	switch {
	case w.isHEAD || !bodyAllowedForStatus(code) || code == http.StatusNoContent:
		del("Transfer-Encoding")
	case hasCL:
		del("Transfer-Encoding")
	case hasTE && te == "identity":
		w.chunking = false
		w.closeAfter = true
		del("Transfer-Encoding")
	default:
		w.chunking = true
		extra.transferEncoding = "chunked"
		if hasTE && te == "chunked" {
			del("Transfer-Encoding")
		}
	}
	if w.chunking {
		del("Content-Length")
	}
	if w.closeAfter && (!keepAlives || !hasToken(f.conn, "close")) && !(code == http.StatusSwitchingProtocols && isProtocolSwitch(code, w.handlerHeader)) {
		del("Connection")
		extra.connection = "close"
	}

	bw := w.c.bw
	writeStatusLine(bw, code, w.scratch[:])
	writeFields(bw, f.kvs)
	extra.write(bw)
	bw.WriteString("\r\n")
}

// hasCRLF reports whether v contains CR or LF (strings.ContainsAny builds
// a set on every call).
func hasCRLF(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return true
		}
	}
	return false
}

// writeFields writes sorted header fields as Header.WriteSubset does:
// invalid names dropped, CR and LF in values turned into spaces, values
// trimmed.
func writeFields(bw *bufio.Writer, kvs []keyValues) {
	for _, kv := range kvs {
		if kv.excluded || !httpguts.ValidHeaderFieldName(kv.key) {
			continue
		}
		for _, v := range kv.values {
			if hasCRLF(v) {
				b := []byte(v)
				for i, c := range b {
					if c == '\r' || c == '\n' {
						b[i] = ' '
					}
				}
				v = string(b)
			}
			v = textproto.TrimString(v)
			bw.WriteString(kv.key)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
}

// extraHeader are the headers the server adds, written in net/http's order.
type extraHeader struct {
	date             bool
	contentLength    []byte
	contentType      string
	connection       string
	transferEncoding string
}

func (h *extraHeader) write(bw *bufio.Writer) {
	if h.date {
		bw.WriteString("Date: ")
		var buf [len(http.TimeFormat)]byte
		bw.Write(time.Now().UTC().AppendFormat(buf[:0], http.TimeFormat))
		bw.WriteString("\r\n")
	}
	if h.contentLength != nil {
		bw.WriteString("Content-Length: ")
		bw.Write(h.contentLength)
		bw.WriteString("\r\n")
	}
	for _, kv := range [...][2]string{{"Content-Type", h.contentType}, {"Connection", h.connection}, {"Transfer-Encoding", h.transferEncoding}} {
		if kv[1] != "" {
			bw.WriteString(kv[0])
			bw.WriteString(": ")
			bw.WriteString(kv[1])
			bw.WriteString("\r\n")
		}
	}
}

func writeStatusLine(bw *bufio.Writer, code int, scratch []byte) {
	bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		bw.Write(strconv.AppendInt(scratch[:0], int64(code), 10))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
		return
	}
	fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

// get looks a canonical key up exactly, as net/http does internally.
func get(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func isProtocolSwitch(code int, h http.Header) bool {
	return code == http.StatusSwitchingProtocols && h.Get("Upgrade") != "" &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
}

// foreachHeaderElement calls fn for each non-empty element of the
// comma-separated list v.
func foreachHeaderElement(v string, fn func(string)) {
	v = textproto.TrimString(v)
	if v == "" {
		return
	}
	if !strings.Contains(v, ",") {
		fn(v)
		return
	}
	for f := range strings.SplitSeq(v, ",") {
		if f = textproto.TrimString(f); f != "" {
			fn(f)
		}
	}
}

// hasToken reports whether token occurs in v delimited by the start or end
// of v, space, tab or comma, ignoring ASCII case.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	boundary := func(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if sp > 0 && !boundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end < len(v) && !boundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}
