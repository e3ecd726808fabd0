// Package format names the configuration formats Outrigger knows (JSON,
// YAML, TOML, XML, INI and raw) and checks that a candidate file is
// well-formed before it can reach an application.
//
// Validate answers one question: would a parser for this format accept the
// bytes? It does not check a schema, does not resolve includes, entities or
// references, and never returns the decoded value. Errors are *Error values
// whose message carries the line and column where the parser knows them:
//
//	json: line 3, column 7: invalid character '}' looking for beginning of object key string
//
// Rules that hold for every format but Raw:
//   - Empty input, input that is only whitespace and (YAML, TOML, XML, INI)
//     input that is only comments is an error: an empty file must never
//     reach an application (consul-template's classic failure after its
//     backend lost state).
//   - Nesting deeper than MaxDepth (arrays, objects, sequences, mappings,
//     elements) is an error in JSON, YAML and XML; TOML relies on go-toml's
//     own limit of 10000 levels. Hostile input cannot exhaust the stack or
//     memory, and no check is quadratic: 1 MiB validates in well under a
//     second (JSON and INI in milliseconds; YAML is the slowest, about
//     4 MB/s).
//
// Per-format rules:
//   - JSON (RFC 8259, encoding/json): exactly one value; trailing data after
//     it is an error; the input must be valid UTF-8.
//   - YAML (gopkg.in/yaml.v3): every document of a multi-document stream must
//     parse; duplicate scalar keys in a mapping, explicitly tagged scalars
//     that do not fit their tag (!!int abc), merge keys whose value is not a
//     mapping, and alias expansion beyond a few million nodes ("billion
//     laughs") are errors. A stream with no document (only comments), or
//     whose documents are all null, is an error. Line numbers of syntax
//     errors are yaml.v3's own: for some errors it names the line where the
//     construct at fault began.
//   - TOML (v1.0, github.com/pelletier/go-toml/v2): the whole document must
//     decode; duplicate keys and tables are errors. Documents with more than
//     MaxTOMLKeys keys are refused, because go-toml's duplicate check is
//     quadratic.
//   - XML (encoding/xml, strict mode): well-formed, with exactly one root
//     element, proper nesting and no character data outside it. Entities are
//     never resolved: only the five predefined entities and character
//     references are accepted, so a DTD-declared entity is an error (and an
//     "XML bomb" cannot expand). Declared encodings UTF-8, US-ASCII,
//     ISO-8859-1, ISO-8859-15 and windows-1252 are understood.
//   - INI has no standard; the checker enforces the common subset that
//     Python's configparser, PHP, Git and most legacy readers agree on, line
//     by line (a line ends at "\n"; a trailing "\r" is ignored):
//     1. Blank lines, and lines whose first non-blank character is ';' or
//     '#', are comments.
//     2. "[name]" starts a section. The name is not empty and holds no '['
//     or ']'; only blanks or a ';'/'#' comment may follow the ']'.
//     3. "key = value" or "key: value" sets a key; the separator is the
//     first '=' or ':'. The key (trimmed) is not empty. The value may be
//     empty. Keys before the first section belong to a global section.
//     4. A line that starts with a space or tab directly after a key line
//     (or after another such line) continues that key's value.
//     5. A value ending in '\' continues on the next line, whatever it
//     holds; a file must not end inside such a continuation.
//     6. Anything else is an error, notably bare keys without a separator
//     ("skip-name-resolve": use raw for MySQL option files), unterminated
//     section headers, and NUL bytes (binary data).
//     Duplicate keys and sections are allowed (systemd units, PHP arrays).
//   - Raw is never checked: Validate always returns nil.
package format
