package reliability

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/loadgen"
)

// TestAppRestartUnderLoad kill -9s the legacy app under load and starts a new
// process on the same port ~300 ms later. With --upstream-retry-window the
// proxy retries requests whose upstream connect was refused, so clients see
// no error for any request that arrives while the app is down; with the
// window at 0 every such request is a 502 (connection refused), which the
// test counts and reports as the baseline the retry window removes.
//
// A request that was inside the app when it was killed (sent, and no
// complete response header back) is repeated once on a new connection if it
// is idempotent and has no body, so with the window every request succeeds.
// A response cut after its header reached the client cannot be repeated; the
// stand-in app writes each response in one piece, so that does not occur here.
func TestAppRestartUnderLoad(t *testing.T) {
	cases := []struct {
		name       string
		window     string
		zeroFailed bool
	}{
		{"retry window 5s", "5s", true},
		{"no retry window", "0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			appAddr := freeAddr(t)
			a := startApp(t, dir, appAddr, "hello restart")
			p := startProxy(t, freeAddr(t), "http://"+appAddr, insecureTLS(),
				"--upstream-retry-window", tc.window)
			const dur = 4 * time.Second
			const clients = 4 + 1 // keep-alive + new connection per request
			load := goLoad(t, loadgen.Options{URL: p.url + "/", Concurrency: clients - 1, Duration: dur, TLSConfig: insecureTLS()})
			loadNew := goLoad(t, loadgen.Options{URL: p.url + "/", Concurrency: 1, Duration: dur,
				TLSConfig: insecureTLS(), NewConnPerRequest: true})
			time.Sleep(time.Second)
			a.Signal(syscall.SIGKILL)
			a.Wait(10 * time.Second)
			killed := time.Now()
			time.Sleep(300 * time.Millisecond)
			startApp(t, dir, appAddr, "hello restart")
			down := time.Since(killed)
			r, rn := load(), loadNew()
			note := fmt.Sprintf("upstream-retry-window=%s app down %s", tc.window, down.Round(10*time.Millisecond))
			report(t, "app-restart/window-"+tc.window+"/keep-alive", r, note)
			report(t, "app-restart/window-"+tc.window+"/new-conn-per-request", rn, note)
			failed := r.Failed + rn.Failed
			if tc.zeroFailed && failed != 0 {
				t.Errorf("%d of %d requests failed across a %v app restart with --upstream-retry-window %s, want 0 (status %v %v, samples %q %q)",
					failed, r.Sent+rn.Sent, down, tc.window, r.ByStatus, rn.ByStatus, r.ErrorSamples, rn.ErrorSamples)
			}
			if !tc.zeroFailed {
				// Expected: connection refused upstream → 502 to the client
				// for every request in the window the port was closed.
				t.Logf("without a retry window %d of %d requests failed (%d×502) while the app was down for %v",
					failed, r.Sent+rn.Sent, r.ByStatus[http.StatusBadGateway]+rn.ByStatus[http.StatusBadGateway], down)
				if other := failed - r.ByStatus[http.StatusBadGateway] - rn.ByStatus[http.StatusBadGateway]; other != 0 {
					t.Errorf("%d failures were not 502 (errors %v %v): the proxy must answer, not drop, when the app is down",
						other, r.Errors, rn.Errors)
				}
			}
		})
	}
}

// TestRollingShutdown runs proxy A on a port and starts proxy B on the same
// port under load, two ways:
//
//   - reuseport (the default): B binds the port too (SO_REUSEPORT), then A is
//     SIGTERMed with --shutdown-delay 1s. Requests in flight on A (including
//     slow ones) must complete. Failures a client still sees are counted and
//     reported, not failed: the kernel picks a listening socket for each
//     connection at SYN time, and connections still in A's accept queue when A
//     closes its socket are reset (not moved to B) unless
//     net.ipv4.tcp_migrate_req=1 (see docs/reliability.md).
//   - handover: A and B run with --handover-socket; B takes A's listening
//     socket (accept queue included) and A drains and exits by itself once B
//     serves. Here every request must succeed.
func TestRollingShutdown(t *testing.T) {
	t.Run("reuseport", func(t *testing.T) { testRollingShutdown(t, false) })
	t.Run("handover", func(t *testing.T) { testRollingShutdown(t, true) })
}

func testRollingShutdown(t *testing.T, handover bool) {
	dir := t.TempDir()
	appAddr := freeAddr(t)
	startApp(t, dir, appAddr, "hello rolling")
	listen := freeAddr(t)
	flags := []string{"--shutdown-delay", "1s", "--drain-timeout", "10s"}
	if handover {
		flags = append(flags, "--handover-socket", dir+"/handover.sock")
	}
	a := startProxy(t, listen, "http://"+appAddr, insecureTLS(), flags...)
	const dur = 5 * time.Second
	url := "https://" + listen
	load := goLoad(t, loadgen.Options{URL: url + "/", Concurrency: 4, Duration: dur, TLSConfig: insecureTLS()})
	loadNew := goLoad(t, loadgen.Options{URL: url + "/", Concurrency: 2, Duration: dur,
		TLSConfig: insecureTLS(), NewConnPerRequest: true})
	slow := goLoad(t, loadgen.Options{URL: url + "/slow?d=1500ms", Concurrency: 4, Duration: dur, TLSConfig: insecureTLS()})
	time.Sleep(1000 * time.Millisecond)
	b := startProxy(t, listen, "http://"+appAddr, insecureTLS(), flags...)
	waitFor(t, startTimeout, "proxy B ready", func() bool {
		code, _ := httpGet(plainClient, "http://"+b.admin+"/readyz")
		return code == http.StatusOK
	})
	if !handover {
		time.Sleep(500 * time.Millisecond)
		a.Signal(syscall.SIGTERM)
	} // with the handover A drains and exits by itself once B serves
	if code := a.Wait(30 * time.Second); code != 0 {
		t.Errorf("proxy A exited %d, want 0", code)
	}
	r, rn, rs := load(), loadNew(), slow()
	name := "rolling-shutdown"
	if handover {
		name += "/handover"
	}
	report(t, name+"/keep-alive", r, "")
	report(t, name+"/new-conn-per-request", rn, "")
	report(t, name+"/slow-1.5s", rs, "")
	if rs.Failed != 0 {
		t.Errorf("%d slow (in-flight) requests failed during A's drain, want 0 (samples %q)", rs.Failed, rs.ErrorSamples)
	}
	if failed := r.Failed + rn.Failed; failed != 0 && handover {
		t.Errorf("%d of %d requests failed across the listener handover, want 0 (errors %v %v, samples %q %q)",
			failed, r.Sent+rn.Sent, r.Errors, rn.Errors, r.ErrorSamples, rn.ErrorSamples)
	} else if failed != 0 {
		t.Logf("a client saw %d failed requests of %d during the rolling shutdown (errors %v %v, samples %q %q)",
			failed, r.Sent+rn.Sent, r.Errors, rn.Errors, r.ErrorSamples, rn.ErrorSamples)
	}
	if handover && !strings.Contains(b.Output(), "took over the listening sockets") {
		t.Errorf("proxy B did not take over A's sockets:\n%s", b.Output())
	}
	if b.Exited() {
		t.Fatalf("proxy B exited during A's shutdown:\n%s", b.Output())
	}
	if code, _ := httpGet(httpsClient(insecureTLS()), url+"/"); code != http.StatusOK {
		t.Errorf("after A exited, GET through the shared port = %d, want 200 from B", code)
	}
	if n := metricValue(t, "http://"+b.admin+"/metrics", "outrigger_requests_total"); n == 0 {
		t.Errorf("proxy B served no requests: the port was not shared")
	} else {
		t.Logf("proxy B served %.0f of %d requests", n, r.Sent+rn.Sent+rs.Sent)
	}
}
