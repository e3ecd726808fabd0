package deploy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/freeport"
)

// TestComposeSmoke runs the services of deploy/compose/compose.yaml as real
// processes of the real binary, on loopback, with the file's own commands:
// only addresses and paths are rewritten (config:7700 and fixed ports to
// free 127.0.0.1 ports, /shared and /data to a temp dir, /run/secrets and
// /seed to deploy/compose). It proves the commands work together, not just
// that they parse: the config API starts with the tokens file, the seed
// push and the sidecar's token are accepted, config-init writes the file,
// the proxy serves the app over HTTPS, and a second push reaches the app
// through sync's SIGHUP.
//
// The app runs as the standalone examples/legacy-app binary with the same
// args (the image's `outrigger legacy-app` embeds the same code). Skipped
// with -short; building two binaries takes a while on a busy machine.
func TestComposeSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the compose smoke test (builds and runs the binary)")
	}
	f, err := decodeCompose(mustRead(t, filepath.Join("compose", "compose.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	composeDir, err := filepath.Abs("compose")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	outrigger := goBuild(t, bin, "outrigger", "../cmd/outrigger")
	legacyApp := goBuild(t, bin, "legacy-app", "../examples/legacy-app")

	tmp := t.TempDir()
	for _, d := range []string{"shared", "data"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	api, app, https, proxyAdmin, syncAdmin := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	rewrite := strings.NewReplacer(
		"--listen=0.0.0.0:7700", "--listen="+api,
		"http://config:7700", "http://"+api,
		"127.0.0.1:8080", app,
		"--listen=:8443", "--listen="+https,
		"127.0.0.1:9901", proxyAdmin,
		"127.0.0.1:9902", syncAdmin,
		"/run/secrets/", composeDir+"/",
		"/seed/", composeDir+"/seed/",
		"/shared/", tmp+"/shared/",
		"--data=/data", "--data="+tmp+"/data",
	)
	argsOf := func(service string) []string {
		s, ok := f.Services[service]
		if !ok {
			t.Fatalf("compose.yaml has no service %q", service)
		}
		out := make([]string, len(s.Command))
		for i, a := range s.Command {
			out[i] = rewrite.Replace(a)
		}
		return out
	}
	for name := range f.Secrets {
		if f.Secrets[name].File != "./"+name {
			t.Fatalf("secret %q is file %q: the rewrite of /run/secrets/ assumes ./%s", name, f.Secrets[name].File, name)
		}
	}

	// Start-up in the order of compose.yaml's depends_on.
	start(t, "config", outrigger, argsOf("config"))
	waitHTTP(t, "http://"+api+"/healthz", nil)
	run(t, "seed", outrigger, argsOf("seed"))
	run(t, "config-init", outrigger, argsOf("config-init"))
	if b, err := os.ReadFile(filepath.Join(tmp, "shared", "app.json")); err != nil || !bytes.Contains(b, []byte("hello from the config API")) {
		t.Fatalf("config-init did not write the seeded config: %q, %v", b, err)
	}
	start(t, "app", legacyApp, argsOf("app")[1:]) // drop the "legacy-app" subcommand
	waitHTTP(t, "http://"+app+"/healthz", nil)
	start(t, "proxy", outrigger, argsOf("proxy"))
	start(t, "sync", outrigger, argsOf("sync"))
	waitHTTP(t, "http://"+proxyAdmin+"/readyz", nil)
	waitHTTP(t, "http://"+syncAdmin+"/readyz", nil)

	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the proxy's self-signed development certificate
	}}
	waitHTTP(t, "https://"+https+"/", insecure, "hello from the config API")

	// A new version: pushed like the seed, applied by sync, seen through the proxy.
	second := filepath.Join(tmp, "second.json")
	if err := os.WriteFile(second, []byte(`{"greeting": "second version", "healthy": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	push := argsOf("seed")
	for i, a := range push {
		if strings.HasSuffix(a, "/seed/app.json") {
			push[i] = second
		}
	}
	run(t, "push", outrigger, push)
	waitHTTP(t, "https://"+https+"/", insecure, "second version")
	waitHTTP(t, "http://"+syncAdmin+"/metrics", nil, `outcome="applied"`)
	waitHTTP(t, "http://"+proxyAdmin+"/metrics", nil, "outrigger_requests_total")
}

// goBuild builds pkg into dir and returns the binary's path.
func goBuild(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// freePort returns a 127.0.0.1 address for a child process to bind.
func freePort(t *testing.T) string { return freeport.Addr(t) }

// syncBuffer is a goroutine-safe log buffer for a child process.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// childEnv is the test's environment without OUTRIGGER_* variables, so that
// only the compose file configures the children.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTRIGGER_") {
			env = append(env, kv)
		}
	}
	return env
}

// start runs a long-lived service until the test ends, then stops it with
// SIGTERM and expects a clean exit; its output is logged if the test fails.
func start(t *testing.T, name, bin string, args []string) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s (%q) did not exit cleanly on SIGTERM: %v", name, args, err)
			}
		case <-time.After(30 * time.Second): // deadlock guard
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not exit within 30s of SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("--- %s %q output:\n%s", name, args, out.String())
		}
	})
}

// run runs a one-shot command to completion and requires exit 0.
func run(t *testing.T, name, bin string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, b)
	}
}

// waitHTTP polls url until it answers 200 (and the body contains want, if
// given), failing after a generous deadline.
func waitHTTP(t *testing.T, url string, client *http.Client, want ...string) {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			last = fmt.Sprintf("%d %q", resp.StatusCode, truncate(string(body), 300))
			if resp.StatusCode == http.StatusOK && (len(want) == 0 || strings.Contains(string(body), want[0])) {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: no 200 with %q within 60s; last answer: %s", url, want, last)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
