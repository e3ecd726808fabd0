package configapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// runCLI runs RunClient with env vars pointing at ts.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = RunClient(ctx, args, &out, &errb, func(k string) string { return env[k] })
	return out.String(), errb.String(), err
}

func TestCLIEndToEnd(t *testing.T) {
	ts := startServer(t, nil)
	env := map[string]string{"OUTRIGGER_SERVER": ts.url}
	dir := t.TempDir()
	appJSON := writeFile(t, dir, "app.json", `{"port": 8080}`)
	appJSON2 := writeFile(t, dir, "app2.json", `{"port": 9090}`)
	badJSON := writeFile(t, dir, "bad.json", "{\"port\": \n")
	conf := writeFile(t, dir, "nginx.conf", "server { listen 80; }\n")

	t.Run("push", func(t *testing.T) {
		out, _, err := runCLI(t, env, "push", "app", appJSON, "--author", "alice")
		if err != nil || !strings.Contains(out, "app: version 1 created") {
			t.Fatalf("push: %v %q", err, out)
		}
		out, _, err = runCLI(t, env, "push", "app", appJSON)
		if err != nil || !strings.Contains(out, "unchanged") {
			t.Fatalf("identical push: %v %q", err, out)
		}
		out, _, err = runCLI(t, env, "push", "--if-match", "1", "app", appJSON2, "--json")
		if err != nil {
			t.Fatalf("push --json: %v", err)
		}
		var pr putResult
		if err := json.Unmarshal([]byte(out), &pr); err != nil || pr.Version.Version != 2 || !pr.Created || pr.ContentType != "application/json" {
			t.Fatalf("push --json output %q: %+v %v", out, pr, err)
		}
	})
	t.Run("bad push prints the server's message", func(t *testing.T) {
		_, errOut, err := runCLI(t, env, "push", "app", badJSON)
		if err == nil {
			t.Fatal("bad push succeeded")
		}
		var pe *PrintedError
		var ae *APIError
		if !errors.As(err, &pe) || !errors.As(err, &ae) || ae.Status != 422 {
			t.Errorf("error %T %v is not a PrintedError wrapping a 422 APIError", err, err)
		}
		if strings.Count(errOut, "line") != 1 {
			t.Errorf("message printed other than once: %q", errOut)
		}
		if !strings.Contains(errOut, "422") || !strings.Contains(errOut, "line") || !strings.Contains(err.Error(), "json") {
			t.Fatalf("stderr %q / err %v lack the server's message", errOut, err)
		}
		_, errOut, err = runCLI(t, env, "push", "app", appJSON, "--if-match", "1")
		if err == nil || !strings.Contains(errOut, "412") {
			t.Fatalf("stale --if-match: %v %q", err, errOut)
		}
	})
	t.Run("extension mapping", func(t *testing.T) {
		out, _, err := runCLI(t, env, "push", "web", conf, "--json")
		if err != nil || !strings.Contains(out, `"content_type": "text/plain"`) {
			t.Fatalf(".conf push: %v %q", err, out)
		}
		_, errOut, err := runCLI(t, env, "push", "web", conf, "--type", "xml")
		if err == nil || !strings.Contains(errOut, "xml") {
			t.Fatalf("--type xml on non-XML: %v %q", err, errOut)
		}
	})
	t.Run("get", func(t *testing.T) {
		out, _, err := runCLI(t, env, "get", "app")
		if err != nil || out != `{"port": 9090}` {
			t.Fatalf("get: %v %q", err, out)
		}
		out, _, err = runCLI(t, env, "get", "app", "--version", "1")
		if err != nil || out != `{"port": 8080}` {
			t.Fatalf("get --version 1: %v %q", err, out)
		}
		dst := filepath.Join(dir, "out.json")
		if _, _, err := runCLI(t, env, "get", "app", "-o", dst); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(dst); string(b) != `{"port": 9090}` {
			t.Fatalf("-o wrote %q", b)
		}
		out, _, err = runCLI(t, env, "get", "--json", "app")
		var g struct {
			store.Version
			Content string `json:"content"`
		}
		if err != nil || json.Unmarshal([]byte(out), &g) != nil || g.Version.Version != 2 || g.Content != `{"port": 9090}` {
			t.Fatalf("get --json: %v %q", err, out)
		}
		_, errOut, err := runCLI(t, env, "get", "nope")
		if err == nil || !strings.Contains(errOut, "404") {
			t.Fatalf("get unknown: %v %q", err, errOut)
		}
	})
	t.Run("history table and json", func(t *testing.T) {
		out, _, err := runCLI(t, env, "history", "app")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "VERSION") || !strings.HasPrefix(lines[1], "1 ") || !strings.Contains(lines[1], "alice") {
			t.Fatalf("history table:\n%s", out)
		}
		// tabwriter aligns: the CREATED column starts at the same offset.
		if strings.Index(lines[0], "CREATED") != strings.Index(lines[1], "20") {
			t.Errorf("columns not aligned:\n%s", out)
		}
		out, _, err = runCLI(t, env, "history", "app", "--json")
		var vs []store.Version
		if err != nil || json.Unmarshal([]byte(out), &vs) != nil || len(vs) != 2 {
			t.Fatalf("history --json: %v %q", err, out)
		}
	})
	t.Run("rollback, status, list, schema", func(t *testing.T) {
		out, _, err := runCLI(t, env, "rollback", "app", "--to", "1")
		if err != nil || !strings.Contains(out, "version 3") {
			t.Fatalf("rollback: %v %q", err, out)
		}
		if _, errOut, err := runCLI(t, env, "rollback", "app"); err == nil || !strings.Contains(errOut, "--to") {
			t.Fatalf("rollback without --to: %v %q", err, errOut)
		}
		c, err := NewClient(ts.url, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ReportStatus(context.Background(), "app", store.SidecarStatus{Sidecar: "pod-a", Version: 2, Outcome: "applied"}); err != nil {
			t.Fatal(err)
		}
		out, _, err = runCLI(t, env, "status", "app")
		if err != nil || !strings.Contains(out, "latest version 3") || !strings.Contains(out, "pod-a") || !strings.Contains(out, "behind") {
			t.Fatalf("status: %v %q", err, out)
		}
		out, _, err = runCLI(t, env, "list")
		if err != nil || !strings.Contains(out, "NAME") || !strings.Contains(out, "app") || !strings.Contains(out, "web") {
			t.Fatalf("list: %v %q", err, out)
		}
		schema := writeFile(t, dir, "s.json", `{"type":"object","required":["port"]}`)
		if out, _, err := runCLI(t, env, "schema", "app", schema); err != nil || !strings.Contains(out, "registered") {
			t.Fatalf("schema: %v %q", err, out)
		}
		if out, _, err := runCLI(t, env, "schema", "app"); err != nil || !strings.Contains(out, "required") {
			t.Fatalf("schema print: %v %q", err, out)
		}
		empty := writeFile(t, dir, "empty.json", `{}`)
		if _, errOut, err := runCLI(t, env, "push", "app", empty); err == nil || !strings.Contains(errOut, "Schema") {
			t.Fatalf("schema violation: %v %q", err, errOut)
		}
	})
	t.Run("usage errors and help", func(t *testing.T) {
		cases := []struct {
			name    string
			args    []string
			wantErr bool
			inOut   string
		}{
			{"no command", nil, true, ""},
			{"unknown command", []string{"frobnicate"}, true, ""},
			{"help", []string{"help"}, false, "commands:"},
			{"push help", []string{"push", "--help"}, false, ""},
			{"missing file", []string{"push", "app"}, true, ""},
			{"bad name", []string{"get", "../etc"}, true, ""},
			{"unknown flag", []string{"get", "app", "--frob"}, true, ""},
			{"bad server", []string{"list", "--server", "ftp://x"}, true, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				out, _, err := runCLI(t, env, tc.args...)
				if (err != nil) != tc.wantErr {
					t.Fatalf("err = %v, want error %v", err, tc.wantErr)
				}
				if !strings.Contains(out, tc.inOut) {
					t.Errorf("stdout %q lacks %q", out, tc.inOut)
				}
			})
		}
	})
}

func TestCLIWatch(t *testing.T) {
	ts := startServer(t, nil)
	env := map[string]string{"OUTRIGGER_SERVER": ts.url}
	ts.do(t, put("/v1/configs/app", "text/plain", "one"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &lineBuffer{lines: make(chan string, 10)}
	done := make(chan error, 1)
	go func() {
		done <- RunClient(ctx, []string{"watch", "app", "--json", "--wait", "10s"}, out, &bytes.Buffer{}, func(k string) string { return env[k] })
	}()
	first := out.next(t)
	if !strings.Contains(first, `"version": 1`) {
		t.Fatalf("first watch output %q", first)
	}
	waitWatchers(t, ts, 1)
	ts.do(t, put("/v1/configs/app", "text/plain", "two"))
	if second := out.next(t); !strings.Contains(second, `"version": 2`) {
		t.Fatalf("second watch output %q", second)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch returned %v after ctx end", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not return after ctx end")
	}
}

// lineBuffer hands each JSON object printed (ending in "}\n") to a channel.
type lineBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		s := l.buf.String()
		i := strings.Index(s, "\n}\n")
		if i < 0 {
			return len(p), nil
		}
		l.lines <- s[:i+3]
		l.buf.Next(i + 3)
	}
}

func (l *lineBuffer) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-l.lines:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no watch output")
		return ""
	}
}

// selfSigned writes a P-256 certificate for 127.0.0.1 and returns the cert
// and key paths.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "outrigger test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile
}

func TestCLIOverTLSWithTokenFile(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	tokens := writeFile(t, dir, "tokens.yaml", tokensYAML())
	ts := startServer(t, func(c *Config) { c.Cert, c.Key, c.Tokens = certFile, keyFile, tokens })
	if !strings.HasPrefix(ts.url, "https://") {
		t.Fatalf("url %s", ts.url)
	}
	tokFile := writeFile(t, dir, "tok", writeTok+"\n")
	data := writeFile(t, dir, "app.yaml", "a: 1\n")
	env := map[string]string{"OUTRIGGER_SERVER": ts.url}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"ca and token file", []string{"push", "app-1", data, "--ca", certFile, "--token-file", tokFile}, nil, ""},
		{"token from env", []string{"get", "app-1", "--ca", certFile}, map[string]string{"OUTRIGGER_TOKEN": readTok}, ""},
		{"no CA: certificate rejected", []string{"get", "app-1", "--token", readTok}, nil, "certificate"},
		{"no token: 401", []string{"get", "app-1", "--ca", certFile}, nil, "401"},
		{"read token cannot push: 403", []string{"push", "app-1", data, "--ca", certFile, "--token", readTok}, nil, "403"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tc.env {
				e[k] = v
			}
			_, errOut, err := runCLI(t, e, tc.args...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("%v (%s)", err, errOut)
				}
				return
			}
			if err == nil || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("err %v, stderr %q; want %q", err, errOut, tc.wantErr)
			}
			for _, tok := range []string{readTok, writeTok} {
				if strings.Contains(errOut, tok) {
					t.Errorf("stderr leaks a token")
				}
			}
		})
	}
}
