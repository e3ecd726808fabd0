package source

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidNameMatchesRule checks the hand-written name rules against the
// regular expressions they replace (kept here, where compiling them costs
// nothing at run time).
func TestValidNameMatchesRule(t *testing.T) {
	rules := []struct {
		name  string
		re    *regexp.Regexp
		valid func(string) bool
		max   int
	}{
		{"config", regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`), validConfigName, 128},
		{"sidecar", regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,252}$`), validSidecarName, 253},
	}
	for _, r := range rules {
		inputs := []string{
			"", "a", ".", ".a", "a.", "-", "_", "A-z_0.9", "a b", "a/b", "../x", "a\n", "\na", "é", "a\x00",
			strings.Repeat("a", r.max), strings.Repeat("a", r.max+1), "." + strings.Repeat("a", r.max-1),
		}
		for c := 0; c < 256; c++ {
			inputs = append(inputs, string(rune(c)), "x"+string([]byte{byte(c)}), string([]byte{byte(c)})+"x")
		}
		for _, in := range inputs {
			if got, want := r.valid(in), r.re.MatchString(in); got != want {
				t.Errorf("%s name %q: valid = %v, the rule's regexp says %v", r.name, in, got, want)
			}
		}
	}
}

func FuzzValidName(f *testing.F) {
	f.Add("web-1.conf")
	f.Add(".hidden")
	re := regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validConfigName(s), re.MatchString(s); got != want {
			t.Fatalf("validConfigName(%q) = %v, regexp says %v", s, got, want)
		}
	})
}
