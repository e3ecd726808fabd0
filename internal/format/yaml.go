package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxYAMLExpanded bounds the number of nodes a document may expand to once
// its aliases are followed: a "billion laughs" document is tiny on disk and
// huge in the application that loads it. Documents without aliases never
// come near it (1 MiB of YAML holds well under a million nodes).
const maxYAMLExpanded = 4 << 20

// yamlLine matches the position yaml.v3 puts in its messages. Its line
// numbers are its own: for parser errors it names the line where the
// construct at fault began.
var yamlLine = regexp.MustCompile(`^line (\d+): `)

// validateYAML parses every document of the stream into a node tree (the
// parse is linear) and then checks the tree itself: nesting depth and alias
// expansion, duplicate mapping keys, explicitly tagged scalars and merge
// keys. It deliberately does not decode whole documents with yaml.v3,
// whose duplicate-key check is quadratic in the size of a mapping (a 1 MiB
// flat mapping would take most of a minute).
func validateYAML(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	docs, content := 0, false
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return yamlError(err)
		}
		docs++
		w := yamlWalker{memo: map[*yaml.Node]yamlSize{}}
		if _, err := w.walk(&n, 0); err != nil {
			return err
		}
		if len(n.Content) > 0 && n.Content[0].Tag != "!!null" {
			content = true
		}
	}
	if docs == 0 {
		return &Error{Format: YAML, Msg: "no document: only comments or blanks"}
	}
	if !content {
		return &Error{Format: YAML, Msg: "empty document: every document is null"}
	}
	return nil
}

// yamlSize is what the walker knows of a subtree once aliases are expanded.
type yamlSize struct {
	nodes  int64 // node count, saturating just above maxYAMLExpanded
	height int   // levels below the node
}

// yamlWalker checks one document. memo holds the size of every node walked
// so far, so an alias costs O(1): YAML requires an anchor to come before
// its aliases, and the walk is in document order.
type yamlWalker struct {
	memo map[*yaml.Node]yamlSize
}

func (w *yamlWalker) walk(n *yaml.Node, depth int) (yamlSize, error) {
	if depth > MaxDepth {
		return yamlSize{}, yamlAt(n, tooDeep)
	}
	if s, ok := w.memo[n]; ok {
		return s, nil
	}
	size := yamlSize{nodes: 1}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return yamlSize{}, yamlAt(n, "alias *"+n.Value+" has no anchor")
		}
		target, ok := w.memo[n.Alias]
		if !ok {
			// Not seen yet (the parser should have refused this); walk
			// it here, still bounded by depth.
			var err error
			if target, err = w.walk(n.Alias, depth); err != nil {
				return yamlSize{}, err
			}
		}
		if depth+target.height > MaxDepth {
			return yamlSize{}, yamlAt(n, tooDeep+" once alias *"+n.Value+" is expanded")
		}
		size = target
	case yaml.ScalarNode:
		if n.Style&yaml.TaggedStyle != 0 && strings.HasPrefix(n.Tag, "!!") {
			// An explicit standard tag must fit its value: !!int abc is
			// an error. Decoding one scalar costs O(1).
			var v any
			if err := n.Decode(&v); err != nil {
				e := yamlError(err)
				if e.Line == 0 {
					e.Line, e.Column = n.Line, n.Column
				}
				return yamlSize{}, e
			}
		}
	case yaml.MappingNode:
		if err := checkMapping(n); err != nil {
			return yamlSize{}, err
		}
	}
	for _, c := range n.Content {
		cs, err := w.walk(c, depth+1)
		if err != nil {
			return yamlSize{}, err
		}
		size.nodes += cs.nodes
		if cs.height+1 > size.height {
			size.height = cs.height + 1
		}
		if size.nodes > maxYAMLExpanded {
			return yamlSize{}, yamlAt(n, fmt.Sprintf("excessive aliasing: the document expands to more than %d nodes", maxYAMLExpanded))
		}
	}
	w.memo[n] = size
	return size, nil
}

// checkMapping reports duplicate scalar keys (as yaml.v3's decoder does,
// but with a hash set) and merge keys whose value is not a mapping or a
// sequence of mappings.
func checkMapping(n *yaml.Node) error {
	if len(n.Content)%2 != 0 {
		return yamlAt(n, "mapping with an odd number of nodes")
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			if !isMergeable(v) {
				return yamlAt(v, "map merge requires a mapping or a sequence of mappings as the value")
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			continue // complex keys: valid YAML, compared by no one
		}
		if line, dup := seen[k.Value]; dup {
			return yamlAt(k, fmt.Sprintf("mapping key %q already defined at line %d", k.Value, line))
		}
		seen[k.Value] = k.Line
	}
	return nil
}

// isMergeable reports whether v may follow a "<<" merge key.
func isMergeable(v *yaml.Node) bool {
	resolve := func(n *yaml.Node) *yaml.Node {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			return n.Alias
		}
		return n
	}
	v = resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		return true
	case yaml.SequenceNode:
		for _, c := range v.Content {
			if resolve(c).Kind != yaml.MappingNode {
				return false
			}
		}
		return true
	}
	return false
}

// yamlAt builds an error positioned at node n.
func yamlAt(n *yaml.Node, msg string) error {
	return &Error{Format: YAML, Line: n.Line, Column: n.Column, Msg: msg}
}

// yamlError turns a yaml.v3 error into an *Error, lifting the line number
// out of the message.
func yamlError(err error) *Error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		e := &Error{Format: YAML, Err: err}
		first := strings.TrimSpace(te.Errors[0])
		e.Line, e.Msg = splitYAMLLine(first)
		if n := len(te.Errors) - 1; n > 0 {
			e.Msg += " (and " + strconv.Itoa(n) + " more)"
		}
		return e
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{Format: YAML, Err: err}
	e.Line, e.Msg = splitYAMLLine(msg)
	return e
}

// splitYAMLLine splits "line 3: msg" into 3 and "msg".
func splitYAMLLine(s string) (int, string) {
	m := yamlLine.FindStringSubmatch(s)
	if m == nil {
		return 0, s
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, s
	}
	return n, s[len(m[0]):]
}
