package h1guard

import "bytes"

// Reasons a request is refused. They are stable: callers use them as a metric
// label.
const (
	ReasonTEAndCL     = "te_and_cl"    // both Transfer-Encoding and Content-Length
	ReasonDuplicateCL = "duplicate_cl" // two Content-Length fields, even with equal values
	ReasonObsFold     = "obs_fold"     // a header line starting with SP or HTAB
	ReasonBadTE       = "bad_te"       // Transfer-Encoding other than exactly one "chunked"
	ReasonBadCL       = "bad_cl"       // Content-Length not a plain decimal number
	ReasonBareLF      = "bare_lf"      // LF not preceded by CR in the header block
	ReasonBareCR      = "bare_cr"      // CR not followed by LF in the header block
	ReasonBadHeader   = "bad_header"   // whitespace inside a field name ("Name : v")
	ReasonBadChunk    = "bad_chunk"    // malformed chunked framing
)

// Scanner states. The scanner is a byte-at-a-time state machine; long runs
// (body bytes) are skipped in one step.
const (
	stReqLine     uint8 = iota // in the request-line
	stLeadCR                   // CR of an empty line before the request-line
	stReqLineCR                // CR ending the request-line seen
	stLineStart                // at the start of a field line (headers or trailers)
	stName                     // in a field name
	stValue                    // in a field value
	stValueCR                  // CR ending a field line seen
	stEndCR                    // CR of the empty line ending the section seen
	stBody                     // skipping a Content-Length body
	stChunkSize                // in a chunk-size
	stChunkWS                  // whitespace after a chunk-size
	stChunkExt                 // in chunk extensions
	stChunkSizeCR              // CR ending a chunk-size line seen
	stChunkData                // skipping chunk data
	stChunkDataCR              // expecting CR after chunk data
	stChunkDataLF              // expecting LF after chunk data
	stPass                     // no longer scanning: tunnel or oversized header
)

// Field kinds the scanner tracks, as bits in a candidate mask while a name is
// being read.
const (
	fieldCL uint8 = 1 << iota
	fieldTE
	fieldUpgrade
	fieldAll = fieldCL | fieldTE | fieldUpgrade
)

var fieldNames = [...]string{"content-length", "transfer-encoding", "upgrade"}

const chunked = "chunked"

// scanner tracks HTTP/1.1 request framing over a byte stream. Its zero value
// (with limit set) is ready at the start of a request. It never allocates.
type scanner struct {
	limit   int // header bytes after which scanning stops (net/http answers 431)
	hdr     int // header bytes seen in this request
	st      uint8
	method  uint8 // candidate tunnel methods still matching the request-line
	cand    uint8 // candidate field names still matching the current name
	field   uint8 // field of the current line (0: untracked)
	nameLen int
	val     uint8 // value sub-state: 0 leading OWS, 1 in token, 2 trailing OWS
	valIdx  int
	seenCL  bool
	seenTE  bool
	tunnel  bool   // CONNECT, PRI or Upgrade: pass through after the header block
	tail    uint64 // the last 8 bytes of the request-line, for its version
	http10  bool   // the request-line ends with HTTP/1.0
	after   int    // bytes passed through after a tunnel's header block
	trailer bool   // reading the trailer section of a chunked body
	clen    uint64
	remain  uint64 // bytes of body or chunk data left to skip
	digits  int
	// hijackAware: net/http reports connection states to the guard
	// (ConnState hook), so an Upgrade request need not switch scanning off:
	// the guard stops scanning when the handler hijacks the connection, and
	// a refused upgrade leaves the next request scanned as usual.
	hijackAware bool
}

// Tunnel methods: after their header block the bytes may not be HTTP/1.
// The HTTP/2 preface must match in full: net/http treats any other PRI
// request as an ordinary one, which must not switch scanning off.
var tunnelMethods = [...]string{"CONNECT ", "PRI * HTTP/2.0"}

// http10 is "HTTP/1.0" as the big-endian uint64 of scanner.tail.
const http10 = 0x485454502f312e30

const maxContentLength = 1<<63 - 1

// reset prepares the scanner for the next request on the connection.
func (s *scanner) reset() {
	*s = scanner{limit: s.limit, hijackAware: s.hijackAware}
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// scan consumes b. It returns the index of the first byte that violates the
// rules with the reason, or len(b) and "".
func (s *scanner) scan(b []byte) (int, string) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if s.st < stBody {
			s.hdr++
			if s.hdr > s.limit {
				// net/http refuses this with 431; do not duplicate it.
				s.st = stPass
				return len(b), ""
			}
		}
		switch s.st {
		case stReqLine:
			if s.hdr == 1 {
				s.method = 1<<len(tunnelMethods) - 1
				switch c {
				case '\r':
					s.st = stLeadCR
					continue
				case '\n':
					return i, ReasonBareLF
				}
			}
			switch c {
			case '\r':
				s.st = stReqLineCR
				continue
			case '\n':
				return i, ReasonBareLF
			}
			s.tail = s.tail<<8 | uint64(c)
			if s.method != 0 {
				s.matchMethod(c)
				continue
			}
			start := i
			if i = s.skipLine(b, i); s.st == stPass {
				return len(b), ""
			}
			for k := max(start+1, i-7); k <= i; k++ {
				s.tail = s.tail<<8 | uint64(b[k])
			}
		case stLeadCR:
			if c != '\n' {
				return i, ReasonBareCR
			}
			// RFC 9112 §2.2: empty lines before a request-line are ignored.
			s.st, s.hdr = stReqLine, 0
		case stReqLineCR:
			if c != '\n' {
				return i, ReasonBareCR
			}
			s.http10 = s.tail == http10
			s.st = stLineStart
		case stLineStart:
			switch c {
			case '\r':
				s.st = stEndCR
			case '\n':
				return i, ReasonBareLF
			case ' ', '\t':
				return i, ReasonObsFold
			default:
				s.st, s.field, s.nameLen = stName, 0, 0
				s.cand = fieldAll
				if s.trailer {
					s.cand = 0
				}
				s.matchName(c)
			}
		case stName:
			switch c {
			case ':':
				if r := s.endName(); r != "" {
					return i, r
				}
				s.st = stValue
			case ' ', '\t':
				return i, ReasonBadHeader
			case '\r':
				// A line without a colon: net/http refuses it.
				s.field = 0
				s.st = stValueCR
			case '\n':
				return i, ReasonBareLF
			default:
				s.matchName(c)
			}
		case stValue:
			switch c {
			case '\r':
				s.st = stValueCR
			case '\n':
				return i, ReasonBareLF
			default:
				if s.field == 0 {
					// Untracked value: jump to its end.
					if i = s.skipLine(b, i); s.st == stPass {
						return len(b), ""
					}
				} else if r := s.value(c); r != "" {
					return i, r
				}
			}
		case stValueCR:
			if c != '\n' {
				return i, ReasonBareCR
			}
			if r := s.endValue(); r != "" {
				return i, r
			}
			s.st = stLineStart
		case stEndCR:
			if c != '\n' {
				return i, ReasonBareCR
			}
			s.endSection()
			if s.st == stPass {
				s.after = len(b) - i - 1
				return len(b), ""
			}
		case stBody, stChunkData:
			n := uint64(len(b) - i)
			if n > s.remain {
				n = s.remain
			}
			s.remain -= n
			i += int(n) - 1
			if s.remain == 0 {
				if s.st == stBody {
					s.reset()
				} else {
					s.st = stChunkDataCR
				}
			}
		case stChunkSize:
			if r := s.chunkSize(c); r != "" {
				return i, r
			}
		case stChunkWS:
			switch {
			case isOWS(c):
			case c == ';':
				s.st = stChunkExt
			case c == '\r':
				s.st = stChunkSizeCR
			default:
				return i, ReasonBadChunk
			}
		case stChunkExt:
			switch c {
			case '\r':
				s.st = stChunkSizeCR
			case '\n':
				return i, ReasonBadChunk
			}
		case stChunkSizeCR:
			if c != '\n' {
				return i, ReasonBadChunk
			}
			if s.remain == 0 {
				s.trailer = true
				s.st = stLineStart
			} else {
				s.st = stChunkData
			}
		case stChunkDataCR:
			if c != '\r' {
				return i, ReasonBadChunk
			}
			s.st = stChunkDataLF
		case stChunkDataLF:
			if c != '\n' {
				return i, ReasonBadChunk
			}
			s.st, s.remain, s.digits = stChunkSize, 0, 0
		case stPass:
			return len(b), ""
		}
	}
	return len(b), ""
}

// skipLine advances over the bytes of a line that need no inspection, from
// b[i] (already counted) to just before the next CR or LF, which the caller's
// loop then handles. It returns the index of the last byte skipped.
func (s *scanner) skipLine(b []byte, i int) int {
	rest := b[i+1:]
	j := bytes.IndexByte(rest, '\r')
	if j < 0 {
		j = len(rest)
	}
	if k := bytes.IndexByte(rest[:j], '\n'); k >= 0 {
		j = k
	}
	s.hdr += j
	if s.hdr > s.limit {
		s.st = stPass
	}
	return i + j
}

func (s *scanner) matchMethod(c byte) {
	pos := s.hdr - 1
	for k, m := range tunnelMethods {
		bit := uint8(1) << k
		if s.method&bit == 0 {
			continue
		}
		if pos >= len(m) || m[pos] != c {
			s.method &^= bit
			continue
		}
		if pos == len(m)-1 {
			s.tunnel = true
			s.method = 0
			return
		}
	}
}

func (s *scanner) matchName(c byte) {
	if s.cand != 0 {
		c = lower(c)
		for k, n := range fieldNames {
			bit := uint8(1) << k
			if s.cand&bit != 0 && (s.nameLen >= len(n) || n[s.nameLen] != c) {
				s.cand &^= bit
			}
		}
	}
	s.nameLen++
}

// endName resolves the field at the colon and checks for conflicts.
func (s *scanner) endName() string {
	s.field = 0
	for k, n := range fieldNames {
		bit := uint8(1) << k
		if s.cand&bit != 0 && s.nameLen == len(n) {
			s.field = bit
		}
	}
	s.val, s.valIdx = 0, 0
	switch s.field {
	case fieldCL:
		if s.seenCL {
			return ReasonDuplicateCL
		}
		if s.seenTE {
			return ReasonTEAndCL
		}
		s.seenCL = true
	case fieldTE:
		// RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means
		// faulty framing (net/http ignores it and uses Content-Length).
		if s.seenTE || s.http10 {
			return ReasonBadTE
		}
		if s.seenCL {
			return ReasonTEAndCL
		}
		s.seenTE = true
	case fieldUpgrade:
		if !s.hijackAware {
			s.tunnel = true
		}
	}
	return ""
}

// value checks one byte of a Content-Length or Transfer-Encoding value.
func (s *scanner) value(c byte) string {
	switch s.field {
	case fieldCL:
		switch {
		case isOWS(c):
			if s.val == 1 {
				s.val = 2
			}
		case '0' <= c && c <= '9' && s.val < 2:
			s.val = 1
			d := uint64(c - '0')
			if s.clen > (maxContentLength-d)/10 {
				return ReasonBadCL
			}
			s.clen = s.clen*10 + d
		default:
			return ReasonBadCL
		}
	case fieldTE:
		switch {
		case isOWS(c):
			if s.val == 1 {
				if s.valIdx != len(chunked) {
					return ReasonBadTE
				}
				s.val = 2
			}
		case s.val < 2 && s.valIdx < len(chunked) && lower(c) == chunked[s.valIdx]:
			s.val = 1
			s.valIdx++
		default:
			return ReasonBadTE
		}
	}
	return ""
}

// endValue checks a complete Content-Length or Transfer-Encoding value.
func (s *scanner) endValue() string {
	switch s.field {
	case fieldCL:
		if s.val == 0 {
			return ReasonBadCL
		}
	case fieldTE:
		if s.valIdx != len(chunked) {
			return ReasonBadTE
		}
	}
	return ""
}

// endSection runs at the empty line that ends the header or trailer section.
func (s *scanner) endSection() {
	switch {
	case s.trailer:
		s.reset()
	case s.tunnel:
		s.st = stPass
	case s.seenTE:
		s.st, s.remain, s.digits = stChunkSize, 0, 0
	case s.clen > 0:
		s.st, s.remain = stBody, s.clen
	default:
		s.reset()
	}
}

func (s *scanner) chunkSize(c byte) string {
	var v byte
	switch {
	case '0' <= c && c <= '9':
		v = c - '0'
	case 'a' <= c && c <= 'f':
		v = c - 'a' + 10
	case 'A' <= c && c <= 'F':
		v = c - 'A' + 10
	default:
		if s.digits == 0 {
			return ReasonBadChunk
		}
		switch {
		case isOWS(c):
			s.st = stChunkWS
		case c == ';':
			s.st = stChunkExt
		case c == '\r':
			s.st = stChunkSizeCR
		default:
			return ReasonBadChunk
		}
		return ""
	}
	// net/http refuses more than 16 hex digits; so do we (and no overflow).
	s.digits++
	if s.digits > 16 || s.remain > maxContentLength>>4 {
		return ReasonBadChunk
	}
	s.remain = s.remain<<4 | uint64(v)
	return ""
}
