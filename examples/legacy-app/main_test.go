package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// binary is the legacy-app executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "legacy-app-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "legacy-app")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// wait is the generous deadline for anything a test waits on: a guard
// against hangs, not a performance assertion.
const wait = 15 * time.Second

// proc is a running legacy-app child process.
type proc struct {
	cmd  *exec.Cmd
	addr string // TCP address it listens on ("" without --listen)
	done chan struct{}
	err  error // Wait's result, valid after done

	mu    sync.Mutex
	lines []string // stderr, one log event a line
}

// startApp runs the binary with args and waits for it to listen (wantTCP)
// or at least to log once.
func startApp(t *testing.T, wantTCP bool, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("legacy-app stderr:\n%s", p.logs())
		}
	})
	if wantTCP {
		line := p.waitLog(t, `"network":"tcp"`)
		var ev struct{ Addr string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("listening line %q: %v", line, err)
		}
		p.addr = ev.Addr
	}
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLog waits for a stderr line containing all of subs and returns it.
func (p *proc) waitLog(t *testing.T, subs ...string) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(l, s)
			}
			if ok {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			t.Fatalf("legacy-app exited (%v) before logging %q", p.err, subs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no log line with %q within %v", subs, wait)
	return ""
}

// waitExit waits for the process to exit and returns its exit code.
func (p *proc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(wait):
		t.Fatal("legacy-app did not exit")
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// writeConfig writes a config file and returns its path.
func writeConfig(t *testing.T, path, content string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "app.json")
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var client = &http.Client{Timeout: wait}

// fetch GETs url and returns the status and body.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	cfg := `{"greeting": "hello from the past", "healthy": true, "color": "teal", "extra": [1, 2]}`
	p := startApp(t, true, "--listen", "127.0.0.1:0", "--config", writeConfig(t, "", cfg))
	base := "http://" + p.addr
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		header   map[string]string
		wantCode int
		want     []string
		wantLen  int // exact body length when > 0
	}{
		{name: "root shows greeting and version", path: "/", wantCode: 200, want: []string{"hello from the past\n", "config load #1, sha256 "}},
		{name: "healthz", path: "/healthz", wantCode: 200, want: []string{"ok"}},
		{name: "config is the raw file", path: "/config", wantCode: 200, want: []string{cfg}},
		{name: "echo", method: "POST", path: "/echo?x=1", body: "12345", header: map[string]string{"X-Forwarded-For": "192.0.2.1", "Host": "app.example"},
			wantCode: 200, want: []string{`"method": "POST"`, `"path": "/echo"`, `"query": "x=1"`, `"host": "app.example"`, `"X-Forwarded-For": [`, `"body_length": 5`, `"remote_addr": "127.0.0.1:`}},
		{name: "slow", path: "/slow?d=10ms", wantCode: 200, want: []string{"slept 10ms"}},
		{name: "slow bad duration", path: "/slow?d=forever", wantCode: 400, want: []string{`d="forever"`}},
		{name: "slow negative", path: "/slow?d=-1s", wantCode: 400},
		{name: "stream", path: "/stream?n=3&interval=1ms", wantCode: 200, want: []string{"line 1\nline 2\nline 3\n"}},
		{name: "stream bad n", path: "/stream?n=x", wantCode: 400},
		{name: "sse", path: "/sse?n=2&interval=1ms", wantCode: 200, want: []string{"id: 1\nevent: tick\ndata: tick 1\n\n", "data: tick 2\n\n"}},
		{name: "bytes default", path: "/bytes", wantCode: 200, wantLen: 1024},
		{name: "bytes exact", path: "/bytes?size=65536", wantCode: 200, wantLen: 65536},
		{name: "bytes larger than the pattern", path: "/bytes?size=3000000", wantCode: 200, wantLen: 3000000},
		{name: "bytes zero", path: "/bytes?size=0", wantCode: 200},
		{name: "bytes too many", path: "/bytes?size=999999999999", wantCode: 400},
		{name: "unknown path", path: "/nope", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req, err := http.NewRequest(method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s = %d %q, want %d", method, tt.path, resp.StatusCode, b, tt.wantCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("body lacks %q:\n%s", w, b)
				}
			}
			if tt.wantLen > 0 && len(b) != tt.wantLen {
				t.Errorf("body length %d, want %d", len(b), tt.wantLen)
			}
		})
	}

	t.Run("upload", func(t *testing.T) {
		body := bytes.Repeat([]byte("0123456789"), 100000)
		resp, err := client.Post(base+"/upload", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Bytes  int64  `json:"bytes"`
			SHA256 string `json:"sha256"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		if got.Bytes != int64(len(body)) || got.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("upload = %+v, want %d bytes and sha256 %x", got, len(body), sum)
		}
	})

	t.Run("stream lines arrive one by one", func(t *testing.T) {
		// With a long interval, the first line must arrive before the
		// second is even written: proof that each line is flushed.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/stream?n=2&interval=1m", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "line 1\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
	})

	t.Run("websocket echo", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		for _, msg := range []struct {
			typ  websocket.MessageType
			data string
		}{{websocket.MessageText, "hello"}, {websocket.MessageBinary, "\x00\x01\x02"}} {
			if err := c.Write(ctx, msg.typ, []byte(msg.data)); err != nil {
				t.Fatal(err)
			}
			typ, data, err := c.Read(ctx)
			if err != nil || typ != msg.typ || string(data) != msg.data {
				t.Fatalf("echo = %v %q %v, want %v %q", typ, data, err, msg.typ, msg.data)
			}
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("slow honours client cancel", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/slow?d=4m", nil)
		if _, err := client.Do(req); err == nil {
			t.Fatal("a 4 minute sleep answered within the client's deadline")
		}
		// The server is still responsive afterwards.
		if code, _ := fetch(t, base+"/healthz"); code != 200 {
			t.Fatalf("healthz after cancel = %d", code)
		}
	})
}

func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, filepath.Join(dir, "app.json"), `{"greeting": "first"}`)
	pidFile := filepath.Join(dir, "app.pid")
	p := startApp(t, true, "--listen", "127.0.0.1:0", "--config", cfgPath, "--pid-file", pidFile)
	base := "http://" + p.addr

	pidText, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil || pid != p.cmd.Process.Pid {
		t.Fatalf("pid file holds %q, want %d", pidText, p.cmd.Process.Pid)
	}

	steps := []struct {
		name        string
		config      string
		wantLog     []string
		wantRoot    string
		wantHealthz int
	}{
		{name: "new greeting", config: `{"greeting": "second", "color": "red"}`,
			wantLog: []string{`"msg":"config loaded"`, `"greeting":"second"`, `"version":2`}, wantRoot: "second\nconfig load #2,", wantHealthz: 200},
		{name: "invalid JSON keeps the old config", config: `{"greeting": "broken",`,
			wantLog: []string{"reload failed, keeping the current config", `"version":2`}, wantRoot: "second\nconfig load #2,", wantHealthz: 200},
		{name: "not an object keeps the old config", config: `["greeting"]`,
			wantLog: []string{"reload failed", "cannot unmarshal array"}, wantRoot: "second\n", wantHealthz: 200},
		{name: "unhealthy config", config: `{"greeting": "sick", "healthy": false}`,
			wantLog: []string{`"greeting":"sick"`, `"version":3`}, wantRoot: "sick\nconfig load #3,", wantHealthz: 503},
		{name: "healthy again", config: `{"greeting": "well", "healthy": true}`,
			wantLog: []string{`"greeting":"well"`, `"version":4`}, wantRoot: "well\n", wantHealthz: 200},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			writeConfig(t, cfgPath, st.config)
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			p.waitLog(t, st.wantLog...)
			if code, body := fetch(t, base+"/"); code != 200 || !strings.HasPrefix(body, st.wantRoot) {
				t.Fatalf("/ = %d %q, want prefix %q", code, body, st.wantRoot)
			}
			if code, _ := fetch(t, base+"/healthz"); code != st.wantHealthz {
				t.Fatalf("/healthz = %d, want %d", code, st.wantHealthz)
			}
		})
	}

	t.Run("SIGTERM drains and removes the pid file", func(t *testing.T) {
		// A streaming response is in flight (its first line has arrived)
		// when SIGTERM comes: graceful shutdown lets it finish.
		resp, err := client.Get(base + "/stream?n=2&interval=300ms")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		if line, err := r.ReadString('\n'); err != nil || line != "line 1\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "line 2\n" {
			t.Fatalf("rest of the stream during shutdown = %q, %v; want %q", rest, err, "line 2\n")
		}
		if code := p.waitExit(t); code != 0 {
			t.Fatalf("exit code %d after SIGTERM, want 0", code)
		}
		if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("pid file still there after exit: %v", err)
		}
	})
}

func TestStartupRefusals(t *testing.T) {
	good := writeConfig(t, "", `{"greeting": "hi"}`)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "any address", args: []string{"--listen", "0.0.0.0:0", "--config", good}, want: `--listen "0.0.0.0:0": refusing a non-loopback address`},
		{name: "all interfaces by empty host", args: []string{"--listen", ":0", "--config", good}, want: "refusing a non-loopback address"},
		{name: "ipv6 any", args: []string{"--listen", "[::]:0", "--config", good}, want: "refusing a non-loopback address"},
		{name: "host name", args: []string{"--listen", "example.com:80", "--config", good}, want: "refusing a non-loopback address"},
		{name: "no port", args: []string{"--listen", "127.0.0.1", "--config", good}, want: `--listen "127.0.0.1"`},
		{name: "missing config flag", args: []string{"--listen", "127.0.0.1:0"}, want: "--config is required"},
		{name: "missing config file", args: []string{"--listen", "127.0.0.1:0", "--config", "/nonexistent/app.json"}, want: `config "/nonexistent/app.json"`},
		{name: "invalid config", args: []string{"--listen", "127.0.0.1:0", "--config", writeConfig(t, "", "{nope")}, want: "invalid character"},
		{name: "empty config", args: []string{"--listen", "127.0.0.1:0", "--config", writeConfig(t, "", "")}, want: "unexpected end of JSON input"},
		{name: "null config", args: []string{"--listen", "127.0.0.1:0", "--config", writeConfig(t, "", "null")}, want: "want a JSON object"},
		{name: "nothing to serve on", args: []string{"--listen", "", "--config", good}, want: "needs --unix"},
		{name: "unknown flag", args: []string{"--bogus"}, want: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startApp(t, false, tt.args...)
			if code := p.waitExit(t); code != 1 && !(tt.name == "unknown flag" && code == 2) {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(p.logs(), tt.want) {
				t.Fatalf("stderr lacks %q:\n%s", tt.want, p.logs())
			}
		})
	}

	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		p := startApp(t, false, "--listen", ln.Addr().String(), "--config", good)
		if code := p.waitExit(t); code != 1 {
			t.Fatalf("exit code %d, want 1", code)
		}
		if !strings.Contains(p.logs(), "address already in use") {
			t.Fatalf("stderr:\n%s", p.logs())
		}
	})
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "app.sock")
	// A stale socket from a killed predecessor must not stop the start.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	p := startApp(t, false, "--listen", "", "--unix", sock, "--config", writeConfig(t, "", `{"greeting": "over a socket"}`))
	p.waitLog(t, `"network":"unix"`)
	uc := &http.Client{Timeout: wait, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := uc.Get("http://app/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "over a socket\n") {
		t.Fatalf("/ over unix = %q", b)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
}
