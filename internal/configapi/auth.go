package configapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// Role is what a token may do. Roles are ordered: read ⊂ write ⊂ admin.
type Role int

// The roles, weakest first.
const (
	RoleNone Role = iota
	// RoleRead may GET configs, history, status and schemas, watch, and
	// report sidecar status (sidecars run with read tokens).
	RoleRead
	// RoleWrite may also push and roll back.
	RoleWrite
	// RoleAdmin may also register schemas.
	RoleAdmin
)

// String returns the role's name as written in the tokens file.
func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleWrite:
		return "write"
	case RoleAdmin:
		return "admin"
	default:
		return "none"
	}
}

func parseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read":
		return RoleRead, nil
	case "write":
		return RoleWrite, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want read, write or admin", s)
}

// MinTokenLen is the shortest plaintext token accepted in a tokens file;
// shorter secrets are guessable.
const MinTokenLen = 16

// tokenFile is the YAML layout of --tokens.
type tokenFile struct {
	Tokens []tokenEntry `yaml:"tokens"`
}

type tokenEntry struct {
	Name    string   `yaml:"name"`
	Token   string   `yaml:"token"`
	SHA256  string   `yaml:"sha256"`
	Role    string   `yaml:"role"`
	Configs []string `yaml:"configs"`
}

// Identity is an authenticated token: its name (safe to log), its role and
// the config name patterns it may touch (empty = all).
type Identity struct {
	Name    string
	Role    Role
	Configs []string
	hash    [sha256.Size]byte
}

// Allows reports whether the identity has at least role want on config
// name. An empty name (listing) only checks the role.
func (id *Identity) Allows(want Role, name string) bool {
	if id == nil || id.Role < want {
		return false
	}
	return name == "" || id.CanSee(name)
}

// CanSee reports whether name matches one of the identity's patterns.
func (id *Identity) CanSee(name string) bool {
	if len(id.Configs) == 0 {
		return true
	}
	for _, p := range id.Configs {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Tokens is a parsed tokens file. Only SHA-256 digests of the tokens are
// kept in memory.
type Tokens struct {
	ids []Identity
}

// Len returns the number of tokens.
func (t *Tokens) Len() int { return len(t.ids) }

// LoadTokens reads and parses a tokens file.
func LoadTokens(file string) (*Tokens, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--tokens %q: %w", file, err)
	}
	t, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("--tokens %q: %w", file, err)
	}
	return t, nil
}

// ParseTokens parses the YAML tokens file:
//
//	tokens:
//	  - {name: ci, token: "…at least 16 chars…", role: write, configs: ["app-*", "web"]}
//	  - {name: sidecars, sha256: "<hex of sha256(token)>", role: read}
//
// Every entry needs a unique name, exactly one of token or sha256, a role
// (read, write, admin) and optional path.Match patterns. Errors name the
// entry but never quote a token.
func ParseTokens(data []byte) (*Tokens, error) {
	var f tokenFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		// yaml errors may quote the offending line, which could hold a
		// token: report only that the file is malformed, with the line.
		return nil, fmt.Errorf("malformed YAML: %s", redactYAMLError(err))
	}
	if len(f.Tokens) == 0 {
		return nil, errors.New("no tokens defined (want a top-level \"tokens:\" list)")
	}
	t := &Tokens{}
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]string{}
	for i, e := range f.Tokens {
		where := fmt.Sprintf("token #%d", i+1)
		if e.Name != "" {
			where = fmt.Sprintf("token #%d %q", i+1, e.Name)
		}
		if strings.TrimSpace(e.Name) == "" {
			return nil, fmt.Errorf("%s: name is required", where)
		}
		if names[e.Name] {
			return nil, fmt.Errorf("%s: duplicate name", where)
		}
		names[e.Name] = true
		id := Identity{Name: e.Name}
		switch {
		case e.Token != "" && e.SHA256 != "":
			return nil, fmt.Errorf("%s: give token or sha256, not both", where)
		case e.Token != "":
			if len(e.Token) < MinTokenLen {
				return nil, fmt.Errorf("%s: token shorter than %d characters", where, MinTokenLen)
			}
			id.hash = sha256.Sum256([]byte(e.Token))
		case e.SHA256 != "":
			b, err := hex.DecodeString(strings.TrimSpace(e.SHA256))
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: sha256 must be 64 hex digits", where)
			}
			copy(id.hash[:], b)
		default:
			return nil, fmt.Errorf("%s: token or sha256 is required", where)
		}
		if other, dup := hashes[id.hash]; dup {
			return nil, fmt.Errorf("%s: same token as %q", where, other)
		}
		hashes[id.hash] = e.Name
		r, err := parseRole(e.Role)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		id.Role = r
		for _, p := range e.Configs {
			if p == "" {
				return nil, fmt.Errorf("%s: empty config pattern", where)
			}
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("%s: config pattern %q: %w", where, p, err)
			}
		}
		id.Configs = append([]string(nil), e.Configs...)
		t.ids = append(t.ids, id)
	}
	return t, nil
}

// redactYAMLError keeps yaml's "line N" positions and unknown-field
// messages and drops anything else, which may echo file content (a token).
func redactYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		parts := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			parts = append(parts, redactYAMLLine(e))
		}
		return strings.Join(parts, "; ")
	}
	return redactYAMLLine(strings.TrimPrefix(err.Error(), "yaml: "))
}

func redactYAMLLine(msg string) string {
	if i := strings.Index(msg, " not found in type "); i >= 0 {
		return msg[:i] + " unknown"
	}
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i:]
		if j := strings.Index(rest, ":"); j > 0 {
			return rest[:j] + ": invalid value or syntax"
		}
	}
	return "invalid document"
}

// Lookup returns the identity whose token is tok, or nil. Every entry is
// compared in constant time, so timing reveals neither which entry matched
// nor how much of a guess was right.
func (t *Tokens) Lookup(tok string) *Identity {
	if t == nil || tok == "" {
		return nil
	}
	h := sha256.Sum256([]byte(tok))
	found := -1
	for i := range t.ids {
		if subtle.ConstantTimeCompare(h[:], t.ids[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil
	}
	return &t.ids[found]
}

// bearerToken extracts the token from "Authorization: Bearer <tok>".
func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}
