package reliability

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/loadgen"
)

// TestConfigAPILoss kill -9s `config serve` while a sync watches it: the
// sidecar keeps running, the app keeps its last good config and keeps
// serving, sync's /readyz reports the staleness (--max-staleness 3s) and
// outrigger_sync_source_errors_total rises. Restarting the server on the same
// port and data directory and pushing a new version makes the sidecar
// converge on it.
//
// RELIABILITY_OUTAGE_DURATION sets how long the API stays down (default 10s).
func TestConfigAPILoss(t *testing.T) {
	outage := envDuration(t, "RELIABILITY_OUTAGE_DURATION", 10*time.Second)
	if outage < 5*time.Second {
		outage = 5 * time.Second // must exceed --max-staleness 3s to observe it
	}
	dir := t.TempDir()
	apiAddr, data := freeAddr(t), filepath.Join(dir, "data")
	api := startConfigServe(t, apiAddr, data)
	if _, err := push(api.url, "app", "application/json", appConfig("before the outage", true)); err != nil {
		t.Fatal(err)
	}
	appAddr := freeAddr(t)
	a := startApp(t, dir, appAddr, "initial")
	syncAdmin := "http://" + freeAddr(t)
	syncer := start(t, "sync", []string{"outrigger", "sync", "--source", api.url + "/v1/configs/app",
		"--dest", a.config, "--format", "json", "--pid-file", a.pidFile,
		"--health", "http://" + appAddr + "/healthz", "--rollback",
		"--wait", "1s", "--resync", "1s", "--max-staleness", "3s",
		"--admin", strings.TrimPrefix(syncAdmin, "http://")})
	greetingIs := func(want string) func() bool {
		return func() bool {
			_, body := httpGet(plainClient, "http://"+appAddr+"/")
			return strings.HasPrefix(body, want+"\n")
		}
	}
	waitFor(t, startTimeout, "the app to serve the first pushed config", greetingIs("before the outage"))
	waitFor(t, startTimeout, "sync to be ready", func() bool {
		code, _ := httpGet(plainClient, syncAdmin+"/readyz")
		return code == http.StatusOK
	})
	errorsBefore := metricValue(t, syncAdmin+"/metrics", "outrigger_sync_source_errors_total")

	// The app is loaded directly during the outage: its config must not move.
	load := goLoad(t, loadgen.Options{URL: "http://" + appAddr + "/", Concurrency: 2, Duration: outage,
		Check: func(_ *http.Response, body []byte) error {
			if !strings.HasPrefix(string(body), "before the outage\n") {
				return fmt.Errorf("app serves %.40q during the outage", body)
			}
			return nil
		}})
	api.Signal(syscall.SIGKILL)
	api.Wait(10 * time.Second)
	down := time.Now()
	waitFor(t, outage, "sync /readyz to report staleness", func() bool {
		code, body := httpGet(plainClient, syncAdmin+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "max-staleness")
	})
	var errorsDuring float64
	waitFor(t, outage, "outrigger_sync_source_errors_total to rise", func() bool {
		errorsDuring = metricValue(t, syncAdmin+"/metrics", "outrigger_sync_source_errors_total")
		return errorsDuring > errorsBefore
	})
	r := load()
	if syncer.Exited() {
		t.Fatalf("sync exited during the config API outage:\n%s", syncer.Output())
	}
	if data, err := os.ReadFile(a.config); err != nil || !strings.Contains(string(data), "before the outage") {
		t.Fatalf("app config during the outage = %q (%v), want the last good one", data, err)
	}
	if left := outage - time.Since(down); left > 0 {
		time.Sleep(left)
	}

	api = startConfigServe(t, apiAddr, data)
	if _, err := push(api.url, "app", "application/json", appConfig("after the outage", true)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the app to converge on the version pushed after the outage", greetingIs("after the outage"))
	waitFor(t, 15*time.Second, "sync /readyz to recover", func() bool {
		code, _ := httpGet(plainClient, syncAdmin+"/readyz")
		return code == http.StatusOK
	})
	report(t, "config-api-loss/app-direct", r, fmt.Sprintf("outage=%s source_errors=%.0f→%.0f", outage, errorsBefore, errorsDuring))
	if r.Failed != 0 {
		t.Errorf("%d of %d requests to the app failed or saw another config during the outage (samples %q)", r.Failed, r.Sent, r.ErrorSamples)
	}
}
