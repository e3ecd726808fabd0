package reload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"syscall"
	"time"
)

// DefaultHTTPTimeout bounds one HTTP reload request when HTTP.Timeout is zero.
const DefaultHTTPTimeout = 10 * time.Second

// DefaultCommandTimeout bounds one reload command when Command.Timeout is zero.
const DefaultCommandTimeout = 30 * time.Second

// maxOutput bounds how much of a hook's response body or a command's output
// is kept for the error message.
const maxOutput = 4096

// HTTP calls the application's reload hook; any 2xx status is success.
type HTTP struct {
	URL string
	// Method defaults to POST.
	Method string
	// Timeout bounds the whole request; zero means DefaultHTTPTimeout.
	Timeout time.Duration
	// Header is sent with the request (optional).
	Header http.Header
	// Client defaults to a client using http.DefaultTransport.
	Client *http.Client
}

// String implements Reloader. Userinfo in the URL is redacted.
func (h HTTP) String() string {
	return fmt.Sprintf("%s %s", h.method(), redact(h.URL))
}

func (h HTTP) method() string {
	if h.Method == "" {
		return http.MethodPost
	}
	return h.Method
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Reload implements Reloader.
func (h HTTP) Reload(ctx context.Context) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.method(), h.URL, http.NoBody)
	if err != nil {
		return fmt.Errorf("reload: %s: %w", h, err)
	}
	for k, vs := range h.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("User-Agent", "outrigger-sync")
	client := h.Client
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reload: %s: %w", h, err)
	}
	defer resp.Body.Close()
	var body limitedBuffer
	body.max = 512
	_, _ = io.Copy(&body, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if msg := body.String(); msg != "" {
			return fmt.Errorf("reload: %s: status %s: %s", h, resp.Status, msg)
		}
		return fmt.Errorf("reload: %s: status %s", h, resp.Status)
	}
	return nil
}

// Command runs a shell command (via /bin/sh -c) that reloads the
// application, e.g. "nginx -s reload". A non-zero exit is a failure; the
// command's combined output is included in the error. On timeout the
// command's whole process group is killed.
type Command struct {
	Cmd string
	// Timeout bounds the command; zero means DefaultCommandTimeout.
	Timeout time.Duration
	// Env, when non-nil, replaces the environment (default: the sidecar's).
	Env []string
	// Dir is the working directory (default: the sidecar's).
	Dir string
}

// String implements Reloader.
func (c Command) String() string {
	return fmt.Sprintf("command %q", c.Cmd)
}

// Reload implements Reloader.
func (c Command) Reload(ctx context.Context) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	out, err := RunShell(ctx, c.Cmd, timeout, c.Env, c.Dir)
	if err != nil {
		if out != "" {
			return fmt.Errorf("reload: %s: %w: %s", c, err, out)
		}
		return fmt.Errorf("reload: %s: %w", c, err)
	}
	return nil
}

// RunShell runs script with /bin/sh -c in its own process group, bounded by
// timeout, and returns its combined output (trimmed, at most a few KiB). The
// error says "timed out after …" when the timeout killed it. The sync role
// uses it for --check too.
func RunShell(ctx context.Context, script string, timeout time.Duration, env []string, dir string) (string, error) {
	if script == "" {
		return "", fmt.Errorf("empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Env = env
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Kill the group: the shell's children (a hung "nginx -t") too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// If a grandchild keeps the output pipe open, stop waiting for it.
	cmd.WaitDelay = 2 * time.Second
	out := &limitedBuffer{max: maxOutput}
	cmd.Stdout = out
	cmd.Stderr = out
	err := cmd.Run()
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	return out.String(), err
}
