package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	deep := func(open, close string, n int) string {
		return strings.Repeat(open, n) + strings.Repeat(close, n)
	}
	billionLaughs := "a: &a [x, x, x, x, x, x, x, x, x]\n" +
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n" +
		"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
		"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n" +
		"h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n" +
		"i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
	tests := []struct {
		name    string
		format  Format
		in      string
		wantErr string // "" = valid
	}{
		{name: "raw empty", format: Raw, in: ""},
		{name: "raw binary", format: Raw, in: "\x00\xff"},
		{name: "unknown format", format: "csv", in: "a,b", wantErr: `format "csv": unknown`},

		{name: "json empty", format: JSON, in: "", wantErr: "json: empty document"},
		{name: "json blanks", format: JSON, in: " \n\t", wantErr: "json: empty document"},
		{name: "json scalar", format: JSON, in: "42"},
		{name: "json null", format: JSON, in: "null"},
		{name: "json trailing garbage", format: JSON, in: `{} x`, wantErr: "line 1, column 4: invalid character 'x' after top-level value"},
		{name: "json depth at limit", format: JSON, in: deep("[", "]", MaxDepth)},
		{name: "json too deep", format: JSON, in: deep("[", "]", MaxDepth+1), wantErr: fmt.Sprintf("line 1, column %d: nesting deeper than 1000 levels", MaxDepth+1)},
		{name: "json brackets in strings do not count", format: JSON, in: `["` + strings.Repeat("[", 5000) + `\"]"]`},
		{name: "json bom", format: JSON, in: "\xef\xbb\xbf{}", wantErr: "line 1, column 1: invalid character"},
		{name: "json unicode column", format: JSON, in: `{"é": 1,}`, wantErr: "line 1, column 9:"},
		{name: "json second line", format: JSON, in: "{\n  \"a\": tru\n}", wantErr: "line 2, column 11: invalid character '\\n' in literal true"},

		{name: "yaml empty", format: YAML, in: "", wantErr: "yaml: empty document"},
		{name: "yaml null document", format: YAML, in: "---\n", wantErr: "yaml: empty document: every document is null"},
		{name: "yaml null then content", format: YAML, in: "---\n---\na: 1\n"},
		{name: "yaml scalar", format: YAML, in: "hello"},
		{name: "yaml unknown anchor", format: YAML, in: "a: *nope\n", wantErr: "unknown anchor 'nope'"},
		{name: "yaml complex key", format: YAML, in: "? [a, b]\n: c\n"},
		{name: "yaml duplicate nested key", format: YAML, in: "a:\n  b: 1\n  c: 2\n  b: 3\n", wantErr: `yaml: line 4, column 3: mapping key "b" already defined at line 2`},
		{name: "yaml same key in two mappings", format: YAML, in: "a:\n  b: 1\nc:\n  b: 1\n"},
		{name: "yaml bad explicit int", format: YAML, in: "a: !!int abc\n", wantErr: "cannot decode !!str `abc` as a !!int"},
		{name: "yaml good explicit int", format: YAML, in: "a: !!int 42\n"},
		{name: "yaml bad binary", format: YAML, in: "a: !!binary '%%%'\n", wantErr: "yaml: line 1"},
		{name: "yaml merge", format: YAML, in: "d: &d {x: 1}\ne:\n  <<: *d\n  y: 2\n"},
		{name: "yaml merge of scalar", format: YAML, in: "d: &d 1\ne:\n  <<: *d\n", wantErr: "line 3, column 7: map merge requires a mapping"},
		{name: "yaml alias deepens past limit", format: YAML, in: "a: &a " + deep("[", "]", 600) + "\nb: " + deep("[", "]", 500)[:500] + "*a" + deep("[", "]", 500)[500:] + "\n", wantErr: "nesting deeper than 1000 levels once alias *a is expanded"},
		{name: "yaml custom tag", format: YAML, in: "a: !secret xyz\n"},
		{name: "yaml depth at limit", format: YAML, in: deep("[", "]", MaxDepth)},
		{name: "yaml too deep", format: YAML, in: deep("[", "]", MaxDepth+1), wantErr: "nesting deeper than 1000 levels"},
		{name: "yaml billion laughs", format: YAML, in: billionLaughs, wantErr: "excessive aliasing"},

		{name: "toml empty", format: TOML, in: "", wantErr: "toml: empty document"},
		{name: "toml comment only", format: TOML, in: "# nothing\n", wantErr: "toml: no table or key"},
		{name: "toml empty table is content", format: TOML, in: "[server]\n"},
		{name: "toml bad value", format: TOML, in: "a = [1,\n 2,,]\n", wantErr: "toml: line 2, column 4"},
		{name: "toml too deep", format: TOML, in: "a = " + strings.Repeat("[", 20000), wantErr: "nested more than the maximum"},
		{name: "toml invalid utf-8", format: TOML, in: "a = \"\xff\"\n", wantErr: "invalid UTF-8"},

		{name: "xml empty", format: XML, in: "", wantErr: "xml: empty document"},
		{name: "xml only declaration", format: XML, in: `<?xml version="1.0"?>`, wantErr: "xml: line 1, column 22: no root element"},
		{name: "xml only comment", format: XML, in: "<!-- x -->", wantErr: "no root element"},
		{name: "xml self-closing root", format: XML, in: "<a/>"},
		{name: "xml bom", format: XML, in: "\xef\xbb\xbf<a/>"},
		{name: "xml unsupported encoding", format: XML, in: `<?xml version="1.0" encoding="EBCDIC"?><a/>`, wantErr: `encoding "EBCDIC" is not supported`},
		{name: "xml invalid utf-8", format: XML, in: "<a>\xff</a>", wantErr: "invalid UTF-8"},
		{name: "xml depth at limit", format: XML, in: deep("<a>", "</a>", MaxDepth)},
		{name: "xml too deep", format: XML, in: deep("<a>", "</a>", MaxDepth+1), wantErr: "nesting deeper than 1000 levels"},
		{name: "xml external entity not fetched", format: XML, in: "<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<a>&x;</a>", wantErr: "line 2, column 7: invalid character entity &x;"},
		{name: "xml text after root", format: XML, in: "<a/>\ntrailing", wantErr: "line 1, column 5: text outside the root element"},
		{name: "xml unclosed comment", format: XML, in: "<a><!-- x</a>", wantErr: "unexpected EOF"},

		{name: "ini empty", format: INI, in: "", wantErr: "ini: empty document"},
		{name: "ini only comments", format: INI, in: "; a\n# b\n", wantErr: "ini: no section or key"},
		{name: "ini crlf", format: INI, in: "[a]\r\nb = c\r\n"},
		{name: "ini global key", format: INI, in: "a = b\n"},
		{name: "ini colon separator", format: INI, in: "[s]\na: b\n"},
		{name: "ini empty section name", format: INI, in: "[ ]\n", wantErr: "ini: line 1, column 1: section header \"[ ]\" has an empty name"},
		{name: "ini bracket in section name", format: INI, in: "[a[b]\n", wantErr: "'[' inside the name"},
		{name: "ini indented line after comment", format: INI, in: "[s]\na = b\n; c\n  stray\n", wantErr: `line 4, column 3: "stray" is neither`},
		{name: "ini indented key after section", format: INI, in: "[s]\n  a = b\n"},
		{name: "ini indented section", format: INI, in: "  [s]\n  a = b\n"},
		{name: "ini nul byte", format: INI, in: "[s]\na = \x00\n", wantErr: "ini: line 2, column 5: NUL byte"},
		{name: "ini backslash then anything", format: INI, in: "a = x \\\n[not a section\n"},
		{name: "ini long line is clipped", format: INI, in: strings.Repeat("x", 500), wantErr: `..." is neither`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.format, []byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%s) = %v, want nil", tt.format, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate(%s) = %v, want it to contain %q", tt.format, err, tt.wantErr)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	err := Validate(JSON, []byte("{\n  \"a\": }"))
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %T is not *Error", err)
	}
	if fe.Format != JSON || fe.Line != 2 || fe.Column != 8 {
		t.Fatalf("got %s line %d column %d, want json line 2 column 8", fe.Format, fe.Line, fe.Column)
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("the parser's *json.SyntaxError is not reachable through Unwrap")
	}
	for _, tt := range []struct {
		name string
		e    Error
		want string
	}{
		{name: "line and column", e: Error{Format: XML, Line: 2, Column: 3, Msg: "m"}, want: "xml: line 2, column 3: m"},
		{name: "line only", e: Error{Format: YAML, Line: 2, Msg: "m"}, want: "yaml: line 2: m"},
		{name: "no position", e: Error{Format: INI, Msg: "m"}, want: "ini: m"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLargeInputs checks that 1 MiB documents of every format validate (and
// that a broken byte at the very end is still found). No timing assertion:
// the benchmark below measures speed. Under the race detector the documents
// are smaller.
func TestLargeInputs(t *testing.T) {
	size := 1 << 20
	if raceEnabled {
		size = 128 << 10
	}
	for _, f := range []Format{JSON, YAML, TOML, XML, INI} {
		t.Run(string(f), func(t *testing.T) {
			data := largeDoc(f, size)
			if err := Validate(f, data); err != nil {
				t.Fatalf("Validate(%s, %d bytes) = %v", f, len(data), err)
			}
			broken := append(bytes.Clone(data), []byte("\n[[[ <<< = \x00")...)
			if err := Validate(f, broken); err == nil {
				t.Fatalf("Validate(%s) accepted a broken tail", f)
			}
		})
	}
}

func BenchmarkValidate1MiB(b *testing.B) {
	for _, f := range []Format{JSON, YAML, TOML, XML, INI} {
		data := largeDoc(f, 1<<20)
		b.Run(string(f), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := Validate(f, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// largeDoc builds a valid document of format f of at least size bytes.
func largeDoc(f Format, size int) []byte {
	var b bytes.Buffer
	switch f {
	case JSON:
		b.WriteString("{")
		for i := 0; b.Len() < size; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n  \"key%d\": {\"n\": %d, \"s\": \"value %d\", \"l\": [1, 2, 3]}", i, i, i)
		}
		b.WriteString("\n}\n")
	case YAML:
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "key%d:\n  n: %d\n  s: value %d\n  l: [1, 2, 3]\n", i, i, i)
		}
	case TOML:
		for i := 0; b.Len() < size; i++ {
			// Long values: keys stay under MaxTOMLKeys.
			fmt.Fprintf(&b, "[key%d]\nn = %d\ns = \"value %d %s\"\nl = [%s0]\n", i, i, i, strings.Repeat("x", 300), strings.Repeat("1, ", 60))
		}
	case XML:
		b.WriteString("<config>\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "  <key n=\"%d\"><s>value %d</s><l>1</l><l>2</l></key>\n", i, i)
		}
		b.WriteString("</config>\n")
	case INI:
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "[key%d]\nn = %d\ns = value %d\n; comment\n", i, i, i)
		}
	}
	return b.Bytes()
}

func TestTOMLKeyLimit(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		inline  bool
		wantErr string
	}{
		{name: "flat at limit", n: MaxTOMLKeys},
		{name: "flat over limit", n: MaxTOMLKeys + 1, wantErr: fmt.Sprintf("toml: line %d, column 1: more than %d keys", MaxTOMLKeys+1, MaxTOMLKeys)},
		{name: "inline over limit", n: MaxTOMLKeys + 1, inline: true, wantErr: "toml: line 1, column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if raceEnabled && tt.wantErr == "" {
				t.Skip("10000 keys take go-toml too long under the race detector")
			}
			var b bytes.Buffer
			if tt.inline {
				b.WriteString("a = {")
			}
			for i := 0; i < tt.n; i++ {
				if tt.inline {
					if i > 0 {
						b.WriteString(", ")
					}
					fmt.Fprintf(&b, "k%d = 1", i)
				} else {
					fmt.Fprintf(&b, "k%d = 1\n", i)
				}
			}
			if tt.inline {
				b.WriteString("}\n")
			}
			err := Validate(TOML, b.Bytes())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
