package format

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// validateJSON checks data with encoding/json's scanner (no allocation of
// the decoded value) and converts the byte offset of a syntax error to a
// line and column.
func validateJSON(data []byte) error {
	if !json.Valid(data) {
		// Unmarshal into a RawMessage runs the same scanner and returns
		// the *SyntaxError with its offset, without decoding anything.
		var raw json.RawMessage
		err := json.Unmarshal(data, &raw)
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			if err == nil {
				err = errors.New("invalid JSON")
			}
			return &Error{Format: JSON, Msg: err.Error(), Err: err}
		}
		msg := strings.TrimPrefix(se.Error(), "json: ")
		// Offset counts the bytes read including the offending one; at end
		// of input it is len(data).
		off := int(se.Offset) - 1
		if strings.Contains(msg, "unexpected end") || off < 0 {
			off = len(trimRightSpace(data))
		}
		line, col := position(data, off)
		return &Error{Format: JSON, Line: line, Column: col, Msg: msg, Err: err}
	}
	if i := invalidUTF8(data); i >= 0 {
		line, col := position(data, i)
		return &Error{Format: JSON, Line: line, Column: col, Msg: "invalid UTF-8"}
	}
	if i := jsonTooDeep(data); i >= 0 {
		line, col := position(data, i)
		return &Error{Format: JSON, Line: line, Column: col, Msg: tooDeep}
	}
	return nil
}

// tooDeep is the message for input nested deeper than MaxDepth.
var tooDeep = "nesting deeper than " + strconv.Itoa(MaxDepth) + " levels"

// jsonTooDeep returns the offset of the first '[' or '{' that nests deeper
// than MaxDepth in valid JSON, or -1.
func jsonTooDeep(data []byte) int {
	depth := 0
	inString, escaped := false, false
	for i, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > MaxDepth {
				return i
			}
		case ']', '}':
			depth--
		}
	}
	return -1
}

// invalidUTF8 returns the offset of the first byte that is not valid UTF-8,
// or -1.
func invalidUTF8(data []byte) int {
	if utf8.Valid(data) {
		return -1
	}
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// trimRightSpace drops trailing ASCII whitespace, so that an "unexpected
// end" points at the end of the last token rather than past a final newline.
func trimRightSpace(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\r', '\n':
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}
