package format

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding/charmap"
)

// validateXML runs encoding/xml's strict tokenizer (Token, which also
// checks that every end tag matches its start tag) to the end of the input
// and adds the document-level rules it leaves to callers: exactly one root
// element and no character data outside it. encoding/xml never fetches or
// expands external entities; with Entity unset, any entity beyond the five
// predefined ones is an error, so entity-expansion bombs cannot grow.
func validateXML(data []byte) error {
	// encoding/xml would return a UTF-8 byte order mark as text outside the
	// root element; XML 1.0 allows it, so skip it.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = charsetReader
	// line, col is where the current token starts: errors found by the
	// rules below point at the token at fault, not past it.
	line, col := 1, 1
	fail := func(msg string) error {
		return &Error{Format: XML, Line: line, Column: col, Msg: msg}
	}
	depth, roots := 0, 0
	for {
		line, col = d.InputPos()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				l, c := d.InputPos()
				if se.Line != l {
					c = 0 // the column belongs to another line
				}
				return &Error{Format: XML, Line: se.Line, Column: c, Msg: se.Msg, Err: err}
			}
			return &Error{Format: XML, Line: line, Column: col, Msg: strings.TrimPrefix(err.Error(), "xml: "), Err: err}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return fail(fmt.Sprintf("second root element <%s>: a document has exactly one", t.Name.Local))
				}
			}
			depth++
			if depth > MaxDepth {
				return fail(tooDeep)
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && !isBlank(t) {
				return fail("text outside the root element")
			}
		}
	}
	if roots == 0 {
		return fail("no root element")
	}
	return nil
}

// charsetReader understands the single-byte encodings legacy XML configs
// declare besides UTF-8. Anything else is an error that names the charset.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return input, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1":
		return charmap.ISO8859_1.NewDecoder().Reader(input), nil
	case "iso-8859-15", "iso8859-15", "latin-9", "latin9":
		return charmap.ISO8859_15.NewDecoder().Reader(input), nil
	case "windows-1252", "cp1252":
		return charmap.Windows1252.NewDecoder().Reader(input), nil
	}
	return nil, fmt.Errorf("encoding %q is not supported (use UTF-8, US-ASCII, ISO-8859-1, ISO-8859-15 or windows-1252)", label)
}
