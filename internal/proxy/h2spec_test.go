package proxy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestH2spec runs the h2spec HTTP/2 conformance suite against a real proxy
// when OUTRIGGER_H2SPEC names the h2spec binary (it is not part of the
// default run because it needs the external tool).
func TestH2spec(t *testing.T) {
	bin := os.Getenv("OUTRIGGER_H2SPEC")
	if bin == "" {
		t.Skip("set OUTRIGGER_H2SPEC=/path/to/h2spec to run the HTTP/2 conformance suite")
	}
	e := newEnv(t, nil)
	e.waitReady()
	port := strconv.Itoa(e.p.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // deadlock guard
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", "127.0.0.1", "-p", port, "-t", "-k", "-o", "5").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0 failed") {
		t.Fatalf("h2spec: %v\n%s", err, out)
	}
}
