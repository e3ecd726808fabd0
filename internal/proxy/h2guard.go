package proxy

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"golang.org/x/net/http2/hpack"
)

// HTTP/2 frame constants (RFC 9113 §4.1, §6).
const (
	h2FrameHeaderLen = 9
	h2PrefaceLen     = 24 // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

	h2FrameHeaders      = 0x1
	h2FrameSettings     = 0x4
	h2FrameContinuation = 0x9

	h2FlagAck        = 0x1
	h2FlagEndHeaders = 0x4
	h2FlagPadded     = 0x8
	h2FlagPriority   = 0x20

	// h2DecoderTableSize mirrors the server's SETTINGS_HEADER_TABLE_SIZE
	// (the default, 4096), so our HPACK decoder stays in step with the
	// server's.
	h2DecoderTableSize = 4096
)

// errH2Malformed is returned by Read after a client sent a request that
// RFC 9113 §8.2.2 calls malformed (connection-specific header fields, or TE
// other than "trailers"); the connection is closed (a stream error may be
// treated as a connection error, §5.4.1).
var errH2Malformed = errors.New("http2: malformed request: connection-specific header field")

// h2Guard sits between a TLS connection and the HTTP/2 server and fixes the
// two places where Go's server deviates from RFC 9113 (found by h2spec):
//
//   - a SETTINGS frame that repeats an identifier is valid (values apply in
//     order) but Go rejects it with PROTOCOL_ERROR; the guard rewrites such a
//     frame to hold only the last value of each identifier, which leaves the
//     same final state;
//   - a request with connection-specific header fields or a TE other than
//     "trailers" must be a stream error, but Go answers 400; the guard closes
//     the connection instead.
//
// It parses the client's frame stream: frame headers always, and the
// payloads of SETTINGS, HEADERS and CONTINUATION frames (mirroring the
// HPACK state with its own decoder). Other payloads stream through. Anything
// it cannot make sense of (oversized or malformed frames, HPACK errors) is
// passed through untouched and inspection stops, so the server reports the
// protocol error as it would without the guard.
type h2Guard struct {
	net.Conn // the TLS connection (a plain one in tests)
	log      *slog.Logger
	maxFrame uint32

	dec       *hpack.Decoder
	inspect   bool
	inHeaders bool
	bad       string // name of an offending header field, set by emit

	preface  int // preface bytes still to pass through
	passLeft int // payload bytes of a pass-through frame still to copy

	want  int    // bytes g.in must hold before process can go on (0 = any)
	rbuf  []byte // read buffer (nil while idle)
	in    []byte // unprocessed input (a window of rbuf or of a grown copy)
	out   []byte // processed bytes ready for the server
	obuf  []byte // backing store of out (nil while idle)
	first [16]byte
	err   error
}

// h2GuardBuf is the size of the guard's read and output buffers. They are
// taken from h2GuardBufs when a connection's bytes arrive and given back
// when everything read has been handed to the server, so that an idle
// HTTP/2 connection (the server's reader blocked in Read, most of a
// connection's life) holds neither: the wait reads into first.
const h2GuardBuf = 4096

var h2GuardBufs = sync.Pool{New: func() any { return new([h2GuardBuf]byte) }}

// takeBuffers gives the guard its read and output buffers.
func (g *h2Guard) takeBuffers() {
	if g.rbuf == nil {
		g.rbuf = h2GuardBufs.Get().(*[h2GuardBuf]byte)[:]
	}
	if g.obuf == nil {
		g.obuf = h2GuardBufs.Get().(*[h2GuardBuf]byte)[:0]
		g.out = g.obuf
	}
}

// releaseBuffers gives the buffers back; only when nothing is pending in
// them (g.in and g.out empty). A buffer grown for a large frame is left
// to the garbage collector.
func (g *h2Guard) releaseBuffers() {
	if cap(g.rbuf) == h2GuardBuf {
		h2GuardBufs.Put((*[h2GuardBuf]byte)(g.rbuf[:h2GuardBuf]))
	}
	if cap(g.obuf) == h2GuardBuf {
		h2GuardBufs.Put((*[h2GuardBuf]byte)(g.obuf[:h2GuardBuf]))
	}
	g.rbuf, g.in, g.obuf, g.out = nil, nil, nil, nil
}

// ConnectionState exposes the TLS state to the HTTP/2 server (it fills
// Request.TLS from it and checks the cipher suite).
func (g *h2Guard) ConnectionState() tls.ConnectionState {
	if tc, ok := g.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

func newH2Guard(c net.Conn, maxFrame uint32, log *slog.Logger) *h2Guard {
	g := &h2Guard{Conn: c, log: log, maxFrame: maxFrame, inspect: true, preface: h2PrefaceLen}
	g.dec = hpack.NewDecoder(h2DecoderTableSize, g.emit)
	g.dec.SetMaxStringLength(int(maxFrame) * 4)
	return g
}

// emit checks one decoded request header field.
func (g *h2Guard) emit(f hpack.HeaderField) {
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		g.bad = f.Name
	case "te":
		if f.Value != "trailers" && f.Value != "" {
			g.bad = "te"
		}
	}
}

// Read returns the client's bytes, with SETTINGS frames deduplicated.
func (g *h2Guard) Read(p []byte) (int, error) {
	// Fast path for bulk DATA: payload bytes that pass through go straight
	// into the caller's buffer.
	if len(g.out) == 0 && len(g.in) == 0 && g.passLeft > 0 && g.preface == 0 && g.err == nil {
		n, err := g.Conn.Read(p[:min(len(p), g.passLeft)])
		g.passLeft -= n
		return n, err
	}
	for len(g.out) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.out = g.obuf[:0]
		g.process()
		if len(g.out) == 0 && g.err == nil {
			g.fill()
		}
		g.obuf = g.out[:0] // keep the (possibly grown) buffer's start
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

// fill reads more input after the unprocessed bytes, growing the buffer to
// hold one whole frame if process is waiting for one. With nothing pending
// it gives the buffers back and waits in a read into g.first.
func (g *h2Guard) fill() {
	if len(g.in) == 0 && len(g.out) == 0 {
		g.releaseBuffers()
		m, err := g.Conn.Read(g.first[:])
		if m == 0 {
			if err != nil {
				g.err = err
			}
			return
		}
		g.takeBuffers()
		g.in = g.rbuf[:copy(g.rbuf, g.first[:m])]
		return
	}
	need := max(len(g.in)+1024, g.want, h2GuardBuf)
	if cap(g.rbuf) < need {
		g.rbuf = make([]byte, need)
	}
	n := copy(g.rbuf[:cap(g.rbuf)], g.in)
	m, err := g.Conn.Read(g.rbuf[n:cap(g.rbuf)])
	g.in = g.rbuf[:n+m]
	if m == 0 && err != nil {
		// Hand over whatever partial frame is left; the server decides.
		g.out = append(g.out, g.in...)
		g.in = nil
		g.err = err
	}
}

// process moves as much of g.in to g.out as can be decided now.
func (g *h2Guard) process() {
	for {
		if g.preface > 0 {
			n := min(g.preface, len(g.in))
			g.emitBytes(n)
			g.preface -= n
			if g.preface > 0 {
				return
			}
		}
		if g.passLeft > 0 {
			n := min(g.passLeft, len(g.in))
			g.emitBytes(n)
			g.passLeft -= n
			if g.passLeft > 0 {
				return
			}
		}
		if len(g.in) < h2FrameHeaderLen {
			return
		}
		length := uint32(g.in[0])<<16 | uint32(g.in[1])<<8 | uint32(g.in[2])
		typ, flags := g.in[3], g.in[4]
		if !g.inspect || length > g.maxFrame || (typ != h2FrameSettings && typ != h2FrameHeaders && typ != h2FrameContinuation) {
			g.emitBytes(h2FrameHeaderLen)
			g.passLeft = int(length)
			continue
		}
		total := h2FrameHeaderLen + int(length)
		if len(g.in) < total {
			g.want = total
			return // wait for the whole frame
		}
		g.want = 0
		frame := g.in[:total]
		switch typ {
		case h2FrameSettings:
			g.out = appendDedupedSettings(g.out, frame)
		default:
			if name := g.checkHeaders(typ, flags, frame[h2FrameHeaderLen:]); name != "" {
				g.err = fmt.Errorf("%w %q", errH2Malformed, name)
				g.log.Debug("closing HTTP/2 connection after a malformed request", "err", g.err,
					"peer", g.RemoteAddr().String())
				_ = g.Conn.Close()
				return
			}
			g.out = append(g.out, frame...)
		}
		g.in = g.in[total:]
	}
}

func (g *h2Guard) emitBytes(n int) {
	g.out = append(g.out, g.in[:n]...)
	g.in = g.in[n:]
}

// checkHeaders feeds a header block fragment to the HPACK mirror and
// returns the name of an offending field once the block is complete.
func (g *h2Guard) checkHeaders(typ, flags byte, frag []byte) string {
	if typ == h2FrameHeaders {
		if flags&h2FlagPadded != 0 {
			if len(frag) < 1 || int(frag[0]) > len(frag)-1 {
				g.inspect = false
				return ""
			}
			frag = frag[1 : len(frag)-int(frag[0])]
		}
		if flags&h2FlagPriority != 0 {
			if len(frag) < 5 {
				g.inspect = false
				return ""
			}
			frag = frag[5:]
		}
		g.inHeaders = true
		g.bad = ""
	} else if !g.inHeaders {
		g.inspect = false // CONTINUATION out of place: the server will say so
		return ""
	}
	if _, err := g.dec.Write(frag); err != nil {
		g.inspect = false
		return ""
	}
	if flags&h2FlagEndHeaders == 0 {
		return ""
	}
	g.inHeaders = false
	if err := g.dec.Close(); err != nil {
		g.inspect = false
		return ""
	}
	return g.bad
}

// appendDedupedSettings appends a SETTINGS frame in which each identifier
// appears once, with its last value, in order of last appearance. ACKs and
// malformed frames are appended unchanged.
func appendDedupedSettings(out, frame []byte) []byte {
	payload := frame[h2FrameHeaderLen:]
	if frame[4]&h2FlagAck != 0 || len(payload)%6 != 0 || binary.BigEndian.Uint32(frame[5:9])&0x7fffffff != 0 {
		return append(out, frame...)
	}
	n := len(payload) / 6
	dup := false
	for i := 0; i < n && !dup; i++ {
		for j := i + 1; j < n; j++ {
			if payload[i*6] == payload[j*6] && payload[i*6+1] == payload[j*6+1] {
				dup = true
				break
			}
		}
	}
	if !dup {
		return append(out, frame...)
	}
	start := len(out)
	out = append(out, frame[:h2FrameHeaderLen]...)
	kept := 0
	for i := 0; i < n; i++ {
		id := payload[i*6 : i*6+2]
		later := false
		for j := i + 1; j < n; j++ {
			if payload[j*6] == id[0] && payload[j*6+1] == id[1] {
				later = true
				break
			}
		}
		if !later {
			out = append(out, payload[i*6:i*6+6]...)
			kept++
		}
	}
	l := kept * 6
	out[start], out[start+1], out[start+2] = byte(l>>16), byte(l>>8), byte(l)
	return out
}
