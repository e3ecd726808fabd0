package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPodInNetworkNamespace is the whole pattern with the kernel mechanics of
// a pod: the legacy app, outrigger proxy and outrigger sync share one network
// namespace ("pod"); the config API and every client live outside it ("cli"),
// reaching the pod only through a veth pair.
func TestPodInNetworkNamespace(t *testing.T) {
	requireNetns(t)
	n := newNetnsPair(t)
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared") // the pod's shared volume
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	const token = "e2e-admin-token-7f3a9c"
	tokens := filepath.Join(dir, "tokens.yaml")
	writeFile(t, tokens, "tokens:\n  - name: e2e\n    token: "+token+"\n    role: admin\n")

	api := "http://" + net.JoinHostPort(n.cliIP, "7700")
	cfgServe := start(t, "config serve", inNS(n.cli, "outrigger", "config", "serve",
		"--listen", net.JoinHostPort(n.cliIP, "7700"), "--data", filepath.Join(dir, "data"), "--tokens", tokens))
	push := func(file string) (string, int) {
		return runIn(t, n.cli, "outrigger", "config", "push", "app", file, "--server", api, "--token", token)
	}
	v1 := filepath.Join(dir, "v1.json")
	writeFile(t, v1, `{"greeting": "hello from v1", "healthy": true}`)
	waitFor(t, 20*time.Second, "config API to accept the first push", func() bool {
		_, code := push(v1)
		return code == 0
	})

	// The init step: sync --once, so the app starts with a config.
	dest := filepath.Join(shared, "app.json")
	pidFile := filepath.Join(shared, "app.pid")
	source := api + "/v1/configs/app"
	if out, code := runIn(t, n.pod, "outrigger", "sync", "--once", "--source", source, "--token", token,
		"--dest", dest, "--format", "json"); code != 0 {
		t.Fatalf("sync --once exited %d:\n%s", code, out)
	}

	start(t, "legacy app", inNS(n.pod, "outrigger", "legacy-app", "--listen", "127.0.0.1:8080",
		"--config", dest, "--pid-file", pidFile))
	start(t, "sync", inNS(n.pod, "outrigger", "sync", "--source", source, "--token", token,
		"--dest", dest, "--format", "json", "--pid-file", pidFile, "--signal", "HUP",
		"--health", "http://127.0.0.1:8080/healthz", "--health-timeout", "5s", "--rollback",
		"--sidecar-id", "pod-e2e", "--admin", "127.0.0.1:9902"))
	proxy := start(t, "proxy", inNS(n.pod, "outrigger", "proxy", "--listen", net.JoinHostPort(n.podIP, "8443"),
		"--upstream", "http://127.0.0.1:8080", "--shutdown-delay", "1s", "--drain-timeout", "10s"))

	dial := dialerIn(n.cli)
	h1 := insecureClient(dial, false)
	h2 := insecureClient(dial, true)
	podURL := "https://" + net.JoinHostPort(n.podIP, "8443")

	waitFor(t, 20*time.Second, "HTTPS through the proxy", func() bool {
		code, body, _ := get(h1, podURL+"/")
		return code == 200 && strings.Contains(body, "hello from v1")
	})

	t.Run("HTTP/2 works", func(t *testing.T) {
		resp, err := h2.Get(podURL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
		}
	})

	t.Run("the app is not exposed outside the pod", func(t *testing.T) {
		c, err := dial(t.Context(), "tcp", net.JoinHostPort(n.podIP, "8080"))
		if err == nil {
			c.Close()
			t.Fatal("plain HTTP to the app's port from outside the pod connected; want refused")
		}
		if !strings.Contains(err.Error(), "refused") {
			t.Fatalf("dial app port: %v, want connection refused", err)
		}
	})

	t.Run("a pushed config reaches the app", func(t *testing.T) {
		v2 := filepath.Join(dir, "v2.json")
		writeFile(t, v2, `{"greeting": "hello from v2", "healthy": true}`)
		if out, code := push(v2); code != 0 {
			t.Fatalf("push v2 exited %d: %s", code, out)
		}
		waitFor(t, 20*time.Second, "v2 greeting through the proxy", func() bool {
			_, body, _ := get(h1, podURL+"/")
			return strings.Contains(body, "hello from v2")
		})
	})

	t.Run("a bad config does not reach the app", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		writeFile(t, bad, `{"greeting": "broken`)
		out, code := push(bad)
		if code == 0 {
			t.Fatalf("push of invalid JSON succeeded: %s", out)
		}
		unhealthy := filepath.Join(dir, "unhealthy.json")
		writeFile(t, unhealthy, `{"greeting": "hello from unhealthy", "healthy": false}`)
		if out, code := push(unhealthy); code != 0 {
			t.Fatalf("push unhealthy exited %d: %s", code, out)
		}
		waitFor(t, 30*time.Second, "sync to report the unhealthy version rolled back", func() bool {
			out, _ := runIn(t, n.cli, "outrigger", "config", "status", "app", "--server", api, "--token", token, "--json")
			return strings.Contains(out, "rolled_back")
		})
		_, body, _ := get(h1, podURL+"/")
		if !strings.Contains(body, "hello from v2") {
			t.Fatalf("after rollback the app serves %q, want the v2 greeting", firstLine(body))
		}
		data, err := os.ReadFile(dest)
		if err != nil || !strings.Contains(string(data), "hello from v2") {
			t.Fatalf("shared file after rollback = %q (%v), want v2", data, err)
		}
	})

	t.Run("SIGTERM drains in-flight requests", func(t *testing.T) {
		type result struct {
			code int
			err  error
		}
		done := make(chan result, 1)
		go func() {
			code, _, err := get(h1, podURL+"/slow?d=2s")
			done <- result{code, err}
		}()
		time.Sleep(300 * time.Millisecond) // let the request reach the app
		proxy.Signal(syscall.SIGTERM)
		r := <-done
		if r.err != nil || r.code != 200 {
			t.Fatalf("in-flight request during drain: code %d, err %v", r.code, r.err)
		}
		if code := proxy.Wait(30 * time.Second); code != 0 {
			t.Fatalf("proxy exited %d after SIGTERM, want 0", code)
		}
	})
	cfgServe.Signal(syscall.SIGTERM)
	if code := cfgServe.Wait(15 * time.Second); code != 0 {
		t.Errorf("config serve exited %d after SIGTERM, want 0", code)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
