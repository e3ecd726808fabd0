package format

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzValidate seeds a fuzz target with the testdata files of format f and
// checks properties that hold for any input: no panic, the same answer
// twice, errors that are *Error values with sane positions, and, where
// extra is given, agreement with a reference parser on accepted input.
func fuzzValidate(f *testing.F, format Format, seeds []string, extra func(t *testing.T, data []byte)) {
	files, _ := filepath.Glob("testdata/*." + string(format))
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err1 := Validate(format, data)
		err2 := Validate(format, data)
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %v then %v", err1, err2)
		}
		if err1 != nil {
			var fe *Error
			if !errors.As(err1, &fe) {
				t.Fatalf("error %T %v is not *Error", err1, err1)
			}
			if fe.Format != format || fe.Line < 0 || fe.Column < 0 {
				t.Fatalf("bad error fields %+v", fe)
			}
			return
		}
		if extra != nil {
			extra(t, data)
		}
	})
}

func FuzzValidateJSON(f *testing.F) {
	fuzzValidate(f, JSON, []string{`{"a":[1,2,{"b":null}]}`, `"\u00e9"`, `[`, `{"a":1}}`, "1 2"}, func(t *testing.T, data []byte) {
		// UseNumber: 1e400 is valid JSON even if it overflows a float64.
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("Validate accepted what encoding/json rejects: %v", err)
		}
	})
}

func FuzzValidateYAML(f *testing.F) {
	fuzzValidate(f, YAML, []string{"a: &x [1]\nb: *x\n", "- a\n- b: c\n", "? [a]\n: b\n", "a: !!int 1\n<<: {b: 1}\n", "---\n...\n"}, nil)
}

func FuzzValidateTOML(f *testing.F) {
	fuzzValidate(f, TOML, []string{"a = {b = [1, {c = 2}]}\n", "[[t]]\n[t.u]\nx = 1\n", "a.b.c = 1\n[a]\n", "d = 1979-05-27T07:32:00Z\n"}, nil)
}

func FuzzValidateXML(f *testing.F) {
	fuzzValidate(f, XML, []string{"<a><b/></a>", "<?xml version='1.0'?><a x='1'>&amp;</a>", "<a>", "<!DOCTYPE a><a/>"}, func(t *testing.T, data []byte) {
		// Whatever Validate accepts, a plain strict decoder reads to EOF.
		var v struct {
			XMLName xml.Name
		}
		d := xml.NewDecoder(bytes.NewReader(data))
		d.CharsetReader = charsetReader
		if err := d.Decode(&v); err != nil {
			t.Fatalf("Validate accepted what encoding/xml cannot decode: %v", err)
		}
	})
}

func FuzzValidateINI(f *testing.F) {
	fuzzValidate(f, INI, []string{"[a]\nb = c\n", "a = \\\n\n", "[s]\nk = v\n  cont\n", "[x] ; c\n", "a:b=c\n"}, nil)
}

func FuzzFromContentType(f *testing.F) {
	for _, s := range []string{"application/json; charset=utf-8", "text/xml", "application/vnd.x+yaml", ";", "a/b; c=\"d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		got, err := FromContentType(ct)
		if err != nil {
			return
		}
		if _, err := Parse(string(got)); err != nil {
			t.Fatalf("FromContentType(%q) = %q, not a valid format", ct, got)
		}
	})
}
