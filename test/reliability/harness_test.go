// Package reliability is Outrigger's "prove it survives" suite: each test
// drives the compiled outrigger binary as real processes on 127.0.0.1 (the
// stand-in legacy app, the proxy, sync, the config API) under bounded load
// from internal/loadgen, injects one fault (certificate rotation, config
// churn, kill -9, rolling restart, store loss, hostile input) and asserts what
// a client sees. Every scenario logs one line
//
//	scenario=NAME sent=N failed=N p99=D …
//
// and, when RELIABILITY_REPORT names a file, appends the same figures to it
// as one JSON object per line (docs/reliability.md is written from it).
//
// It does not measure throughput (bench/ does) and it does not need root:
// everything listens on 127.0.0.1. Scenarios that need an external tool
// (h2spec, testssl.sh) skip when it is missing, and fail instead under
// CI=true. Scenario lengths are configurable by environment variables (see
// envDuration callers); defaults keep the whole package within a few minutes.
package reliability

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/loadgen"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/freeport"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/proctest"
)

// bin is the outrigger binary, built on first use and shared by all tests;
// appCmd is the argv prefix that runs the stand-in legacy app (the hidden
// "outrigger legacy-app" subcommand, or examples/legacy-app built separately
// when the binary lacks it). The build is lazy so that the parser unit tests
// and fuzz targets of this package do not pay for it.
var (
	bin, binDir string
	appCmd      []string
	buildOnce   sync.Once
	buildErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// needBinaries builds the binaries once, failing the test if that fails.
func needBinaries(t testing.TB) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "outrigger-reliability-")
		if buildErr != nil {
			return
		}
		bin = filepath.Join(binDir, "outrigger")
		if buildErr = goBuild(bin, "../../cmd/outrigger"); buildErr != nil {
			buildErr = fmt.Errorf("building outrigger: %w", buildErr)
			return
		}
		appCmd = []string{bin, "legacy-app"}
		if out, _ := exec.Command(bin, "legacy-app", "--help").CombinedOutput(); strings.Contains(string(out), "unknown command") {
			app := filepath.Join(binDir, "legacy-app")
			if buildErr = goBuild(app, "../../examples/legacy-app"); buildErr != nil {
				buildErr = fmt.Errorf("building legacy-app: %w", buildErr)
				return
			}
			appCmd = []string{app}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

func goBuild(out, pkg string) error {
	build := exec.Command("go", "build", "-o", out, pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	return build.Run()
}

// proc is a child process (internal/testutil/proctest).
type proc = proctest.Proc

// start runs argv ("outrigger" as argv[0] means the built binary, "app" the
// legacy app) and registers cleanup that kills it.
func start(t testing.TB, name string, argv []string, env ...string) *proc {
	t.Helper()
	needBinaries(t)
	switch argv[0] {
	case "outrigger":
		argv = append([]string{bin}, argv[1:]...)
	case "app":
		argv = append(append([]string{}, appCmd...), argv[1:]...)
	}
	return proctest.Start(t, name, argv, env...)
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a free 127.0.0.1 port as "127.0.0.1:N".
func freeAddr(t testing.TB) string { return freeport.Addr(t) }

// envDuration reads a duration from the environment variable name, else def.
func envDuration(t testing.TB, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration like 10s", name, v)
	}
	return d
}

// requireTool returns the path of an external tool, skipping the test when
// it is absent, or failing under CI=true where .ci/run must have installed it.
func requireTool(t testing.TB, names ...string) string {
	t.Helper()
	// go install puts tools in $GOBIN or $GOPATH/bin (default ~/go/bin),
	// which is often not on PATH.
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range filepath.SplitList(os.Getenv("GOPATH")) {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range dirs {
			if p := filepath.Join(d, n); fileExists(p) {
				return p
			}
		}
	}
	msg := fmt.Sprintf("%s not installed (see docs/reliability.md for how .ci/run installs it)", strings.Join(names, " / "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// record is one scenario's figures, one JSON line in RELIABILITY_REPORT.
type record struct {
	Scenario string           `json:"scenario"`
	Sent     int64            `json:"sent"`
	OK       int64            `json:"ok"`
	Failed   int64            `json:"failed"`
	P50ms    float64          `json:"p50_ms"`
	P99ms    float64          `json:"p99_ms"`
	Maxms    float64          `json:"max_ms"`
	Status   map[int]int64    `json:"by_status,omitempty"`
	Errors   map[string]int64 `json:"errors,omitempty"`
	Note     string           `json:"note,omitempty"`
	Time     string           `json:"time"`
}

var reportMu sync.Mutex

// report logs the one-line result of a scenario and appends it to
// $RELIABILITY_REPORT (JSON lines) when set.
func report(t testing.TB, scenario string, r loadgen.Result, note string) {
	t.Helper()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	t.Logf("scenario=%s sent=%d failed=%d p99=%s p50=%s max=%s status=%v errors=%v %s",
		scenario, r.Sent, r.Failed, r.P99, r.P50, r.Max, r.ByStatus, r.Errors, note)
	if len(r.ErrorSamples) > 0 {
		t.Logf("scenario=%s error samples: %q", scenario, r.ErrorSamples)
	}
	appendRecord(t, record{Scenario: scenario, Sent: r.Sent, OK: r.OK, Failed: r.Failed,
		P50ms: ms(r.P50), P99ms: ms(r.P99), Maxms: ms(r.Max), Status: r.ByStatus, Errors: r.Errors,
		Note: note, Time: time.Now().UTC().Format(time.RFC3339)})
}

// appendRecord appends rec as one JSON line to $RELIABILITY_REPORT, if set.
func appendRecord(t testing.TB, rec record) {
	t.Helper()
	path := os.Getenv("RELIABILITY_REPORT")
	if path == "" {
		return
	}
	line, err := json.Marshal(rec)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Errorf("report to RELIABILITY_REPORT %q: %v", path, err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Errorf("report to RELIABILITY_REPORT %q: %v", path, err)
	}
}

// reportCounts records a scenario without a load run (crash loops, probes,
// conformance tools): sent is how many operations were checked, failed how
// many went wrong.
func reportCounts(t testing.TB, scenario string, sent, failed int64, note string) {
	t.Helper()
	res := loadgen.Result{Sent: sent, OK: sent - failed, Failed: failed}
	t.Logf("scenario=%s sent=%d failed=%d %s", scenario, sent, failed, note)
	appendRecord(t, record{Scenario: scenario, Sent: res.Sent, OK: res.OK, Failed: res.Failed, Note: note,
		Time: time.Now().UTC().Format(time.RFC3339)})
}

// runLoad runs loadgen with a guard against a hung run.
func runLoad(t testing.TB, ctx context.Context, o loadgen.Options) loadgen.Result {
	t.Helper()
	r, err := loadgen.Run(ctx, o)
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	return r
}

// goLoad starts runLoad in the background; the returned func waits for it.
func goLoad(t testing.TB, o loadgen.Options) func() loadgen.Result {
	t.Helper()
	ch := make(chan loadgen.Result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), o.Duration+2*time.Minute)
	go func() {
		r, err := loadgen.Run(ctx, o)
		if err != nil {
			t.Errorf("loadgen: %v", err)
		}
		ch <- r
	}()
	return func() loadgen.Result {
		defer cancel()
		return <-ch
	}
}

// httpGet fetches url and returns status and body (-1 and "" on errors).
func httpGet(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return -1, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// insecureTLS trusts any certificate: the proxy's default is self-signed.
func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true}
}

// httpsClient is a client for probes (not load) trusting tlsConf.
func httpsClient(tlsConf *tls.Config) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true},
	}
}
