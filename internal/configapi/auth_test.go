package configapi

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

const (
	readTok  = "read-token-0123456789abcdef"
	writeTok = "write-token-0123456789abcdef"
	adminTok = "admin-token-0123456789abcdef"
	hashTok  = "hashed-token-0123456789abcdef"
)

func tokensYAML() string {
	sum := sha256.Sum256([]byte(hashTok))
	return `tokens:
  - name: sidecars
    token: "` + readTok + `"
    role: read
  - name: ci
    token: "` + writeTok + `"
    role: write
    configs: ["app-*", "web"]
  - name: ops
    token: "` + adminTok + `"
    role: admin
  - name: hashed
    sha256: "` + hex.EncodeToString(sum[:]) + `"
    role: write
`
}

func TestParseTokens(t *testing.T) {
	good, err := ParseTokens([]byte(tokensYAML()))
	if err != nil {
		t.Fatalf("ParseTokens: %v", err)
	}
	if good.Len() != 4 {
		t.Fatalf("Len = %d", good.Len())
	}
	lookups := []struct {
		tok      string
		wantName string
		wantRole Role
	}{
		{readTok, "sidecars", RoleRead},
		{writeTok, "ci", RoleWrite},
		{adminTok, "ops", RoleAdmin},
		{hashTok, "hashed", RoleWrite},
		{"nope-nope-nope-nope", "", RoleNone},
		{"", "", RoleNone},
		{readTok + "x", "", RoleNone},
	}
	for _, tc := range lookups {
		id := good.Lookup(tc.tok)
		if tc.wantName == "" {
			if id != nil {
				t.Errorf("Lookup(%q) = %q, want nil", tc.tok, id.Name)
			}
			continue
		}
		if id == nil || id.Name != tc.wantName || id.Role != tc.wantRole {
			t.Errorf("Lookup(%q) = %+v, want %s/%s", tc.tok, id, tc.wantName, tc.wantRole)
		}
	}

	secret := "super-secret-value-1234567890"
	bad := []struct {
		name, yaml, wantErr string
	}{
		{"empty file", ``, "malformed"},
		{"no tokens", "tokens: []\n", "no tokens"},
		{"missing name", "tokens: [{token: \"" + secret + "\", role: read}]", "name is required"},
		{"duplicate name", "tokens: [{name: a, token: \"" + secret + "\", role: read}, {name: a, token: \"" + secret + "x\", role: read}]", "duplicate name"},
		{"duplicate token", "tokens: [{name: a, token: \"" + secret + "\", role: read}, {name: b, token: \"" + secret + "\", role: read}]", "same token"},
		{"both token and sha", "tokens: [{name: a, token: \"" + secret + "\", sha256: \"00\", role: read}]", "not both"},
		{"neither", "tokens: [{name: a, role: read}]", "token or sha256 is required"},
		{"short token", "tokens: [{name: a, token: short, role: read}]", "shorter than"},
		{"bad sha", "tokens: [{name: a, sha256: xyz, role: read}]", "64 hex"},
		{"bad role", "tokens: [{name: a, token: \"" + secret + "\", role: root}]", "role \"root\""},
		{"bad pattern", "tokens: [{name: a, token: \"" + secret + "\", role: read, configs: [\"[\"]}]", "pattern"},
		{"unknown field", "tokens: [{name: a, tokn: \"" + secret + "\", role: read}]", "tokn"},
		{"wrong type carrying a secret", "tokens: [{name: a, token: [\"" + secret + "\"], role: read}]", "line 1"},
		{"not YAML", "tokens: [\"" + secret, "malformed"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTokens([]byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q leaks the token", err)
			}
		})
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(tokensYAML()))
	f.Add([]byte("tokens: [{name: a, token: aaaaaaaaaaaaaaaaaaaa, role: read, configs: ['x*']}]"))
	f.Add([]byte("tokens:\n - name: &a x\n   token: *a\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := ParseTokens(data)
		if err != nil {
			return
		}
		if toks.Len() == 0 {
			t.Fatal("success with no tokens")
		}
		for _, id := range toks.ids {
			if id.Name == "" || id.Role < RoleRead || id.Role > RoleAdmin {
				t.Fatalf("accepted invalid identity %+v", id)
			}
		}
	})
}

func TestAuthMatrix(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "tokens.yaml", tokensYAML())
	ts := startServer(t, func(c *Config) { c.Tokens = file })
	bearer := func(r req, tok string) req { return withHdr(r, "Authorization", "Bearer "+tok) }
	schema := `{"type":"object"}`
	tests := []struct {
		name string
		r    req
		code int
	}{
		{"no token", put("/v1/configs/app-x", "text/plain", "a"), 401},
		{"no token GET", get("/v1/configs/app-x"), 401},
		{"no token list", get("/v1/configs"), 401},
		{"unknown token", bearer(get("/v1/configs/app-x"), "wrong-token-0123456789"), 401},
		{"basic auth scheme", withHdr(get("/v1/configs/app-x"), "Authorization", "Basic "+writeTok), 401},
		{"write token pushes own pattern", bearer(put("/v1/configs/app-x", "text/plain", "a"), writeTok), 201},
		{"write token pushes exact name", bearer(put("/v1/configs/web", "text/plain", "a"), writeTok), 201},
		{"lower-case scheme", withHdr(put("/v1/configs/app-y", "text/plain", "a"), "Authorization", "bearer "+writeTok), 201},
		{"write token outside pattern", bearer(put("/v1/configs/db", "text/plain", "a"), writeTok), 403},
		{"write token reads outside pattern", bearer(get("/v1/configs/db"), writeTok), 403},
		{"read token pushing", bearer(put("/v1/configs/app-x", "text/plain", "b"), readTok), 403},
		{"read token rollback", bearer(req{method: "POST", path: "/v1/configs/app-x/rollback?to=1"}, readTok), 403},
		{"read token reads", bearer(get("/v1/configs/app-x"), readTok), 200},
		{"read token watches", bearer(withHdr(get("/v1/configs/app-x?wait=1ms"), "If-None-Match", `"1"`), readTok), 304},
		{"read token reports status", bearer(put("/v1/configs/app-x/status/pod-1", "application/json", `{"version":1,"outcome":"applied"}`), readTok), 204},
		{"write token schema", bearer(put("/v1/schemas/app-x", "application/json", schema), writeTok), 403},
		{"admin schema", bearer(put("/v1/schemas/app-x", "application/json", schema), adminTok), 204},
		{"admin pushes anything", bearer(put("/v1/configs/db", "text/plain", "a"), adminTok), 201},
		{"hashed token pushes", bearer(put("/v1/configs/db", "text/plain", "b"), hashTok), 201},
		{"health without token", get("/healthz"), 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.r)
			if r.code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", tc.r.method, tc.r.path, r.code, r.body, tc.code)
			}
			if tc.code == 401 && !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer (got %q)", r.hdr.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("list filtered by pattern", func(t *testing.T) {
		r := ts.do(t, bearer(get("/v1/configs"), writeTok))
		if r.code != 200 || strings.Contains(r.body, `"db"`) || !strings.Contains(r.body, `"app-x"`) {
			t.Fatalf("list for ci: %d %s", r.code, r.body)
		}
	})
	t.Run("author defaults to token name", func(t *testing.T) {
		r := ts.do(t, bearer(put("/v1/configs/app-z", "text/plain", "z"), writeTok))
		if !strings.Contains(r.body, `"author":"ci"`) {
			t.Fatalf("push answer %s lacks author ci", r.body)
		}
	})
	t.Run("tokens never logged", func(t *testing.T) {
		logs := ts.logs.String()
		for _, tok := range []string{readTok, writeTok, adminTok, hashTok} {
			if strings.Contains(logs, tok) {
				t.Errorf("logs contain token %q", tok)
			}
		}
		if !strings.Contains(logs, `"token":"ci"`) {
			t.Errorf("access log does not name the token ci")
		}
	})
	if got := counterValue(t, ts, "outrigger_config_rejects_total", "reason", "unauthorized"); got < 4 {
		t.Errorf("unauthorized rejects = %v", got)
	}
}

func TestNewRefusesUnsafeListen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"all interfaces without tokens", func(c *Config) { c.Listen = ":0" }, "--tokens"},
		{"0.0.0.0 without tokens", func(c *Config) { c.Listen = "0.0.0.0:0" }, "not a loopback"},
		{"hostname without tokens", func(c *Config) { c.Listen = "example.com:7700" }, "not a loopback"},
		{"bad listen", func(c *Config) { c.Listen = "nope" }, "--listen"},
		{"cert without key", func(c *Config) { c.Cert = "x.pem" }, "--cert"},
		{"bad etcd", func(c *Config) { c.Etcd = "ftp://x" }, "--etcd"},
		{"zero max size", func(c *Config) { c.MaxSize = 0 }, "--max-size"},
		{"missing tokens file", func(c *Config) { c.Tokens = dir + "/none.yaml" }, "--tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen = "127.0.0.1:0"
			cfg.Data = t.TempDir()
			tc.mutate(&cfg)
			s, err := New(cfg, Deps{})
			if err == nil {
				s.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
	t.Run("loopback variants accepted", func(t *testing.T) {
		for _, l := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
			cfg := DefaultConfig()
			cfg.Listen = l
			cfg.Data = t.TempDir()
			s, err := New(cfg, Deps{})
			if err != nil {
				if strings.Contains(l, "::1") && strings.Contains(err.Error(), "assign") {
					continue // no IPv6 loopback in this sandbox
				}
				t.Fatalf("%s: %v", l, err)
			}
			s.Close()
		}
	})
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		h, want string
		ok      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"", "", false},
		{"Bear", "", false},
	}
	for _, tc := range tests {
		got, ok := bearerToken(tc.h)
		if got != tc.want || ok != tc.ok {
			t.Errorf("bearerToken(%q) = %q, %v", tc.h, got, ok)
		}
	}
}
