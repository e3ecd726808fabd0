package format

import (
	"errors"
	"fmt"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// MaxTOMLKeys bounds the number of keys (key parts of key/value pairs,
// inline tables and table headers) in a TOML document. go-toml checks
// duplicates with a linear search per key, so its cost grows with the
// square of the key count: 10,000 keys take a fraction of a second, the
// 100,000 keys that fit in 1 MiB would take most of a minute.
const MaxTOMLKeys = 10000

// validateTOML decodes the whole document into a generic value; go-toml
// reports duplicate keys and tables, invalid UTF-8 and nesting beyond its
// own limit of 10000 levels, each with a row and column. A linear pre-pass
// with go-toml's own parser refuses documents above MaxTOMLKeys first.
func validateTOML(data []byte) error {
	keys, err := tomlKeyCount(data)
	if err != nil {
		return err
	}
	var v map[string]any
	err = toml.Unmarshal(data, &v)
	if err == nil {
		if keys == 0 {
			return &Error{Format: TOML, Msg: "no table or key: only comments or blanks"}
		}
		return nil
	}
	e := &Error{Format: TOML, Msg: strings.TrimPrefix(err.Error(), "toml: "), Err: err}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		e.Line, e.Column = de.Position()
	}
	return e
}

// tomlKeyCount parses data and returns the number of keys, or an error
// naming the position of the key past MaxTOMLKeys. Syntax errors are left
// to toml.Unmarshal, which reports them with better context.
func tomlKeyCount(data []byte) (int, error) {
	var p unstable.Parser
	p.Reset(data)
	n := 0
	for p.NextExpression() {
		if key := countKeys(p.Expression(), &n); key != nil {
			pos := p.Shape(p.Range(key.Data)).Start
			return n, &Error{Format: TOML, Line: pos.Line, Column: pos.Column,
				Msg: fmt.Sprintf("more than %d keys: too many to check for duplicates", MaxTOMLKeys)}
		}
	}
	return n, nil
}

// countKeys adds the key nodes under node to *n and returns the first key
// node past MaxTOMLKeys, or nil. Recursion is bounded by the parser's own
// nesting limit.
func countKeys(node *unstable.Node, n *int) *unstable.Node {
	if node.Kind == unstable.Key {
		*n++
		if *n > MaxTOMLKeys {
			return node
		}
	}
	it := node.Children()
	for it.Next() {
		if k := countKeys(it.Node(), n); k != nil {
			return k
		}
	}
	return nil
}
