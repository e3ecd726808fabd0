package reliability

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startTimeout bounds how long any role may take to come up on a busy
// 2-core machine.
const startTimeout = 30 * time.Second

// plainClient is for the app, the config API and admin endpoints.
var plainClient = &http.Client{Timeout: 10 * time.Second}

// app is a running stand-in legacy app.
type app struct {
	*proc
	addr, config, pidFile string
}

// appConfig is the app's JSON config.
func appConfig(greeting string, healthy bool) string {
	b, _ := json.Marshal(map[string]any{"greeting": greeting, "healthy": healthy})
	return string(b)
}

// startApp writes a config with greeting (unless the file exists) and runs
// the legacy app on addr, waiting until /healthz answers.
func startApp(t testing.TB, dir, addr, greeting string) *app {
	t.Helper()
	a := &app{addr: addr, config: filepath.Join(dir, "app.json"), pidFile: filepath.Join(dir, "app.pid")}
	if !fileExists(a.config) {
		writeFile(t, a.config, appConfig(greeting, true))
	}
	a.proc = start(t, "legacy app", []string{"app", "--listen", addr, "--config", a.config, "--pid-file", a.pidFile})
	waitFor(t, startTimeout, "the legacy app on "+addr, func() bool {
		code, _ := httpGet(plainClient, "http://"+addr+"/healthz")
		return code == http.StatusOK || a.Exited()
	})
	if a.Exited() {
		t.Fatalf("legacy app exited at start:\n%s", a.Output())
	}
	return a
}

// proxyProc is a running outrigger proxy.
type proxyProc struct {
	*proc
	listen, admin string
	url           string // https://listen
}

// startProxy runs outrigger proxy on listen in front of upstream with extra
// flags, waiting until it serves HTTPS (any status) on listen.
func startProxy(t testing.TB, listen, upstream string, tlsConf *tls.Config, extra ...string) *proxyProc {
	t.Helper()
	p := &proxyProc{listen: listen, admin: freeAddr(t), url: "https://" + listen}
	args := append([]string{"outrigger", "proxy", "--listen", listen, "--upstream", upstream,
		"--admin", p.admin, "--access-log=false"}, extra...)
	p.proc = start(t, "proxy "+listen, args)
	c := httpsClient(tlsConf)
	waitFor(t, startTimeout, "the proxy on "+listen, func() bool {
		code, _ := httpGet(c, p.url+"/healthz")
		return code > 0 || p.Exited()
	})
	if p.Exited() {
		t.Fatalf("proxy exited at start:\n%s", p.Output())
	}
	return p
}

// configServer is a running outrigger config serve.
type configServer struct {
	*proc
	listen, url, data string
}

// startConfigServe runs outrigger config serve on listen with --data dataDir
// (or the given extra store flags) and waits until /readyz answers 200.
func startConfigServe(t testing.TB, listen, dataDir string, extra ...string) *configServer {
	t.Helper()
	s := &configServer{listen: listen, url: "http://" + listen, data: dataDir}
	args := []string{"outrigger", "config", "serve", "--listen", listen}
	if dataDir != "" {
		args = append(args, "--data", dataDir)
	}
	s.proc = start(t, "config serve "+listen, append(args, extra...))
	waitFor(t, startTimeout, "config serve on "+listen, func() bool {
		code, _ := httpGet(plainClient, s.url+"/readyz")
		return code == http.StatusOK || s.Exited()
	})
	if s.Exited() {
		t.Fatalf("config serve exited at start:\n%s", s.Output())
	}
	return s
}

// versionJSON is the config API's version object (docs/api.md).
type versionJSON struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	SHA256  string `json:"sha256"`
	Size    int    `json:"size"`
}

// push PUTs body as config name and returns the new version.
func push(apiURL, name, contentType, body string) (int, error) {
	req, err := http.NewRequest(http.MethodPut, apiURL+"/v1/configs/"+name, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := plainClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("push %s: %s: %s", name, resp.Status, bytes.TrimSpace(b))
	}
	var v versionJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, fmt.Errorf("push %s: decode %q: %w", name, b, err)
	}
	return v.Version, nil
}

// history returns the versions the API lists for name.
func history(apiURL, name string) ([]versionJSON, error) {
	resp, err := plainClient.Get(apiURL + "/v1/configs/" + name + "/history")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("history %s: %s", name, resp.Status)
	}
	var h struct {
		Versions []versionJSON `json:"versions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return nil, fmt.Errorf("history %s: %w", name, err)
	}
	return h.Versions, nil
}

// metricValue returns the sum of the samples of metric name in a Prometheus
// text exposition from url (0 when absent).
func metricValue(t testing.TB, url, name string) float64 {
	t.Helper()
	code, body := httpGet(plainClient, url)
	if code != http.StatusOK {
		return 0
	}
	return sumMetric(body, name)
}

// sumMetric sums the samples of metric name (any labels) in a Prometheus
// text exposition; other metrics, comments and malformed lines are skipped.
func sumMetric(body, name string) float64 {
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest != "" && rest[0] != ' ' && rest[0] != '{' {
			continue // a longer metric name with the same prefix
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}
