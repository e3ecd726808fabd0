// Package ui drives the config API's read-only dashboard (/ui/) in a real
// headless Chromium against a real config API server: it pushes versions
// and reports sidecar statuses over HTTP and checks that the open page
// follows them live, without a reload. It needs /usr/bin/chromium (Debian
// package chromium); without it the test skips, or fails under CI=true.
// It saves a screenshot to $UI_ARTIFACTS (default: a temp dir).
package ui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/configapi"
)

const chromiumPath = "/usr/bin/chromium"

// lockedBuffer collects the server's and the browser's output for failure
// reports.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// apiServer is a running config API, its metrics and the token (if any)
// the test's own requests carry.
type apiServer struct {
	base, token string
	reg         *prometheus.Registry
}

// apiOptions tune the server: Tokens is the YAML of --tokens ("" = no
// authentication), MaxWait caps long-polls (0 = the default).
type apiOptions struct {
	Tokens  string
	MaxWait time.Duration
}

// startAPI runs a real config API server (bbolt in a temp dir) on
// 127.0.0.1:0.
func startAPI(t *testing.T, opts apiOptions) *apiServer {
	t.Helper()
	cfg := configapi.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.DrainTimeout = 5 * time.Second
	if opts.MaxWait > 0 {
		cfg.MaxWait = opts.MaxWait
	}
	if opts.Tokens != "" {
		cfg.Tokens = filepath.Join(t.TempDir(), "tokens.yaml")
		if err := os.WriteFile(cfg.Tokens, []byte(opts.Tokens), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	srv, err := configapi.New(cfg, configapi.Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Registry: reg, Gatherer: reg})
	if err != nil {
		t.Fatalf("configapi.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("config api Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("config api did not stop")
		}
		if t.Failed() {
			t.Logf("config api log:\n%s", logs.String())
		}
	})
	return &apiServer{base: "http://" + srv.Addr().String(), reg: reg}
}

// metric returns the value of a gauge or counter, or the sample count of a
// histogram, whose labels include want; 0 if there is none.
func (a *apiServer) metric(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// waitMetric polls a metric until cond holds.
func (a *apiServer) waitMetric(t *testing.T, ctx context.Context, what, name string, labels map[string]string, cond func(float64) bool) {
	t.Helper()
	for !cond(a.metric(t, name, labels)) {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s (%s = %v): %v", what, name, a.metric(t, name, labels), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call makes one API request and checks its status.
func (a *apiServer) call(t *testing.T, method, path, ctype, body string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := a.base + path
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	req.Header.Set("Content-Type", ctype)
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, res.StatusCode, want, b)
	}
}

func (a *apiServer) push(t *testing.T, name, content string) {
	t.Helper()
	a.call(t, http.MethodPut, "/v1/configs/"+name, "application/json", content, http.StatusCreated)
}

func (a *apiServer) report(t *testing.T, name, sidecar string, version int, outcome, errText string) {
	t.Helper()
	body := fmt.Sprintf(`{"version":%d,"outcome":%q,"error":%q}`, version, outcome, errText)
	a.call(t, http.MethodPut, "/v1/configs/"+name+"/status/"+sidecar, "application/json", body, http.StatusNoContent)
}

// browser starts headless Chromium with the flags this sandbox needs (root,
// no GPU, no network beyond loopback) and returns a tab context bounded by
// the test's overall deadline.
func browser(t *testing.T, deadline time.Duration) (context.Context, *lockedBuffer) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("%s not found (install the Debian package chromium): %v", chromiumPath, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out := &lockedBuffer{}
	root, cancelRoot := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancelRoot)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root,
		chromedp.ExecPath(chromiumPath),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)); err != nil { // start the browser now
		t.Fatalf("starting %s: %v\n%s", chromiumPath, err, out.String())
	}
	return tab, out
}

// waitFor evaluates the JavaScript boolean expression until it is true.
// chromedp.Poll is not used: it builds its predicate with new Function,
// which the page's Content-Security-Policy (rightly) forbids.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			body, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			t.Fatalf("waiting for %s: %v (last evaluation error: %v)\npage text:\n%s", what, ctx.Err(), last, body)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

const v1 = `{
  "listen": "127.0.0.1",
  "port": 8080,
  "workers": 4,
  "log_level": "info",
  "features": {"search": true, "export": false}
}
`

const v2 = `{
  "listen": "127.0.0.1",
  "port": 8081,
  "workers": 4,
  "log_level": "info",
  "features": {"search": true, "export": true}
}
`

// TestDashboardFollowsRollout is the user's view of a rollout: the page
// shows version 1 and its sidecar, then follows a push and the sidecar's
// report live, and diffs the two versions.
func TestDashboardFollowsRollout(t *testing.T) {
	ctx, chromeOut := browser(t, 60*time.Second)
	api := startAPI(t, apiOptions{})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", chromeOut.String())
		}
	})

	// Page messages: uncaught exceptions and CSP violations fail the test.
	var msgMu sync.Mutex
	var problems []string
	msgCtx, stopMsgs := context.WithCancel(ctx)
	messages := chromedp.Console(msgCtx)
	msgsDone := make(chan struct{})
	go func() {
		defer close(msgsDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				msgMu.Lock()
				problems = append(problems, m.String())
				msgMu.Unlock()
			}
		}
	}()
	defer func() {
		stopMsgs()
		<-msgsDone
		msgMu.Lock()
		defer msgMu.Unlock()
		for _, p := range problems {
			t.Errorf("page console: %s", p)
		}
	}()

	api.push(t, "app", v1)
	api.push(t, "billing", `{"currency": "EUR"}`)
	api.report(t, "app", "web-1", 1, "applied", "")

	if err := chromedp.Do(ctx, chromedp.Navigate(api.base+"/ui/#/config/app")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitFor(t, ctx, "the config list", `[...document.querySelectorAll('#configs tbody tr')].map(r => r.cells[0].textContent + '=' + r.cells[1].textContent).join(',') === 'app=1,billing=1'`)
	waitFor(t, ctx, "version 1 selected", `document.getElementById('detail-latest').textContent === 'v1' && document.querySelectorAll('#history tbody tr').length === 1`)
	waitFor(t, ctx, "the content of version 1", `document.getElementById('content').textContent.includes('"port": 8080')`)
	waitFor(t, ctx, "web-1 converged on v1", `document.getElementById('rollout-summary').dataset.converged === 'yes' && document.querySelector('#rollout tbody tr[data-sidecar="web-1"]').className === 'current'`)
	eval[bool](t, ctx, `window.__sameDocument = true`) // disappears on a reload

	// The page's long-poll is parked in the server when the push lands, and
	// the push wakes it.
	api.waitMetric(t, ctx, "the page's long-poll", "outrigger_config_watchers", nil, func(v float64) bool { return v >= 1 })
	api.push(t, "app", v2)
	waitFor(t, ctx, "version 2 to arrive live", `document.getElementById('detail-latest').textContent === 'v2' && document.querySelectorAll('#history tbody tr').length === 2`)
	waitFor(t, ctx, "web-1 shown behind", `document.getElementById('rollout-summary').dataset.converged === 'no' && document.querySelector('#rollout tbody tr[data-sidecar="web-1"]').className === 'stale'`)
	saveScreenshot(t, ctx, "dashboard-rolling-out.png")
	if got := eval[string](t, ctx, `document.getElementById('rollout-summary').textContent`); !strings.HasPrefix(got, "Not converged: 0 of 1 sidecars on v2") {
		t.Errorf("rollout summary %q", got)
	}
	api.waitMetric(t, ctx, "the long-poll woken by the push", "outrigger_config_watch_wake_seconds", nil, func(v float64) bool { return v >= 1 })
	waitFor(t, ctx, "the list to show version 2", `[...document.querySelectorAll('#configs tbody tr')].some(r => r.cells[0].textContent === 'app' && r.cells[1].textContent === '2')`)

	api.report(t, "app", "web-1", 2, "applied", "")
	waitFor(t, ctx, "web-1 converged on v2", `document.getElementById('rollout-summary').dataset.converged === 'yes' && document.querySelector('#rollout tbody tr[data-sidecar="web-1"]').className === 'current'`)

	// The diff defaults to the two newest versions; pick them explicitly
	// anyway, as a user would.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#diff-a"), "1"),
		chromedp.SetValue(chromedp.CSS("#diff-b"), "2"),
	); err != nil {
		t.Fatalf("choosing versions to compare: %v", err)
	}
	eval[bool](t, ctx, `document.getElementById('diff-b').dispatchEvent(new Event('change')), true`)
	waitFor(t, ctx, "the diff of 1 → 2", `(() => {
		const rows = (cls) => [...document.querySelectorAll('#diff tbody tr.' + cls)].map(r => r.cells[3].textContent);
		const del = rows('del'), add = rows('add');
		return del.includes('  "port": 8080,') && add.includes('  "port": 8081,') &&
			add.includes('  "features": {"search": true, "export": true}') && del.length === 2 && add.length === 2 &&
			document.getElementById('diff-stat').textContent === '+2 −2 lines';
	})()`)

	if !eval[bool](t, ctx, `window.__sameDocument === true`) {
		t.Error("the page was reloaded; it must update in place")
	}
	if live := eval[string](t, ctx, `document.getElementById('live').dataset.state`); live != "live" {
		t.Errorf("live indicator %q, want live", live)
	}
	if errText := eval[string](t, ctx, `document.getElementById('error').hidden ? '' : document.getElementById('error').textContent`); errText != "" {
		t.Errorf("page shows an error: %s", errText)
	}

	saveScreenshot(t, ctx, "dashboard.png")
}

// TestDashboardEscapesContent: config names are restricted, but content,
// sidecar errors and authors are free text; they must show as text.
func TestDashboardEscapesContent(t *testing.T) {
	ctx, _ := browser(t, 45*time.Second)
	api := startAPI(t, apiOptions{})
	const hostile = `<img src=x onerror="window.__pwned=1">`
	api.call(t, http.MethodPut, "/v1/configs/evil", "text/plain", hostile+"\n", http.StatusCreated)
	api.report(t, "evil", "web-1", 1, "failed", hostile)
	if err := chromedp.Do(ctx, chromedp.Navigate(api.base+"/ui/#/config/evil")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitFor(t, ctx, "the hostile content shown as text", `document.getElementById('content').textContent.includes('<img src=x')`)
	waitFor(t, ctx, "the failure shown as text", `document.getElementById('rollout-summary').dataset.converged === 'failed' &&
		document.querySelector('#rollout tbody tr[data-sidecar="web-1"] td.err').textContent.includes('<img src=x')`)
	if n := eval[int](t, ctx, `document.querySelectorAll('img').length + (window.__pwned ? 100 : 0)`); n != 0 {
		t.Errorf("hostile content became markup (%d)", n)
	}
	saveScreenshot(t, ctx, "dashboard-failure.png")
}

// TestDashboardDiffProperties checks the page's line diff on many random
// inputs inside the browser: the edit script must rebuild both sides and be
// minimal (as many unchanged lines as the longest common subsequence).
func TestDashboardDiffProperties(t *testing.T) {
	ctx, _ := browser(t, 45*time.Second)
	api := startAPI(t, apiOptions{})
	if err := chromedp.Do(ctx, chromedp.Navigate(api.base+"/ui/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitFor(t, ctx, "the page script", `typeof window.OutriggerDiff === 'object'`)
	res := eval[string](t, ctx, `(() => {
		const { diffLines, splitLines } = window.OutriggerDiff;
		const lcs = (a, b) => {
			const dp = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
			for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--)
				dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
			return dp[0][0];
		};
		let seed = 7;
		const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
		for (let t = 0; t < 3000; t++) {
			const a = Array.from({ length: rnd(14) }, () => 'abcd'[rnd(4)]);
			const b = Array.from({ length: rnd(14) }, () => 'abcd'[rnd(4)]);
			const ra = [], rb = [];
			let same = 0;
			for (const [op, i, j] of diffLines(a, b)) {
				if (op === '=') { if (a[i] !== b[j]) return 'unequal "=" at ' + i + ',' + j; ra.push(a[i]); rb.push(b[j]); same++; }
				else if (op === '-') ra.push(a[i]);
				else rb.push(b[j]);
			}
			if (ra.join('') !== a.join('') || rb.join('') !== b.join('')) return 'does not rebuild ' + a.join('') + ' → ' + b.join('');
			if (same !== lcs(a, b)) return 'not minimal for ' + a.join('') + ' → ' + b.join('');
		}
		const lines = splitLines('x\r\ny\n\nz\n');
		if (lines.join('|') !== 'x|y||z') return 'splitLines: ' + JSON.stringify(lines);
		// Large inputs: a few edits are found exactly; past the edit limit the
		// diff degrades to a replacement that still rebuilds both sides.
		const big = Array.from({ length: 20000 }, (_, i) => 'line ' + i);
		const rebuilds = (a, b, ops) => {
			const ra = [], rb = [];
			for (const [op, i, j] of ops) { if (op !== '+') ra.push(a[i]); if (op !== '-') rb.push(b[j]); }
			return ra.join('\n') === a.join('\n') && rb.join('\n') === b.join('\n');
		};
		const few = big.map((l, i) => (i % 1000 === 500 ? l + '!' : l));
		const fewOps = diffLines(big, few);
		if (!rebuilds(big, few, fewOps) || fewOps.filter((o) => o[0] === '+').length !== 20) return 'big diff with few edits';
		const many = big.map((l, i) => (i % 2 ? l + '!' : l));
		if (!rebuilds(big, many, diffLines(big, many))) return 'big diff with many edits does not rebuild';
		return 'ok';
	})()`)
	if res != "ok" {
		t.Fatal(res)
	}
}

// saveScreenshot writes a full-page PNG to $UI_ARTIFACTS (or a temp dir).
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("UI_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("UI_ARTIFACTS %q: %v", dir, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatalf("writing %s: %v", p, err)
	}
	t.Logf("screenshot: %s", p)
}

// TestDashboardToken: with --tokens the page says it needs a token, uses
// the one typed into the token field for every call, keeps it in this
// tab's sessionStorage only, and forgets it on request.
func TestDashboardToken(t *testing.T) {
	const (
		writer = "writer-token-0123456789"
		viewer = "viewer-token-0123456789"
	)
	ctx, _ := browser(t, 45*time.Second)
	api := startAPI(t, apiOptions{Tokens: "tokens:\n" +
		"  - {name: ci, token: \"" + writer + "\", role: write}\n" +
		"  - {name: dashboard, token: \"" + viewer + "\", role: read}\n"})
	api.token = writer
	api.push(t, "app", v1)
	if err := chromedp.Do(ctx, chromedp.Navigate(api.base+"/ui/#/config/app")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitFor(t, ctx, "the page to ask for a token", `!document.getElementById('error').hidden && document.getElementById('error').textContent.includes('enter an API token')`)
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#token"), viewer)); err != nil {
		t.Fatalf("typing the token: %v", err)
	}
	eval[bool](t, ctx, `document.getElementById('token-form').requestSubmit(), true`)
	waitFor(t, ctx, "the data with the token", `document.getElementById('detail-latest').textContent === 'v1' && document.getElementById('error').hidden &&
		document.querySelectorAll('#configs tbody tr').length === 1`)
	if got := eval[string](t, ctx, `sessionStorage.getItem('outrigger.token') + '|' + document.getElementById('token').value + '|' + localStorage.length`); got != viewer+"||0" {
		t.Errorf("token storage: got %q, want the token in sessionStorage only and the field cleared", got)
	}
	saveScreenshot(t, ctx, "dashboard-token.png")
	eval[bool](t, ctx, `document.getElementById('token-clear').click(), true`)
	waitFor(t, ctx, "the token forgotten", `sessionStorage.getItem('outrigger.token') === null && !document.getElementById('error').hidden`)
}

// TestDashboardLongPollTimeouts: long-polls that end without a new version
// (304, here after the server's --max-wait of 1 s) are renewed quietly, and
// the next push still arrives.
func TestDashboardLongPollTimeouts(t *testing.T) {
	ctx, _ := browser(t, 45*time.Second)
	api := startAPI(t, apiOptions{MaxWait: time.Second})
	api.push(t, "app", v1)
	if err := chromedp.Do(ctx, chromedp.Navigate(api.base+"/ui/#/config/app")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitFor(t, ctx, "version 1", `document.getElementById('detail-latest').textContent === 'v1'`)
	api.waitMetric(t, ctx, "two long-polls ending with 304", "outrigger_config_requests_total", map[string]string{"code": "304"}, func(v float64) bool { return v >= 2 })
	waitFor(t, ctx, "the watch still live", `document.getElementById('live').dataset.state === 'live' && document.getElementById('error').hidden`)
	api.push(t, "app", v2)
	waitFor(t, ctx, "version 2", `document.getElementById('detail-latest').textContent === 'v2' && document.getElementById('content').textContent.includes('8081')`)
}
