package format

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Format
		wantErr string
	}{
		{name: "json", in: "json", want: JSON},
		{name: "yaml", in: "yaml", want: YAML},
		{name: "yml alias", in: "yml", want: YAML},
		{name: "toml", in: "toml", want: TOML},
		{name: "xml", in: "xml", want: XML},
		{name: "ini", in: "ini", want: INI},
		{name: "raw", in: "raw", want: Raw},
		{name: "upper case and blanks", in: " XML ", want: XML},
		{name: "unknown lists valid names", in: "csv", wantErr: `format "csv": unknown, want one of json, yaml, toml, xml, ini, raw`},
		{name: "empty", in: "", wantErr: `format "": unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFromContentType(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		want    Format
		wantErr bool
	}{
		{name: "json", ct: "application/json", want: JSON},
		{name: "json with charset", ct: "application/json; charset=utf-8", want: JSON},
		{name: "json upper case", ct: "Application/JSON", want: JSON},
		{name: "vendor json suffix", ct: "application/vnd.acme.app+json", want: JSON},
		{name: "yaml", ct: "application/yaml", want: YAML},
		{name: "x-yaml", ct: "application/x-yaml", want: YAML},
		{name: "text yaml", ct: "text/yaml", want: YAML},
		{name: "toml", ct: "application/toml", want: TOML},
		{name: "xml", ct: "application/xml", want: XML},
		{name: "text xml", ct: "text/xml; charset=ISO-8859-1", want: XML},
		{name: "atom suffix", ct: "application/atom+xml", want: XML},
		{name: "ini", ct: "text/x-ini", want: INI},
		{name: "x-ini", ct: "application/x-ini", want: INI},
		{name: "text plain", ct: "text/plain", want: Raw},
		{name: "octet stream", ct: "application/octet-stream", want: Raw},
		{name: "broken parameter still maps", ct: "application/json; charset", want: JSON},
		{name: "unknown", ct: "image/png", wantErr: true},
		{name: "empty", ct: "", wantErr: true},
		{name: "suffix without slash", ct: "+json", wantErr: true},
		{name: "garbage", ct: ";;;", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromContentType(tt.ct)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("FromContentType(%q) = %q, want an error", tt.ct, got)
				}
				if !strings.Contains(err.Error(), "content type") {
					t.Fatalf("error %q does not name the content type", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FromContentType(%q) = %q, %v; want %q", tt.ct, got, err, tt.want)
			}
		})
	}
}

func TestContentTypeRoundTrip(t *testing.T) {
	for _, f := range all {
		t.Run(string(f), func(t *testing.T) {
			got, err := FromContentType(f.ContentType())
			if err != nil || got != f {
				t.Fatalf("FromContentType(%q) = %q, %v; want %q", f.ContentType(), got, err, f)
			}
		})
	}
	if got := Format("nope").ContentType(); got != "application/octet-stream" {
		t.Fatalf("unknown format content type = %q", got)
	}
}

// badFiles is the expected error of every testdata/*.bad.* file: a
// substring that includes the position.
var badFiles = map[string]string{
	"blank.bad.json":        "json: empty document",
	"missing-key.bad.json":  "json: line 4, column 1: invalid character '}' looking for beginning of object key string",
	"truncated.bad.json":    "json: line 3, column 26: unexpected end of JSON input",
	"trailing.bad.json":     "json: line 2, column 1: invalid character '{' after top-level value",
	"latin1.bad.json":       "json: line 1, column 8: invalid UTF-8",
	"dupkey.bad.yaml":       `yaml: line 3, column 1: mapping key "greeting" already defined at line 1`,
	"tab.bad.yaml":          "yaml: line 2: found a tab character that violates indentation",
	"second-doc.bad.yaml":   "yaml: line 3: mapping values are not allowed in this context",
	"comments.bad.yaml":     "yaml: no document",
	"dupkey.bad.toml":       "toml: line 3, column 1: key greeting is already defined",
	"duptable.bad.toml":     "toml: line 4, column 2: table listen already exists",
	"unterminated.bad.toml": "toml: line 2, column 18: basic strings cannot have new lines",
	"mismatch.bad.xml":      "xml: line 3, column 20: element <port> closed by </prot>",
	"tworoots.bad.xml":      "xml: line 2, column 1: second root element <other>",
	"unclosed.bad.xml":      "xml: line 3, column 1: unexpected EOF",
	"entity.bad.xml":        "xml: line 3, column 13: invalid character entity &lol2;",
	"text.bad.xml":          "xml: line 1, column 1: text outside the root element",
	"attr.bad.xml":          "xml: line 2, column 16: unquoted or missing attribute value",
	"header.bad.ini":        `ini: line 4, column 1: section header "[database" is missing its closing ']'`,
	"barekey.bad.ini":       `ini: line 3, column 1: "skip-name-resolve" is neither a section header`,
	"nokey.bad.ini":         `ini: line 2, column 2: "= value": missing key before "="`,
	"continuation.bad.ini":  `ini: line 2: the file ends inside a '\' line continuation`,
	"after-header.bad.ini":  `ini: line 1, column 9: section header "[server] host = x": unexpected "host = x"`,
}

func TestTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.*.*")
	if err != nil {
		t.Fatal(err)
	}
	good, bad := map[Format]int{}, map[Format]int{}
	for _, path := range files {
		base := filepath.Base(path)
		f, err := Parse(strings.TrimPrefix(filepath.Ext(base), "."))
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(base, func(t *testing.T) {
			err := Validate(f, data)
			switch {
			case strings.Contains(base, ".good."):
				good[f]++
				if err != nil {
					t.Fatalf("Validate(%s) = %v, want nil", f, err)
				}
			case strings.Contains(base, ".bad."):
				bad[f]++
				want, ok := badFiles[base]
				if !ok {
					t.Fatalf("no expected error in badFiles for %s (got %v)", base, err)
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Validate(%s) = %v, want it to contain %q", f, err, want)
				}
				var fe *Error
				if !errors.As(err, &fe) || fe.Format != f {
					t.Fatalf("error %#v is not an *Error for %s", err, f)
				}
			default:
				t.Fatalf("%s is neither .good. nor .bad.", base)
			}
		})
	}
	for _, f := range []Format{JSON, YAML, TOML, XML, INI} {
		if good[f] == 0 || bad[f] == 0 {
			t.Errorf("format %s has %d good and %d bad testdata files, want at least one of each", f, good[f], bad[f])
		}
	}
	for base := range badFiles {
		if _, err := os.Stat(filepath.Join("testdata", base)); err != nil {
			t.Errorf("badFiles names %s: %v", base, err)
		}
	}
}
