package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dockerInstruction is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstruction struct {
	line int
	cmd  string // upper case: FROM, COPY, …
	args string
}

// parseDockerfile splits a Dockerfile into instructions: comments and blank
// lines dropped, backslash continuations joined. It does not expand ARGs.
func parseDockerfile(data []byte) []dockerInstruction {
	var out []dockerInstruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // comment lines inside a continuation are ignored by Docker
		}
		if cur.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		out = appendInstruction(out, start, cur.String())
		cur.Reset()
	}
	return appendInstruction(out, start, cur.String())
}

func appendInstruction(out []dockerInstruction, line int, s string) []dockerInstruction {
	s = strings.TrimSpace(s)
	if s == "" {
		return out
	}
	cmd, args, _ := strings.Cut(s, " ")
	if i := strings.IndexAny(cmd, "\t"); i >= 0 {
		cmd, args = cmd[:i], cmd[i+1:]+" "+args
	}
	return append(out, dockerInstruction{line: line, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(mustRead(t, "Dockerfile"))
	get := func(cmd string) []dockerInstruction {
		var out []dockerInstruction
		for _, i := range ins {
			if i.cmd == cmd {
				out = append(out, i)
			}
		}
		return out
	}
	one := func(cmd, want string) {
		t.Helper()
		got := get(cmd)
		if len(got) != 1 || got[0].args != want {
			t.Errorf("%s: got %v, want exactly one %s %s", cmd, got, cmd, want)
		}
	}
	one("FROM", "scratch")
	one("USER", "65532:65532")
	one("ENTRYPOINT", `["/outrigger"]`)
	one("CMD", `["proxy"]`)

	labels := strings.Join(func() []string {
		var s []string
		for _, l := range get("LABEL") {
			s = append(s, l.args)
		}
		return s
	}(), " ")
	for _, l := range []string{"title", "description", "version", "revision", "source", "licenses", "created"} {
		if !strings.Contains(labels, "org.opencontainers.image."+l+"=") {
			t.Errorf("LABEL org.opencontainers.image.%s missing", l)
		}
	}
	// Every COPY source is something scripts/image.sh puts in the context.
	script := string(mustRead(t, "../scripts/image.sh"))
	for _, c := range get("COPY") {
		f := strings.Fields(c.args)
		src := f[len(f)-2]
		if !strings.Contains(script, `"$ctx/`+src+`"`) && !strings.Contains(script, `$ctx/`+src) {
			t.Errorf("line %d: COPY %s: scripts/image.sh does not put %s in the build context", c.line, c.args, src)
		}
	}
	if got := get("ADD"); len(got) > 0 {
		t.Errorf("ADD %v: use COPY (ADD fetches URLs and unpacks archives)", got)
	}
}

func TestParseDockerfile(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"simple", "FROM scratch\nUSER 1:1\n", []string{"FROM scratch", "USER 1:1"}},
		{"comments and blanks", "# c\n\nFROM scratch # not a comment\n", []string{"FROM scratch # not a comment"}},
		{"continuation", "LABEL a=1 \\\n  b=2\n", []string{"LABEL a=1  b=2"}},
		{"comment in continuation", "RUN a \\\n# x\n  b\n", []string{"RUN a  b"}},
		{"dangling continuation", "LABEL a=1 \\", []string{"LABEL a=1"}},
		{"lower case", "from scratch\n", []string{"FROM scratch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, i := range parseDockerfile([]byte(tt.in)) {
				got = append(got, i.cmd+" "+i.args)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("parseDockerfile(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestImageScriptSyntax(t *testing.T) {
	bash := requireTool(t, "bash", "bash")
	out, err := exec.CommandContext(t.Context(), bash, "-n", "../scripts/image.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("bash -n scripts/image.sh: %v\n%s", err, out)
	}
}

// TestImageBuild runs scripts/image.sh: it builds the binary and the image
// with podman and checks size, user, entrypoint and labels. It takes a
// minute or more, so it runs only with OUTRIGGER_IMAGE_TEST=1. Exit code 3
// (podman cannot build in this sandbox) skips.
func TestImageBuild(t *testing.T) {
	if os.Getenv("OUTRIGGER_IMAGE_TEST") != "1" {
		t.Skip("set OUTRIGGER_IMAGE_TEST=1 to build the container image (needs podman)")
	}
	requireTool(t, "podman", "podman")
	cmd := exec.CommandContext(t.Context(), "bash", filepath.Join("..", "scripts", "image.sh"))
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-test", "IMAGE=localhost/outrigger-test")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
		t.Skip("podman cannot build here (see output)")
	}
	if err != nil {
		t.Fatalf("scripts/image.sh: %v", err)
	}
	_ = exec.Command("podman", "rmi", "localhost/outrigger-test:v0.0.0-test").Run()
}
