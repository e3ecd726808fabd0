package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client is a raw HTTP/2 client speaking frames over TLS to the proxy.
type h2Client struct {
	t   *testing.T
	c   *tls.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func dialH2(t *testing.T, e *env) *h2Client {
	t.Helper()
	tc := e.clientTLS()
	tc.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", e.addr(), tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &h2Client{t: t, c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	return h
}

// block HPACK-encodes a GET for path plus extra fields.
func (h *h2Client) block(path string, extra ...hpack.HeaderField) []byte {
	h.buf.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "localhost"}, {Name: ":path", Value: path},
	}, extra...) {
		if err := h.enc.WriteField(f); err != nil {
			h.t.Fatal(err)
		}
	}
	return append([]byte(nil), h.buf.Bytes()...)
}

// result reads frames until stream 1 ends or the connection closes and
// reports the response status (0 if none), the DATA frame lengths seen and
// whether the connection was closed.
func (h *h2Client) result() (status string, dataLens []uint32, closed bool) {
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return status, dataLens, true
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			_, _ = dec.Write(f.HeaderBlockFragment())
			if f.StreamEnded() {
				return status, dataLens, false
			}
		case *http2.DataFrame:
			dataLens = append(dataLens, f.Header().Length)
			if f.Length > 0 {
				_ = h.fr.WriteWindowUpdate(0, f.Length)
				_ = h.fr.WriteWindowUpdate(1, f.Length)
			}
			if f.StreamEnded() {
				return status, dataLens, false
			}
		case *http2.GoAwayFrame:
			return status, dataLens, true
		case *http2.RSTStreamFrame:
			return status, dataLens, false
		}
	}
}

func TestH2GuardThroughProxy(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name       string
		send       func(h *h2Client)
		wantStatus string
		wantClosed bool
		check      func(t *testing.T, dataLens []uint32)
	}{
		{
			name: "plain request",
			send: func(h *h2Client) {
				_ = h.fr.WriteSettings()
				_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("/"), EndStream: true, EndHeaders: true})
			},
			wantStatus: "200",
		},
		{
			name: "repeated SETTINGS_INITIAL_WINDOW_SIZE applies the last value",
			send: func(h *h2Client) {
				_ = h.fr.WriteSettings()
				_ = h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100},
					http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
				_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("/"), EndStream: true, EndHeaders: true})
			},
			wantStatus: "200",
			check: func(t *testing.T, dataLens []uint32) {
				if len(dataLens) == 0 || dataLens[0] != 1 {
					t.Fatalf("first DATA lengths %v, want 1 (window of 1 byte)", dataLens)
				}
			},
		},
		{
			name: "header block split over CONTINUATION with padding and priority",
			send: func(h *h2Client) {
				_ = h.fr.WriteSettings()
				b := h.block("/split", hpack.HeaderField{Name: "x-long", Value: string(bytes.Repeat([]byte("v"), 300))})
				_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:10], EndStream: true,
					PadLength: 7, Priority: http2.PriorityParam{StreamDep: 0, Weight: 10}})
				_ = h.fr.WriteContinuation(1, false, b[10:100])
				_ = h.fr.WriteContinuation(1, true, b[100:])
			},
			wantStatus: "200",
		},
		{
			name: "connection header closes the connection",
			send: func(h *h2Client) {
				_ = h.fr.WriteSettings()
				_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
					BlockFragment: h.block("/", hpack.HeaderField{Name: "connection", Value: "keep-alive"})})
			},
			wantClosed: true,
		},
		{
			name: "TE other than trailers closes the connection",
			send: func(h *h2Client) {
				_ = h.fr.WriteSettings()
				_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
					BlockFragment: h.block("/", hpack.HeaderField{Name: "te", Value: "gzip"})})
			},
			wantClosed: true,
		},
		{
			name: "TE trailers is fine",
			send: func(h *h2Client) {
				_ = h.fr.WriteSettings()
				_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
					BlockFragment: h.block("/", hpack.HeaderField{Name: "te", Value: "trailers"})})
			},
			wantStatus: "200",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := dialH2(t, e)
			tt.send(h)
			status, dataLens, closed := h.result()
			if tt.wantClosed {
				if !closed {
					t.Fatalf("connection stayed open (status %q)", status)
				}
				return
			}
			if status != tt.wantStatus {
				t.Fatalf("status %q (closed %v), want %q", status, closed, tt.wantStatus)
			}
			if tt.check != nil {
				tt.check(t, dataLens)
			}
		})
	}
}

func TestAppendDedupedSettings(t *testing.T) {
	frame := func(flags byte, stream byte, entries ...[2]uint32) []byte {
		b := []byte{0, 0, byte(len(entries) * 6), h2FrameSettings, flags, 0, 0, 0, stream}
		for _, e := range entries {
			b = append(b, byte(e[0]>>8), byte(e[0]), byte(e[1]>>24), byte(e[1]>>16), byte(e[1]>>8), byte(e[1]))
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{name: "no duplicates unchanged", in: frame(0, 0, [2]uint32{4, 100}, [2]uint32{5, 16384}), want: frame(0, 0, [2]uint32{4, 100}, [2]uint32{5, 16384})},
		{name: "last value wins", in: frame(0, 0, [2]uint32{4, 100}, [2]uint32{4, 1}), want: frame(0, 0, [2]uint32{4, 1})},
		{name: "order of last appearance", in: frame(0, 0, [2]uint32{4, 1}, [2]uint32{3, 7}, [2]uint32{4, 2}), want: frame(0, 0, [2]uint32{3, 7}, [2]uint32{4, 2})},
		{name: "ack unchanged", in: frame(h2FlagAck, 0), want: frame(h2FlagAck, 0)},
		{name: "non-zero stream unchanged", in: frame(0, 1, [2]uint32{4, 1}, [2]uint32{4, 2}), want: frame(0, 1, [2]uint32{4, 1}, [2]uint32{4, 2})},
		{name: "bad length unchanged", in: []byte{0, 0, 5, h2FrameSettings, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5}, want: []byte{0, 0, 5, h2FrameSettings, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := appendDedupedSettings(nil, tt.in); !bytes.Equal(got, tt.want) {
				t.Fatalf("got % x\nwant % x", got, tt.want)
			}
		})
	}
}

// readerConn is a net.Conn whose reads come from a byte slice; the fuzz
// target uses it to drive the guard without a network.
type readerConn struct {
	net.Conn // nil: only Read and Close are used
	r        *bytes.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *readerConn) Close() error               { return nil }
func (c *readerConn) RemoteAddr() net.Addr       { return &net.TCPAddr{} }

// guardAll runs input (after the preface) through a guard, reading with
// small buffers to exercise partial reads.
func guardAll(in []byte) ([]byte, error) {
	g := newH2Guard(&readerConn{r: bytes.NewReader(append([]byte(http2.ClientPreface), in...))}, 16<<10, slog.New(slog.DiscardHandler))
	var out bytes.Buffer
	buf := make([]byte, 7)
	for {
		n, err := g.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out.Bytes()[len(http2.ClientPreface):], err
		}
	}
}

func FuzzH2Guard(f *testing.F) {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	_ = enc.WriteField(hpack.HeaderField{Name: ":path", Value: "/"})
	_ = enc.WriteField(hpack.HeaderField{Name: "te", Value: "gzip"})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: false, PadLength: 3})
	_ = fr.WriteContinuation(1, true, []byte{0x82})
	_ = fr.WriteData(1, true, []byte("hello"))
	f.Add(b.Bytes())
	f.Add([]byte{0, 0, 0, h2FrameSettings, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, h2FrameHeaders, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		out, err := guardAll(in)
		if err != nil {
			if !errors.Is(err, errH2Malformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(out) > len(in) {
			t.Fatalf("guard grew the stream: %d > %d", len(out), len(in))
		}
		// Deduplication is idempotent: a second pass changes nothing.
		again, err := guardAll(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second pass differs (err %v)", err)
		}
	})
}

// waitConn serves reads from r and, each time r is drained, calls onWait
// on the reading goroutine before answering io.EOF: the point where a real
// connection would block for the client's next bytes.
type waitConn struct {
	readerConn
	onWait func(p []byte)
}

func (c *waitConn) Read(p []byte) (int, error) {
	if c.r.Len() == 0 {
		c.onWait(p)
	}
	return c.r.Read(p)
}

// TestH2GuardIdleHoldsNoBuffers checks that a guard waiting for the
// client's next bytes holds no buffer once it has handed everything to the
// server, and keeps them while a frame is still incomplete.
func TestH2GuardIdleHoldsNoBuffers(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&b, nil)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	var hb bytes.Buffer
	_ = hpack.NewEncoder(&hb).WriteField(hpack.HeaderField{Name: ":path", Value: "/"})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	whole := b.Bytes()

	for _, tt := range []struct {
		name string
		in   []byte
		idle bool // nothing pending at the wait
	}{
		{name: "whole frames", in: whole, idle: true},
		{name: "cut in a frame", in: whole[:len(whole)-2], idle: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var g *h2Guard
			waits := 0
			c := &waitConn{readerConn: readerConn{r: bytes.NewReader(tt.in)}}
			c.onWait = func(p []byte) {
				waits++
				held := g.rbuf != nil || g.obuf != nil
				if tt.idle && (held || len(p) > len(g.first)) {
					t.Errorf("idle guard holds buffers (read %d, out %d) and waits with a %d-byte read", cap(g.rbuf), cap(g.obuf), len(p))
				}
				if !tt.idle && (!held || len(g.in) == 0) {
					t.Errorf("guard with a partial frame pending gave its buffers back")
				}
			}
			g = newH2Guard(c, 16<<10, slog.New(slog.DiscardHandler))
			got, err := io.ReadAll(g)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.in) {
				t.Fatalf("guard changed the stream:\ngot  % x\nwant % x", got, tt.in)
			}
			if waits == 0 {
				t.Fatal("the guard never waited for more input")
			}
		})
	}
}

// burstConn returns one burst per Read, as crypto/tls returns one record:
// the same burst, bursts times.
type burstConn struct {
	readerConn
	burst []byte
	left  int
	cur   []byte
}

func (c *burstConn) Read(p []byte) (int, error) {
	if len(c.cur) == 0 {
		if c.left == 0 {
			return 0, io.EOF
		}
		c.left--
		c.cur = c.burst
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// BenchmarkH2GuardBursts reads, as the HTTP/2 server's framer does (a
// 9-byte header, then the payload), bursts of ten HEADERS frames (an
// h2load-like client with ten streams in flight) through the guard. The
// guard gives its buffers back after each burst.
func BenchmarkH2GuardBursts(b *testing.B) {
	var burst bytes.Buffer
	fr := http2.NewFramer(&burst, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := range 10 {
		hb.Reset()
		for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: "127.0.0.1:8443"}, {Name: ":path", Value: "/1k"}, {Name: "user-agent", Value: "h2load nghttp2/1.52.0"}} {
			_ = enc.WriteField(f)
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	}
	const bursts = 1000
	pre := []byte(http2.ClientPreface)
	hdr := make([]byte, 9)
	payload := make([]byte, 16<<10)
	b.ReportAllocs()
	b.SetBytes(int64(burst.Len() * bursts))
	for b.Loop() {
		c := &burstConn{burst: burst.Bytes(), left: bursts}
		c.cur = pre
		g := newH2Guard(c, 16<<10, slog.New(slog.DiscardHandler))
		if _, err := io.ReadFull(g, make([]byte, len(pre))); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := io.ReadFull(g, hdr); err != nil {
				break
			}
			n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
			if _, err := io.ReadFull(g, payload[:n]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
