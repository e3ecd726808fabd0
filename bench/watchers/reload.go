package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// reloadConfig is the command line of `watchers reload`.
type reloadConfig struct {
	server  *url.URL
	app     *url.URL
	name    string
	pushes  int
	poll    time.Duration
	gap     time.Duration
	timeout time.Duration
	label   string
}

func parseReload(args []string, stderr io.Writer) (reloadConfig, error) {
	var c reloadConfig
	fs := flag.NewFlagSet("watchers reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "http://127.0.0.1:7700", "config API base URL (loopback)")
	app := fs.String("app", "http://127.0.0.1:8080/", "URL of the app page that shows the greeting (loopback)")
	fs.StringVar(&c.name, "name", "app", "config name `outrigger sync` watches")
	fs.IntVar(&c.pushes, "pushes", 100, "versions pushed, one at a time")
	fs.DurationVar(&c.poll, "poll", time.Millisecond, "interval between polls of --app (the measurement's resolution)")
	fs.DurationVar(&c.gap, "gap", 300*time.Millisecond, "pause after each reload is seen, so the sidecar finishes its health check before the next push")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "limit for one push to show up in the app")
	fs.StringVar(&c.label, "label", "", "first cell of the output row (default: \"reload\")")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if c.server, err = loopbackURL("--server", *server); err != nil {
		return c, err
	}
	if c.app, err = loopbackURL("--app", *app); err != nil {
		return c, err
	}
	switch {
	case c.pushes < 1:
		return c, fmt.Errorf("--pushes %d: must be at least 1", c.pushes)
	case c.poll <= 0:
		return c, fmt.Errorf("--poll %s: must be positive", c.poll)
	case c.gap < 0:
		return c, fmt.Errorf("--gap %s: must not be negative", c.gap)
	case c.timeout <= 0:
		return c, fmt.Errorf("--timeout %s: must be positive", c.timeout)
	case !validName(c.name):
		return c, fmt.Errorf("--name %q: want 1-128 of [A-Za-z0-9._-], not starting with '.'", c.name)
	}
	if c.label == "" {
		c.label = "reload"
	}
	return c, nil
}

// reloadResult is what one reload run measured.
type reloadResult struct {
	pushes int
	lat    latencies
}

func (r reloadResult) row(label string) string {
	return fmt.Sprintf("| %s | %d | %s | %s | %s |", label, r.pushes, ms(r.lat.P50), ms(r.lat.P99), ms(r.lat.Max))
}

// appConfig is the stand-in legacy app's config file.
type appConfig struct {
	Greeting string `json:"greeting"`
	Healthy  bool   `json:"healthy"`
}

func reload(ctx context.Context, c reloadConfig, stderr io.Writer) (reloadResult, error) {
	res := reloadResult{pushes: c.pushes}
	ctl := &api{base: c.server, name: c.name, client: &http.Client{Timeout: 30 * time.Second}}
	appClient := &http.Client{Timeout: 5 * time.Second}
	run := time.Now().UnixNano()
	var samples []time.Duration
	for k := range c.pushes {
		greeting := fmt.Sprintf("bench run %d push %d", run, k+1)
		body, err := json.Marshal(appConfig{Greeting: greeting, Healthy: true})
		if err != nil {
			return res, err
		}
		start := time.Now()
		if _, err := ctl.push(ctx, "application/json", append(body, '\n')); err != nil {
			return res, err
		}
		seen, err := pollFor(ctx, appClient, c.app.String(), greeting, c.poll, c.timeout)
		if err != nil {
			return res, fmt.Errorf("push %d of %d: %w", k+1, c.pushes, err)
		}
		samples = append(samples, seen.Sub(start))
		sleepCtx(ctx, c.gap)
	}
	res.lat = summarize(samples)
	fmt.Fprintf(stderr, "watchers: %d reloads seen\n", len(samples))
	return res, nil
}

// pollFor GETs u every interval until the body contains want, and returns
// when it first did.
func pollFor(ctx context.Context, cl *http.Client, u, want string, interval, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return time.Time{}, err
		}
		resp, err := cl.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			if strings.Contains(string(b), want) {
				return time.Now(), nil
			}
			last = fmt.Sprintf("%s: %.80q", resp.Status, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s never showed %q within %s (last: %s)", u, want, timeout, last)
		case <-time.After(interval):
		}
	}
}
