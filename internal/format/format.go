package format

import (
	"fmt"
	"mime"
	"strings"
)

// Format is the name of a configuration format, as given to --format.
type Format string

// The formats Outrigger can check.
const (
	JSON Format = "json"
	YAML Format = "yaml"
	TOML Format = "toml"
	XML  Format = "xml"
	INI  Format = "ini"
	Raw  Format = "raw"
)

// MaxDepth is the deepest nesting Validate accepts in any format (arrays,
// objects, tables, sequences, elements). Real configuration files stay far
// below it; hostile input cannot exhaust the stack.
const MaxDepth = 1000

// all lists the formats in the order error messages present them.
var all = []Format{JSON, YAML, TOML, XML, INI, Raw}

// names is "json, yaml, toml, xml, ini, raw" for error messages.
func names() string {
	s := make([]string, len(all))
	for i, f := range all {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// Parse turns a --format value into a Format. Case and surrounding blanks
// are ignored and "yml" is accepted for YAML. The error lists the valid names.
func Parse(name string) (Format, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "yml" {
		return YAML, nil
	}
	for _, f := range all {
		if n == string(f) {
			return f, nil
		}
	}
	return "", fmt.Errorf("format %q: unknown, want one of %s", name, names())
}

// contentTypes maps media types (lower case, no parameters) to formats, as
// documented in docs/api.md.
var contentTypes = map[string]Format{
	"application/json":         JSON,
	"application/yaml":         YAML,
	"application/x-yaml":       YAML,
	"text/yaml":                YAML,
	"text/x-yaml":              YAML,
	"application/toml":         TOML,
	"application/xml":          XML,
	"text/xml":                 XML,
	"text/x-ini":               INI,
	"application/x-ini":        INI,
	"text/plain":               Raw,
	"application/octet-stream": Raw,
}

// structuredSuffixes maps RFC 6839 structured syntax suffixes to formats, so
// that application/vnd.acme.app+json is checked as JSON.
var structuredSuffixes = map[string]Format{
	"+json": JSON,
	"+yaml": YAML,
	"+toml": TOML,
	"+xml":  XML,
}

// FromContentType maps an HTTP Content-Type to a Format. Parameters such as
// "; charset=utf-8" and case are ignored; structured syntax suffixes
// ("application/vnd.x+json") map to their format. An unknown or empty type
// is an error (the config API answers 415).
func FromContentType(ct string) (Format, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		// Tolerate odd parameters: the media type itself decides.
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
		if mt == "" {
			return "", fmt.Errorf("content type %q: %w", ct, err)
		}
	}
	if f, ok := contentTypes[mt]; ok {
		return f, nil
	}
	for suffix, f := range structuredSuffixes {
		if strings.HasSuffix(mt, suffix) && strings.Contains(mt, "/") {
			return f, nil
		}
	}
	return "", fmt.Errorf("content type %q: unsupported, want application/json, application/yaml, application/toml, application/xml, text/x-ini, text/plain or application/octet-stream", ct)
}

// ContentType returns the canonical media type of f, the one the config API
// stores and serves. Unknown formats get application/octet-stream.
func (f Format) ContentType() string {
	switch f {
	case JSON:
		return "application/json"
	case YAML:
		return "application/yaml"
	case TOML:
		return "application/toml"
	case XML:
		return "application/xml"
	case INI:
		return "text/x-ini"
	default:
		return "application/octet-stream"
	}
}

// String returns the format's name.
func (f Format) String() string { return string(f) }

// Error is a validation failure. Line and Column are 1-based; 0 means the
// parser did not say. Column counts characters (runes) from the line start.
type Error struct {
	Format Format
	Line   int
	Column int
	Msg    string // the parser's message without position or format prefix
	Err    error  // the underlying parser error, if any
}

// Error formats as "json: line 3, column 7: invalid character ...".
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s: line %d, column %d: %s", e.Format, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s: line %d: %s", e.Format, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.Format, e.Msg)
	}
}

// Unwrap returns the parser's own error.
func (e *Error) Unwrap() error { return e.Err }

// Validate reports whether data is a well-formed document of format f: nil
// if it is, an *Error naming the line and column otherwise. Raw accepts
// anything; an unknown format is an error.
func Validate(f Format, data []byte) error {
	if f == Raw {
		return nil
	}
	if isBlank(data) {
		switch f {
		case JSON, YAML, TOML, XML, INI:
			return &Error{Format: f, Msg: "empty document"}
		}
	}
	switch f {
	case JSON:
		return validateJSON(data)
	case YAML:
		return validateYAML(data)
	case TOML:
		return validateTOML(data)
	case XML:
		return validateXML(data)
	case INI:
		return validateINI(data)
	}
	return fmt.Errorf("format %q: unknown, want one of %s", string(f), names())
}

// isBlank reports whether data holds nothing but ASCII whitespace.
func isBlank(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n', '\f', '\v':
		default:
			return false
		}
	}
	return true
}

// position returns the 1-based line and column (in runes) of byte offset
// off in data. Offsets past the end point just after the last byte.
func position(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if data[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return line, runeCount(data[start:off]) + 1
}

// runeCount counts runes, treating each invalid byte as one.
func runeCount(b []byte) int {
	n := 0
	for _, c := range b {
		// Count every byte that does not continue a UTF-8 sequence.
		if c&0xC0 != 0x80 {
			n++
		}
	}
	return n
}
