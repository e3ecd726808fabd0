package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecodeManifests feeds arbitrary YAML to the strict manifest decoder:
// it must never panic, and whatever it accepts has a known kind and a name.
func FuzzDecodeManifests(f *testing.F) {
	if data, err := os.ReadFile(filepath.FromSlash("kubernetes/overlays/production/legacy-app-pdb.yaml")); err == nil {
		f.Add(data)
	}
	// Small seeds: the fuzzer stalls on the full example files (their size makes every mutation
	// and minimisation step slow); TestManifestsDecodeStrictly covers those.
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      initContainers:\n        - {name: s, image: i, restartPolicy: Always, args: [sync]}\n      containers:\n        - name: a\n          resources: {limits: {memory: 64Mi}}\n"))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n---\n---\n"))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: &a b, c: *a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := decodeManifests("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, o := range set {
			if o.name == "" || o.obj == nil {
				t.Fatalf("accepted %s without a name or object", o.where)
			}
			if _, err := newTyped(apiVersionOf(o.kind), o.kind); err != nil {
				t.Fatalf("accepted unknown kind %q", o.kind)
			}
		}
	})
}

func apiVersionOf(kind string) string {
	switch kind {
	case "Deployment":
		return "apps/v1"
	case "PodDisruptionBudget":
		return "policy/v1"
	}
	return "v1"
}

// FuzzParseArgs feeds arbitrary command lines and environments to the
// container argument checker: no panics, and an accepted role is one the
// binary has.
func FuzzParseArgs(f *testing.F) {
	f.Add("proxy\x00--listen=:8443\x00--admin=:9901", "OUTRIGGER_LOG_LEVEL=debug")
	f.Add("sync\x00--once\x00--source=file:///x\x00--dest=/y", "")
	f.Add("config\x00serve\x00--listen", "OUTRIGGER_TOKENS=")
	f.Add("legacy-app\x00-listen\x00127.0.0.1:1", "X=1")
	f.Fuzz(func(t *testing.T, args, env string) {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\x00")
		}
		envs := map[string]string{}
		for _, kv := range strings.Split(env, "\n") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				envs[k] = v
			}
		}
		p, err := parseArgs(argv, envs)
		if err != nil {
			return
		}
		switch p.role {
		case "", "proxy", "sync", "config serve", "legacy-app":
		default:
			t.Fatalf("accepted role %q", p.role)
		}
		_ = p.validate(t.TempDir())
	})
}

// FuzzParseDockerfile: the Dockerfile splitter never panics and never
// returns an instruction without a command.
func FuzzParseDockerfile(f *testing.F) {
	if data, err := os.ReadFile("Dockerfile"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("FROM a \\\n# c\n\\\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, i := range parseDockerfile(data) {
			if i.cmd == "" || strings.ContainsAny(i.cmd, " \n") {
				t.Fatalf("instruction with bad command %q", i.cmd)
			}
		}
	})
}
