package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunOneProcess runs the config API, sync and the proxy from one YAML
// file in one process (`outrigger run`), in front of the stand-in app, and
// checks the whole loop: push → file → SIGHUP → greeting over HTTPS, one
// admin listener for all roles, and a clean SIGTERM.
func TestRunOneProcess(t *testing.T) {
	dir := t.TempDir()
	api, app, https, admin := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	dest := filepath.Join(dir, "app.json")
	pid := filepath.Join(dir, "app.pid")
	writeFile(t, dest, `{"greeting": "hello from the start", "healthy": true}`)
	cfg := filepath.Join(dir, "outrigger.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
admin: %s
log-level: info
config:
  listen: %s
  data: %s
sync:
  source: http://%s/v1/configs/app
  dest: %s
  format: json
  pid-file: %s
  health: http://%s/healthz
  health-timeout: 5s
  rollback: true
proxy:
  listen: %s
  upstream: http://${APP_ADDR}
  shutdown-delay: 0s
`, admin, api, filepath.Join(dir, "data"), api, dest, pid, app, https))

	start(t, "legacy app", []string{"outrigger", "legacy-app", "--listen", app, "--config", dest, "--pid-file", pid})
	run := start(t, "run", []string{"outrigger", "run", "--config", cfg}, "APP_ADDR="+app)

	c := insecureClient(nil, false)
	waitFor(t, 20*time.Second, "HTTPS through the proxy", func() bool {
		code, body, _ := get(c, "https://"+https+"/")
		return code == 200 && strings.Contains(body, "hello from the start")
	})
	v := filepath.Join(dir, "v.json")
	writeFile(t, v, `{"greeting": "pushed through run", "healthy": true}`)
	waitFor(t, 20*time.Second, "the in-process config API to take a push", func() bool {
		return exec.Command(bin, "config", "push", "app", v, "--server", "http://"+api).Run() == nil
	})
	waitFor(t, 20*time.Second, "the pushed greeting", func() bool {
		_, body, _ := get(c, "https://"+https+"/")
		return strings.Contains(body, "pushed through run")
	})
	code, body, _ := get(insecureClient(nil, false), "http://"+admin+"/readyz?verbose")
	if code != 200 || !strings.Contains(body, "proxy") || !strings.Contains(body, "sync") {
		t.Fatalf("/readyz = %d %q, want 200 listing proxy and sync", code, body)
	}
	run.Signal(syscall.SIGTERM)
	if code := run.Wait(30 * time.Second); code != 0 {
		t.Fatalf("run exited %d after SIGTERM", code)
	}
}

// TestRunRejectsMisspeltKey: strict parsing names the line, exit code 2.
func TestRunRejectsMisspeltKey(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, cfg, "proxy:\n  listen: \":0\"\n  upstraem: http://127.0.0.1:1\n")
	out, err := exec.Command(bin, "run", "--config", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2; output %s", err, out)
	}
	if !strings.Contains(string(out), "bad.yaml:3") || !strings.Contains(string(out), `"upstraem"`) {
		t.Fatalf("error should name the line and key: %s", out)
	}
}
