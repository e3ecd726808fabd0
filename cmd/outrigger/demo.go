package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/cli"
	"github.com/outrigger-sidecar/outrigger/internal/configapi"
	"github.com/outrigger-sidecar/outrigger/internal/proxy"
	syncrole "github.com/outrigger-sidecar/outrigger/internal/sync"
)

const demoUsage = `usage: outrigger demo [flags]

Runs the whole sidecar pattern on this machine, for a first look: the config
API on an embedded store in a temporary directory, the stand-in legacy app as a
real child process on 127.0.0.1, outrigger sync (validation, SIGHUP via pid
file, health check, rollback) and outrigger proxy (self-signed HTTPS). It then
prints what to try. Ctrl-C stops everything and removes the temporary files.
Every listener is on 127.0.0.1; a port that is taken is replaced by a free one.`

// demoConfig is the first config the demo pushes; the stand-in app shows its greeting.
const demoConfig = `{"greeting": "Hello from a legacy app, served over HTTPS by Outrigger (config v1)", "healthy": true}` + "\n"

func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("outrigger demo", e.stderr)
	var (
		httpsPort, apiPort, appPort int
		adminAddr, keep             string
		common                      commonFlags
	)
	fs.IntVar(&httpsPort, "https-port", 8443, "HTTPS port of the proxy (a free one if taken)")
	fs.IntVar(&apiPort, "api-port", 7700, "port of the config API (a free one if taken)")
	fs.IntVar(&appPort, "app-port", 8080, "port of the stand-in legacy app (a free one if taken)")
	fs.StringVar(&adminAddr, "admin", "127.0.0.1:9901", "admin listener of the proxy and sync (/readyz, /metrics, /status)")
	fs.StringVar(&keep, "dir", "", "working directory to use and keep (default: a temporary one, removed at exit)")
	fs.StringVar(&common.LogLevel, "log-level", "warn", "log level of the sidecars (their logs go to stderr)")
	fs.Usage = cli.Usage(fs, demoUsage)
	if err := parseFlags(fs, args, e); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	common.LogFormat = "text"
	common.StartupTimeout = 30 * time.Second
	if err := common.validate(); err != nil {
		return usage(err)
	}

	dir := keep
	if dir == "" {
		d, err := os.MkdirTemp("", "outrigger-demo-")
		if err != nil {
			return err
		}
		dir = d
		defer os.RemoveAll(dir)
	}
	shared := filepath.Join(dir, "shared")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		return err
	}
	httpsPort = freePort(httpsPort)
	apiPort = freePort(apiPort)
	appPort = freePort(appPort)
	if h, p, err := net.SplitHostPort(adminAddr); err == nil {
		n, _ := strconv.Atoi(p)
		adminAddr = net.JoinHostPort(h, strconv.Itoa(freePort(n)))
	}
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	appURL := fmt.Sprintf("http://127.0.0.1:%d", appPort)
	dest := filepath.Join(shared, "app.json")
	pidFile := filepath.Join(shared, "app.pid")
	reg := newRegistry()

	// 1. The config API on an embedded bbolt store, and the first version.
	apiCfg := configapi.Config{}
	apiFS := newFlagSet("config", e.stderr)
	apiCfg.RegisterFlags(apiFS)
	if err := cli.Parse(apiFS, []string{"--listen", fmt.Sprintf("127.0.0.1:%d", apiPort), "--data", filepath.Join(dir, "data")}, noEnv); err != nil {
		return err
	}
	api, err := configRole(ctx, &apiCfg, common, e, reg)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	apiDone := make(chan error, 1)
	go func() { apiDone <- api.run(runCtx) }()
	client, err := configapi.NewClient(apiURL, "", &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	if err := retry(ctx, 5*time.Second, func() error {
		_, err := client.Push(ctx, "app", []byte(demoConfig), "application/json", nil)
		return err
	}); err != nil {
		return fmt.Errorf("demo: pushing the first config: %w", err)
	}

	// 2. sync --once, as the init container does, so the app starts with a config.
	syncArgs := []string{
		"--source", apiURL + "/v1/configs/app", "--dest", dest, "--format", "json",
		"--pid-file", pidFile, "--signal", "HUP",
		"--health", appURL + "/healthz", "--health-timeout", "5s", "--rollback",
		"--sidecar-id", "demo-sidecar",
	}
	var once syncrole.Config
	onceFS := newFlagSet("sync", e.stderr)
	once.RegisterFlags(onceFS)
	// No reload or health flags: there is no app yet (as in a Kubernetes init container).
	if err := cli.Parse(onceFS, []string{"--once", "--source", apiURL + "/v1/configs/app", "--dest", dest,
		"--format", "json", "--sidecar-id", "demo-sidecar"}, noEnv); err != nil {
		return err
	}
	onceRole, err := syncRole(ctx, &once, common, e, newRegistry())
	if err != nil {
		return err
	}
	if err := onceRole.run(ctx); err != nil {
		return fmt.Errorf("demo: first sync: %w", err)
	}

	// 3. The stand-in legacy app: a real child process bound to 127.0.0.1.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	app := exec.Command(self, "legacy-app", "--listen", fmt.Sprintf("127.0.0.1:%d", appPort),
		"--config", dest, "--pid-file", pidFile)
	app.Stdout, app.Stderr = e.stderr, e.stderr
	app.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := app.Start(); err != nil {
		return fmt.Errorf("demo: starting the legacy app: %w", err)
	}
	appDone := make(chan error, 1)
	go func() { appDone <- app.Wait() }()
	defer func() {
		_ = app.Process.Signal(syscall.SIGTERM)
		select {
		case <-appDone:
		case <-time.After(5 * time.Second):
			_ = app.Process.Kill()
			<-appDone
		}
	}()

	// 4. sync (long-running) and proxy (self-signed), as the two sidecars.
	var syncCfg syncrole.Config
	syncFS := newFlagSet("sync", e.stderr)
	syncCfg.RegisterFlags(syncFS)
	if err := cli.Parse(syncFS, syncArgs, noEnv); err != nil {
		return err
	}
	syncR, err := syncRole(ctx, &syncCfg, common, e, reg)
	if err != nil {
		return err
	}
	var proxyCfg proxy.Config
	proxyFS := newFlagSet("proxy", e.stderr)
	proxyCfg.RegisterFlags(proxyFS)
	if err := cli.Parse(proxyFS, []string{
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpsPort), "--upstream", appURL,
		"--shutdown-delay", "0s", "--drain-timeout", "5s",
	}, noEnv); err != nil {
		return err
	}
	proxyR, err := proxyRole(ctx, &proxyCfg, common, e, reg)
	if err != nil {
		return err
	}

	printDemo(e, demoInfo{dir: dir, https: httpsPort, api: apiURL, app: appURL, admin: adminAddr})

	common.Admin = adminAddr
	common.ForceTimeout = 15 * time.Second
	roles := []role{syncR, proxyR}
	go func() {
		// The app exiting ends the demo: there is nothing left to front.
		select {
		case err := <-appDone:
			appDone <- err
			fmt.Fprintf(e.stderr, "demo: the legacy app exited (%v); stopping\n", err)
			cancel()
		case <-runCtx.Done():
		}
	}()
	err = serve(runCtx, common.logger(e.stderr), common, reg, roles)
	cancel()
	if apiErr := <-apiDone; err == nil {
		err = apiErr
	}
	fmt.Fprintln(e.stdout, "demo stopped; temporary files removed")
	return err
}

type demoInfo struct {
	dir, api, app, admin string
	https                int
}

func printDemo(e *env, d demoInfo) {
	bin := commandName()
	good := filepath.Join(d.dir, "v2.json")
	broken := filepath.Join(d.dir, "broken.json")
	unhealthy := filepath.Join(d.dir, "unhealthy.json")
	_ = os.WriteFile(good, []byte(`{"greeting": "Hello again: this greeting was pushed to the config API (v2)", "healthy": true}`+"\n"), 0o644)
	_ = os.WriteFile(broken, []byte(`{"greeting": "a missing quote and brace, }`+"\n"), 0o644)
	_ = os.WriteFile(unhealthy, []byte(`{"greeting": "this config makes the app unhealthy", "healthy": false}`+"\n"), 0o644)
	srv := "--server " + d.api
	fmt.Fprintf(e.stdout, `
Outrigger demo is running (Ctrl-C stops it and removes %s).

  HTTPS (self-signed)  https://127.0.0.1:%d/        -> legacy app %s (loopback only)
  config API           %s
  admin                http://%s/status  /readyz  /metrics

Try, in a second terminal:

  curl -k https://127.0.0.1:%d/
  curl -k --http2 -sI https://127.0.0.1:%d/ | head -1

  # push a new config: sync validates it, writes it, SIGHUPs the app, checks /healthz
  %s config push app %s %s
  curl -k https://127.0.0.1:%d/

  # a broken config is rejected by the API and never reaches the app
  %s config push app %s %s

  # a valid config that makes the app unhealthy is rolled back by sync
  %s config push app %s %s
  %s config status app %s
  %s config history app %s
  curl -k https://127.0.0.1:%d/

`, d.dir, d.https, d.app, d.api, d.admin, d.https, d.https,
		bin, good, srv, d.https,
		bin, broken, srv,
		bin, unhealthy, srv, bin, srv, bin, srv, d.https)
}

// commandName is how the user can run this binary again from a shell.
func commandName() string {
	self, err := os.Executable()
	if err != nil || strings.Contains(self, "go-build") {
		return "go run ./cmd/outrigger"
	}
	return self
}

// freePort returns port if it can be bound on 127.0.0.1, else a free one.
func freePort(port int) int {
	if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
		_ = l.Close()
		return port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return port
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func noEnv(string) string { return "" }

// retry calls f until it succeeds or timeout passes.
func retry(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
