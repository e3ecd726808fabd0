package configapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxNameLen is the longest config or sidecar name accepted.
const MaxNameLen = 128

// ValidName reports whether s is an acceptable config (or sidecar) name:
// 1–128 characters of [A-Za-z0-9._-], not starting with '.', so never "..",
// "/" or NUL. The returned error says what is wrong and quotes the name.
func ValidName(s string) error {
	if s == "" {
		return errors.New("name is empty")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("name %.32q…: longer than %d characters", s, MaxNameLen)
	}
	if s[0] == '.' {
		return fmt.Errorf("name %q: must not start with '.'", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("name %q: character %q at offset %d not allowed (use A-Z a-z 0-9 . _ -)", s, c, i)
		}
	}
	return nil
}

// etagList is a parsed If-Match / If-None-Match header: either "*" or a
// list of versions. Entity tags that are not decimal versions are kept as
// "never matches" so that a foreign ETag does not turn into a 400.
type etagList struct {
	any      bool
	versions []int64
}

// matches reports whether version v (0 = the config does not exist)
// satisfies the list. "*" matches any existing version.
func (l etagList) matches(v int64) bool {
	if l.any {
		return v > 0
	}
	for _, x := range l.versions {
		if x == v {
			return true
		}
	}
	return false
}

// parseETags parses an If-Match / If-None-Match value: "*" or a comma
// separated list of entity tags, strong ("7") or weak (W/"7"). Bare numbers
// (7) are tolerated because people type them with curl. An empty header
// returns ok=false.
func parseETags(h string) (l etagList, ok bool, err error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return l, false, nil
	}
	if h == "*" {
		return etagList{any: true}, true, nil
	}
	for _, part := range splitETags(h) {
		t := strings.TrimSpace(part)
		if t == "" {
			continue
		}
		t = strings.TrimPrefix(t, "W/")
		t = strings.TrimPrefix(t, "w/")
		if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
			t = t[1 : len(t)-1]
		} else if strings.ContainsAny(t, "\" ") {
			return etagList{}, true, fmt.Errorf("entity tag %q: malformed", part)
		}
		n, perr := strconv.ParseInt(t, 10, 64)
		if perr != nil || n < 0 {
			// A well-formed tag that is not one of ours: matches nothing.
			continue
		}
		l.versions = append(l.versions, n)
	}
	return l, true, nil
}

// splitETags splits on commas outside quotes.
func splitETags(h string) []string {
	var out []string
	inQuote := false
	start := 0
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, h[start:i])
				start = i + 1
			}
		}
	}
	return append(out, h[start:])
}

// etag formats version n as an entity tag.
func etag(n int64) string { return `"` + strconv.FormatInt(n, 10) + `"` }
