package reliability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawHTTP sends one raw HTTP/1.1 request over plain TCP (so no client
// library cleans or escapes the path) and returns the status code.
func rawHTTP(t testing.TB, addr, raw string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestHostileConfigNames sends config names that must never become keys or
// paths: traversal, slashes, NUL, control bytes, 10 KB names. Each is a 400
// from the config API, and nothing is stored.
func TestHostileConfigNames(t *testing.T) {
	api := startConfigServe(t, freeAddr(t), filepath.Join(t.TempDir(), "data"))
	body := `{"a":1}`
	cases := []struct {
		name string
		path string // raw request path after /v1/configs/
	}{
		{"dot dot", ".."},
		{"encoded dot dot", "%2e%2e"},
		{"dot", "."},
		{"leading dot", ".hidden"},
		{"encoded slash", "a%2Fb"},
		{"encoded traversal", "..%2F..%2Fetc%2Fpasswd"},
		{"NUL", "a%00b"},
		{"newline", "a%0Ab"},
		{"space", "a%20b"},
		{"non-ASCII", "caf%C3%A9"},
		{"10 KB long", strings.Repeat("a", 10<<10)},
		{"129 characters", strings.Repeat("b", 129)},
	}
	refused := 0
	for _, tc := range cases {
		if t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"PUT", "GET"} {
				raw := fmt.Sprintf("%s /v1/configs/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
					method, tc.path, api.listen, len(body), body)
				if code := rawHTTP(t, api.listen, raw); code != http.StatusBadRequest {
					t.Errorf("%s /v1/configs/%.40s: status %d, want 400", method, tc.path, code)
				}
			}
		}) {
			refused++
		}
	}
	code, listing := httpGet(plainClient, api.url+"/v1/configs")
	var list struct {
		Configs []versionJSON `json:"configs"`
	}
	if err := json.Unmarshal([]byte(listing), &list); code != http.StatusOK || err != nil || len(list.Configs) != 0 {
		t.Errorf("after hostile names the config list is %d %.200s (%v), want empty", code, listing, err)
	}
	reportCounts(t, "hostile-config-names", int64(len(cases)), int64(len(cases)-refused), "names; PUT and GET each must be 400")
	entries, _ := os.ReadDir(api.data)
	for _, e := range entries {
		if strings.Contains(e.Name(), "passwd") || strings.HasPrefix(e.Name(), "..") {
			t.Errorf("data directory holds %q", e.Name())
		}
	}
}

// listensOn reports whether /proc/net/tcp{,6} has a listening socket on
// port, and whether any of them is on a non-loopback address.
func listensOn(t testing.TB, port int) (listening, exposed bool) {
	t.Helper()
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		l, e := parseListeners(string(b), port)
		listening, exposed = listening || l, exposed || e
	}
	return listening, exposed
}

// parseListeners reads one /proc/net/tcp{,6} table: is anything listening on
// port, and is any such socket bound beyond loopback (or unparseable, which
// counts as exposed: the test must not pass on text it cannot read).
func parseListeners(table string, port int) (listening, exposed bool) {
	lines := strings.Split(table, "\n")
	if len(lines) > 0 {
		lines = lines[1:] // header
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) < 4 || fields[3] != "0A" { // 0A = LISTEN
			continue
		}
		host, portHex, ok := strings.Cut(fields[1], ":")
		p, err := strconv.ParseUint(portHex, 16, 16)
		if !ok || err != nil || int(p) != port {
			continue
		}
		listening = true
		if !loopbackHex(host) {
			exposed = true
		}
	}
	return listening, exposed
}

// loopbackHex reports whether a /proc/net/tcp address (hex, in the kernel's
// byte order) is 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104.
func loopbackHex(host string) bool {
	switch len(host) {
	case 8: // IPv4, little-endian: the first octet is the last byte
		return strings.HasSuffix(host, "7F")
	case 32:
		return host == "00000000000000000000000001000000" ||
			strings.HasPrefix(host, "0000000000000000FFFF0000") && strings.HasSuffix(host, "7F")
	}
	return false
}

// TestSecurityDefaults checks the defaults that keep a sidecar from
// exposing more than the app it fronts.
func TestSecurityDefaults(t *testing.T) {
	t.Run("admin listeners bind loopback by default", func(t *testing.T) {
		cases := []struct {
			role string
			port int
			argv func(dir string) []string
		}{
			{"proxy", 9901, func(dir string) []string {
				return []string{"outrigger", "proxy", "--listen", freeAddr(t), "--upstream", "http://" + freeAddr(t)}
			}},
			{"sync", 9902, func(dir string) []string {
				src := filepath.Join(dir, "src.json")
				writeFile(t, src, `{"a":1}`)
				return []string{"outrigger", "sync", "--source", "file://" + src, "--dest", filepath.Join(dir, "dest.json")}
			}},
		}
		for _, tc := range cases {
			t.Run(tc.role, func(t *testing.T) {
				if l, _ := listensOn(t, tc.port); l {
					t.Skipf("port %d is taken by another process on this machine; cannot observe the default", tc.port)
				}
				p := start(t, tc.role, tc.argv(t.TempDir()), "OUTRIGGER_ADMIN=")
				var listening, exposed bool
				waitFor(t, startTimeout, fmt.Sprintf("%s's default admin listener on port %d", tc.role, tc.port), func() bool {
					listening, exposed = listensOn(t, tc.port)
					return listening || p.Exited()
				})
				if p.Exited() {
					if strings.Contains(p.Output(), "address already in use") {
						t.Skipf("port %d was taken meanwhile", tc.port)
					}
					t.Fatalf("%s exited:\n%s", tc.role, p.Output())
				}
				if exposed {
					t.Fatalf("%s's default admin listener on port %d is bound beyond loopback", tc.role, tc.port)
				}
			})
		}
	})

	t.Run("config API refuses a non-loopback listen without tokens", func(t *testing.T) {
		// Addresses this machine does not have: if validation were missing
		// the bind would fail too, but with exit 1 rather than 2.
		for _, addr := range []string{"192.0.2.1:7700", "[2001:db8::1]:7700", "example.com:7700"} {
			p := start(t, "config serve "+addr, []string{"outrigger", "config", "serve", "--listen", addr,
				"--data", filepath.Join(t.TempDir(), "data")})
			if code := p.Wait(20 * time.Second); code != 2 {
				t.Errorf("config serve --listen %s without --tokens exited %d, want 2:\n%s", addr, code, p.Output())
			} else if !strings.Contains(p.Output(), "--tokens") {
				t.Errorf("config serve --listen %s: message does not name --tokens:\n%s", addr, p.Output())
			}
		}
	})

	t.Run("tokens never appear in logs, metrics or status", func(t *testing.T) {
		dir := t.TempDir()
		const (
			token = "reliability-secret-token-3b9e1f0c"
			wrong = "reliability-wrong-token-77d2aa41"
		)
		tokens := filepath.Join(dir, "tokens.yaml")
		writeFile(t, tokens, "tokens:\n  - name: ops\n    token: "+token+"\n    role: admin\n")
		apiAdmin := freeAddr(t)
		api := startConfigServe(t, freeAddr(t), filepath.Join(dir, "data"),
			"--tokens", tokens, "--admin", apiAdmin, "--log-level", "debug")
		authPush := func(tok, greeting string) int {
			req, _ := http.NewRequest(http.MethodPut, api.url+"/v1/configs/app", strings.NewReader(appConfig(greeting, true)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := plainClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := authPush(token, "v1"); code != http.StatusCreated {
			t.Fatalf("push with the token: %d, want 201", code)
		}
		if code := authPush(wrong, "v2"); code != http.StatusUnauthorized {
			t.Fatalf("push with a wrong token: %d, want 401", code)
		}
		cli := start(t, "config push", []string{"outrigger", "config", "push", "app", writeTemp(t, dir, "v3.json", appConfig("v3", true)),
			"--server", api.url, "--token", token})
		if code := cli.Wait(30 * time.Second); code != 0 {
			t.Fatalf("config push exited %d:\n%s", code, cli.Output())
		}
		syncAdmin := freeAddr(t)
		dest := filepath.Join(dir, "app.json")
		syncer := start(t, "sync", []string{"outrigger", "sync", "--source", api.url + "/v1/configs/app",
			"--token", token, "--dest", dest, "--format", "json", "--admin", syncAdmin, "--log-level", "debug"})
		waitFor(t, startTimeout, "sync to apply v3", func() bool {
			b, _ := os.ReadFile(dest)
			return strings.Contains(string(b), "v3")
		})
		// A bad token at a sync: its errors must not echo it either.
		badSync := start(t, "sync with a wrong token", []string{"outrigger", "sync", "--source", api.url + "/v1/configs/app",
			"--token", wrong, "--dest", filepath.Join(dir, "other.json"), "--format", "json", "--admin", "", "--log-level", "debug"})
		time.Sleep(2 * time.Second)
		places := map[string]string{
			"config serve logs":     api.Output(),
			"config push output":    cli.Output(),
			"sync logs":             syncer.Output(),
			"wrong-token sync logs": badSync.Output(),
		}
		for name, url := range map[string]string{
			"config API /metrics":               api.url + "/metrics",
			"config API admin /metrics":         "http://" + apiAdmin + "/metrics",
			"config API admin /status":          "http://" + apiAdmin + "/status",
			"config API /v1/configs/app/status": api.url + "/v1/configs/app/status",
			"sync /metrics":                     "http://" + syncAdmin + "/metrics",
			"sync /status":                      "http://" + syncAdmin + "/status",
		} {
			_, body := httpGet(plainClient, url)
			places[name] = body
		}
		for name, text := range places {
			for _, secret := range []string{token, wrong} {
				if strings.Contains(text, secret) {
					t.Errorf("%s contains a bearer token", name)
				}
			}
		}
	})
}

func writeTemp(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, content)
	return p
}
