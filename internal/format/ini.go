package format

import (
	"bytes"
	"fmt"
	"strings"
)

// validateINI applies the line rules documented in the package comment.
// It is a checker, not a parser: it keeps no keys or values.
func validateINI(data []byte) error {
	fail := func(line, col int, format string, args ...any) error {
		return &Error{Format: INI, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		line, col := position(data, i)
		return fail(line, col, "NUL byte: binary data is not INI")
	}
	var (
		afterKey     bool // the previous line set a key or continued one
		backslash    bool // the previous line ended in '\': this one continues it
		backslashAt  int  // line number of that backslash, for the EOF error
		lineNo       int
		rest         = data
		sawStatement bool
	)
	for len(rest) > 0 {
		lineNo++
		var raw []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			raw, rest = rest[:i], rest[i+1:]
		} else {
			raw, rest = rest, nil
		}
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		text := string(raw)
		trimmed := strings.TrimSpace(text)

		// Rule 5: a backslash continuation swallows the next line whatever
		// it holds.
		if backslash {
			backslash = strings.HasSuffix(trimmed, `\`)
			if backslash {
				backslashAt = lineNo
			}
			afterKey = true
			continue
		}
		// Rule 1: blanks and comments.
		if trimmed == "" || trimmed[0] == ';' || trimmed[0] == '#' {
			// A blank or comment line ends a value: an indented line after
			// it is not a continuation.
			afterKey = false
			continue
		}
		// Rule 4: indented continuation of the previous key's value.
		if afterKey && (text[0] == ' ' || text[0] == '\t') {
			backslash = strings.HasSuffix(trimmed, `\`)
			backslashAt = lineNo
			continue
		}
		indent := len(text) - len(strings.TrimLeft(text, " \t"))
		col := runeCount(raw[:indent]) + 1

		// Rule 2: section headers.
		if trimmed[0] == '[' {
			afterKey = false
			end := strings.IndexByte(trimmed, ']')
			if end < 0 {
				return fail(lineNo, col, "section header %q is missing its closing ']'", clip(trimmed))
			}
			name := strings.TrimSpace(trimmed[1:end])
			if name == "" {
				return fail(lineNo, col, "section header %q has an empty name", clip(trimmed))
			}
			if i := strings.IndexByte(name, '['); i >= 0 {
				return fail(lineNo, col, "section header %q: '[' inside the name", clip(trimmed))
			}
			after := strings.TrimSpace(trimmed[end+1:])
			if after != "" && after[0] != ';' && after[0] != '#' {
				return fail(lineNo, col+runeCount([]byte(trimmed[:end+1])), "section header %q: unexpected %q after ']'", clip(trimmed), clip(after))
			}
			sawStatement = true
			continue
		}
		// Rule 3: key = value, key: value.
		sep := strings.IndexAny(trimmed, "=:")
		if sep < 0 {
			return fail(lineNo, col, "%q is neither a section header, a \"key = value\" line nor a comment", clip(trimmed))
		}
		if strings.TrimSpace(trimmed[:sep]) == "" {
			return fail(lineNo, col, "%q: missing key before %q", clip(trimmed), trimmed[sep:sep+1])
		}
		afterKey = true
		backslash = strings.HasSuffix(trimmed, `\`)
		backslashAt = lineNo
		sawStatement = true
	}
	if backslash {
		return fail(backslashAt, 0, "the file ends inside a '\\' line continuation")
	}
	if !sawStatement {
		return &Error{Format: INI, Msg: "no section or key: only comments or blanks"}
	}
	return nil
}

// clip shortens a line quoted in an error message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	// Cut on a rune boundary.
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}
