package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReleaseBuildLeavesOutTemplates guards the release build (-tags
// grpcnotrace, as in the Makefile, scripts/image.sh and bench/run.sh)
// against linking text/template again. A binary that can reach
// reflect.Value.MethodByName, as text/template does, keeps every exported
// method of every type because the linker cannot tell which ones a template
// might call: that was 3 MB of code and tables and ~2.5 MiB of resident
// memory in every role (docs/memory.md). golang.org/x/net/trace is how gRPC
// links html/template; the tag leaves it out.
func TestReleaseBuildLeavesOutTemplates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-deps", "-tags", "grpcnotrace", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "text/template", "html/template", "golang.org/x/net/trace":
			t.Errorf("the release build links %s (see the comment above for why it must not)", pkg)
		}
	}
}
