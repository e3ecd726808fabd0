package reliability

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/loadgen"
)

// TestConfigApplyUnderLoad runs the whole pattern (config serve → sync with
// pid-file SIGHUP, health check and rollback → legacy app ← proxy) and
// pushes a new greeting every second while clients load the app through the
// proxy. A reload must never show a client an error, and the last pushed
// greeting must be what the app serves at the end.
//
// RELIABILITY_APPLY_DURATION sets the length (default 10s).
func TestConfigApplyUnderLoad(t *testing.T) {
	dur := envDuration(t, "RELIABILITY_APPLY_DURATION", 10*time.Second)
	dir := t.TempDir()
	api := startConfigServe(t, freeAddr(t), filepath.Join(dir, "data"))
	if _, err := push(api.url, "app", "application/json", appConfig("greeting 0", true)); err != nil {
		t.Fatal(err)
	}
	appAddr := freeAddr(t)
	a := startApp(t, dir, appAddr, "greeting 0")
	syncAdmin := freeAddr(t)
	start(t, "sync", []string{"outrigger", "sync", "--source", api.url + "/v1/configs/app",
		"--dest", a.config, "--format", "json", "--pid-file", a.pidFile, "--signal", "HUP",
		"--health", "http://" + appAddr + "/healthz", "--health-timeout", "10s", "--rollback",
		"--min-reload-interval", "200ms", "--admin", syncAdmin, "--sidecar-id", "reliability"})
	waitFor(t, startTimeout, "sync to be ready", func() bool {
		code, _ := httpGet(plainClient, "http://"+syncAdmin+"/readyz")
		return code == http.StatusOK
	})
	p := startProxy(t, freeAddr(t), "http://"+appAddr, insecureTLS())

	check := func(_ *http.Response, body []byte) error {
		if !strings.HasPrefix(string(body), "greeting ") {
			return fmt.Errorf("unexpected body %.60q", body)
		}
		return nil
	}
	load := goLoad(t, loadgen.Options{URL: p.url + "/", Concurrency: 4, Duration: dur,
		TLSConfig: insecureTLS(), Check: check})
	loadNew := goLoad(t, loadgen.Options{URL: p.url + "/", Concurrency: 1, Duration: dur,
		TLSConfig: insecureTLS(), Check: check, NewConnPerRequest: true})
	pushes := 0
	var lastGreeting string
	tick := time.NewTicker(time.Second)
	end := time.After(dur - 500*time.Millisecond)
loop:
	for {
		select {
		case <-tick.C:
			pushes++
			lastGreeting = fmt.Sprintf("greeting %d", pushes)
			if _, err := push(api.url, "app", "application/json", appConfig(lastGreeting, true)); err != nil {
				t.Errorf("push %d: %v", pushes, err)
			}
		case <-end:
			break loop
		}
	}
	tick.Stop()
	r, rn := load(), loadNew()
	report(t, "config-apply/keep-alive", r, fmt.Sprintf("pushes=%d", pushes))
	report(t, "config-apply/new-conn-per-request", rn, fmt.Sprintf("pushes=%d", pushes))
	if r.Failed != 0 || rn.Failed != 0 || r.Sent == 0 {
		t.Errorf("%d+%d requests failed during %d config applies, want 0 (samples %q %q)",
			r.Failed, rn.Failed, pushes, r.ErrorSamples, rn.ErrorSamples)
	}
	waitFor(t, 20*time.Second, "the last greeting "+lastGreeting+" through the proxy", func() bool {
		_, body := httpGet(httpsClient(insecureTLS()), p.url+"/")
		return strings.HasPrefix(body, lastGreeting+"\n")
	})
}
