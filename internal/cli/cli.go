// Package cli binds Outrigger's configuration sources onto one flag.FlagSet:
// command-line flags, OUTRIGGER_* environment variables and the YAML file of
// `outrigger run`. Roles only declare flags (RegisterFlags); this package makes
// every flag also readable from the environment and from YAML, with one
// precedence rule: command line, then YAML, then environment, then default.
//
// It does not know any role's flags and holds no state between calls.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix is prepended to every environment variable name.
const EnvPrefix = "OUTRIGGER_"

// EnvName returns the environment variable that fills flag name:
// "upstream-retry-window" -> "OUTRIGGER_UPSTREAM_RETRY_WINDOW".
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// Parse parses args into fs, then fills every flag that was not given on the
// command line from its OUTRIGGER_* environment variable. Errors name the
// flag or the variable. fs should use flag.ContinueOnError.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return ApplyEnv(fs, getenv, setFlags(fs))
}

// ApplyEnv sets every flag not in skip from its environment variable, when
// that variable is set and non-empty.
func ApplyEnv(fs *flag.FlagSet, getenv func(string) string, skip map[string]bool) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if skip[f.Name] {
			return
		}
		name := EnvName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q (for --%s): %w", name, v, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// ApplyYAML sets the flags of fs from a YAML mapping whose keys are flag
// names (without dashes). Scalars are passed to the flag's Set; a sequence
// calls Set once per item (repeatable flags) — for flags that take a comma
// list, a sequence is also fine. Unknown keys and nested mappings are errors
// that name the file, line and key. Values may reference environment
// variables as ${NAME}. It returns the names of the flags it set.
func ApplyYAML(fs *flag.FlagSet, file string, node *yaml.Node, getenv func(string) string) (map[string]bool, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	set := map[string]bool{}
	if node == nil || node.Kind == 0 {
		return set, nil
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return set, nil
	}
	if node.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: expected a mapping of flag names to values", file, node.Line)
	}
	var errs []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		key := k.Value
		f := fs.Lookup(key)
		if f == nil {
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q%s", file, k.Line, key, suggest(fs, key)))
			continue
		}
		if set[key] {
			errs = append(errs, fmt.Errorf("%s:%d: key %q given twice", file, k.Line, key))
			continue
		}
		set[key] = true
		var values []string
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				continue
			}
			values = []string{v.Value}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					errs = append(errs, fmt.Errorf("%s:%d: %q: list items must be plain values", file, item.Line, key))
					continue
				}
				values = append(values, item.Value)
			}
		default:
			errs = append(errs, fmt.Errorf("%s:%d: %q: expected a value, got a mapping", file, v.Line, key))
			continue
		}
		for _, val := range values {
			val = os.Expand(val, getenv)
			if err := fs.Set(key, val); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %s: %q: %w", file, v.Line, key, val, err))
			}
		}
	}
	return set, errors.Join(errs...)
}

// suggest proposes the closest flag name for a misspelt key.
func suggest(fs *flag.FlagSet, key string) string {
	best, bestDist := "", 4
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(key, f.Name); d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Usage writes a help text for fs: a synopsis, then every flag with its
// environment variable and default.
func Usage(fs *flag.FlagSet, synopsis string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "%s\n\nFlags (each also read from the environment variable shown; flags win):\n", strings.TrimSpace(synopsis))
		var flags []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		for _, f := range flags {
			name, usage := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if name != "" {
				line += " " + name
			}
			fmt.Fprintf(w, "%s\n      %s\n      env %s", line, strings.ReplaceAll(usage, "\n", "\n      "), EnvName(f.Name))
			if !isZeroDefault(f.DefValue) {
				fmt.Fprintf(w, ", default %s", f.DefValue)
			}
			fmt.Fprintln(w)
		}
	}
}

// isZeroDefault reports defaults not worth printing ("default 0s").
func isZeroDefault(v string) bool {
	switch v {
	case "", "0", "0s", "false", "[]", "0B":
		return true
	}
	return false
}
