package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoLinesWork runs `outrigger demo` as a user would and pastes every
// command it prints into a shell, in order: each must succeed except the
// push it announces as rejected, and the greeting must follow the pushes.
func TestDemoLinesWork(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is needed to paste the demo's lines (Debian package curl)")
		}
		t.Skip("curl not installed")
	}
	// Pick ports that are free, but also occupy the default HTTPS port's
	// fallback logic by passing explicit ones: the demo must say which it chose.
	demo := start(t, "demo", []string{"outrigger", "demo",
		"--https-port", portOf(t, freeAddr(t)), "--api-port", portOf(t, freeAddr(t)),
		"--app-port", portOf(t, freeAddr(t)), "--admin", freeAddr(t)})
	var out string
	waitFor(t, 60*time.Second, "the demo to print what to try", func() bool {
		out = demo.Output()
		return strings.Contains(out, "Try, in a second terminal:")
	})
	time.Sleep(200 * time.Millisecond) // the rest of the block is printed at once; let it land
	out = demo.Output()

	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "curl ") || strings.HasPrefix(l, bin+" ") {
			lines = append(lines, l)
		}
	}
	if len(lines) < 8 {
		t.Fatalf("demo printed %d command lines, want at least 8:\n%s", len(lines), out)
	}
	var transcript strings.Builder
	for _, l := range lines {
		cmd := exec.Command("sh", "-c", l)
		b, err := cmd.CombinedOutput()
		transcript.WriteString("$ " + l + "\n" + string(b) + "\n")
		rejected := strings.Contains(l, "broken.json")
		switch {
		case rejected && err == nil:
			t.Errorf("%q succeeded; the demo says it is rejected:\n%s", l, b)
		case rejected && !strings.Contains(string(b), "422"):
			t.Errorf("%q: want a 422 from the config API, got:\n%s", l, b)
		case !rejected && err != nil:
			t.Errorf("%q failed: %v\n%s", l, err, b)
		}
		if strings.Contains(l, "v2.json") {
			// sync applies the push asynchronously; the next curl must see it.
			waitFor(t, 20*time.Second, "v2 to be applied", func() bool {
				b, _ := exec.Command("sh", "-c", lines[0]).Output()
				return strings.Contains(string(b), "(v2)")
			})
		}
		if strings.Contains(l, "unhealthy.json") {
			waitFor(t, 30*time.Second, "sync to roll the unhealthy version back", func() bool {
				b, _ := exec.Command(bin, "config", "status", "app", "--json", "--server", serverFlag(l)).Output()
				return strings.Contains(string(b), "rolled_back")
			})
		}
	}
	final, _ := exec.Command("sh", "-c", lines[0]).Output()
	if !strings.Contains(string(final), "(v2)") {
		t.Errorf("after the demo's steps the app serves %q, want the v2 greeting", firstLine(string(final)))
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", transcript.String())
	}

	// Ctrl-C stops everything cleanly and removes the temporary directory.
	dir := ""
	for _, f := range strings.Fields(out) {
		if strings.Contains(f, "outrigger-demo-") {
			dir = strings.TrimRight(f, ").")
			break
		}
	}
	demo.Signal(syscall.SIGINT)
	if code := demo.Wait(30 * time.Second); code != 0 {
		t.Fatalf("demo exited %d after Ctrl-C:\n%s", code, demo.Output())
	}
	if dir == "" {
		t.Fatal("demo did not name its temporary directory")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temporary directory %s still exists after Ctrl-C (stat: %v)", dir, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) > 0 {
		t.Fatalf("leftover files: %v", matches)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	return addr[i+1:]
}

func serverFlag(line string) string {
	f := strings.Fields(line)
	for i := range f {
		if f[i] == "--server" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}
