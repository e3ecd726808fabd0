package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/outrigger-sidecar/outrigger/internal/configapi"
)

// composeFile is the subset of the Compose specification that
// deploy/compose/compose.yaml uses. It is decoded with KnownFields, so a key
// outside this subset (a typo, or a feature the checks below do not cover)
// fails the test: extend the struct deliberately.
type composeFile struct {
	Name      string                    `yaml:"name"`
	Hardening composeService            `yaml:"x-hardening"`
	Services  map[string]composeService `yaml:"services"`
	Volumes   map[string]struct{}       `yaml:"volumes"`
	Secrets   map[string]composeSecret  `yaml:"secrets"`
}

type composeService struct {
	Image           string                      `yaml:"image"`
	User            string                      `yaml:"user"`
	ReadOnly        bool                        `yaml:"read_only"`
	CapDrop         []string                    `yaml:"cap_drop"`
	SecurityOpt     []string                    `yaml:"security_opt"`
	Tmpfs           []string                    `yaml:"tmpfs"`
	Command         []string                    `yaml:"command"`
	Environment     map[string]string           `yaml:"environment"`
	Ports           []string                    `yaml:"ports"`
	Volumes         []string                    `yaml:"volumes"`
	Secrets         []string                    `yaml:"secrets"`
	DependsOn       map[string]composeDependsOn `yaml:"depends_on"`
	Restart         string                      `yaml:"restart"`
	NetworkMode     string                      `yaml:"network_mode"`
	Pid             string                      `yaml:"pid"`
	StopGracePeriod string                      `yaml:"stop_grace_period"`
	Healthcheck     *composeHealthcheck         `yaml:"healthcheck"`
}

type composeDependsOn struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test          []string `yaml:"test"`
	Interval      string   `yaml:"interval"`
	Timeout       string   `yaml:"timeout"`
	Retries       int      `yaml:"retries"`
	StartPeriod   string   `yaml:"start_period"`
	StartInterval string   `yaml:"start_interval"`
}

type composeSecret struct {
	File string `yaml:"file"`
}

func decodeCompose(data []byte) (*composeFile, error) {
	var f composeFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("compose.yaml: %w", err)
	}
	if len(f.Services) == 0 {
		return nil, fmt.Errorf("compose.yaml: no services")
	}
	return &f, nil
}

func TestComposeDecodeRejects(t *testing.T) {
	tests := []struct{ name, doc, wantErr string }{
		{"unknown key", "services: {a: {image: x, comand: [proxy]}}\n", "field comand not found"},
		{"wrong type", "services: {a: {command: 3}}\n", "cannot unmarshal"},
		{"no services", "name: x\n", "no services"},
		{"not YAML", "services: [\n", "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCompose([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCompose(t *testing.T) {
	dir := filepath.Join("compose")
	data, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeCompose(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app", "proxy", "sync", "config", "config-init", "seed"} {
		if _, ok := f.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}

	tmp := t.TempDir()
	for name, s := range f.Services {
		t.Run(name, func(t *testing.T) {
			// The merge key (<<: *hardening) must have applied.
			if s.User != "65532:65532" || !s.ReadOnly || len(s.CapDrop) != 1 || s.CapDrop[0] != "ALL" {
				t.Errorf("not hardened: user %q read_only %v cap_drop %v", s.User, s.ReadOnly, s.CapDrop)
			}
			p, err := parseArgs(s.Command, s.Environment)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.validate(tmp); err != nil {
				t.Errorf("command %q rejected by Validate: %v", s.Command, err)
			}
			for dep := range s.DependsOn {
				if _, ok := f.Services[dep]; !ok {
					t.Errorf("depends_on %q: no such service", dep)
				}
			}
			for _, sec := range s.Secrets {
				if _, ok := f.Secrets[sec]; !ok {
					t.Errorf("secret %q is not declared at the top level", sec)
				}
			}
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if !strings.HasPrefix(src, ".") {
					if _, ok := f.Volumes[src]; !ok {
						t.Errorf("volume %q is not declared at the top level", src)
					}
				} else if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("bind mount %q: %v", v, err)
				}
			}
			switch {
			case p.role == "proxy", p.role == "sync" && !p.sync.Once:
				// The pod pattern: the app's loopback (and, for signals, its PIDs).
				if s.NetworkMode != "service:app" {
					t.Errorf("network_mode %q, want service:app (the app binds loopback only)", s.NetworkMode)
				}
				if p.role == "sync" && (p.sync.PidFile != "" || p.sync.Process != "") && s.Pid != "service:app" {
					t.Errorf("sync signals the app but pid is %q, want service:app", s.Pid)
				}
				if p.role == "proxy" && !strings.HasSuffix(p.proxy.Upstream, "//"+f.Services["app"].appListen(t)) {
					t.Errorf("proxy --upstream %q is not the app's --listen", p.proxy.Upstream)
				}
			}
			if p.role == "sync" && !hasVolume(s, "shared:") {
				t.Error("sync does not mount the shared volume")
			}
		})
	}
	if !hasVolume(f.Services["app"], "shared:") {
		t.Error("app does not mount the shared volume")
	}

	// Tokens: the file parses, and each client token file matches a digest with the right role.
	tokens, err := configapi.LoadTokens(filepath.Join(dir, f.Secrets["tokens.yaml"].File))
	if err != nil {
		t.Fatal(err)
	}
	if tokens.Len() != 2 {
		t.Errorf("tokens file holds %d tokens, want 2", tokens.Len())
	}
	checkTokenDigest(t, filepath.Join(dir, "tokens.yaml"), filepath.Join(dir, f.Secrets["sidecar-token"].File), "read")
	checkTokenDigest(t, filepath.Join(dir, "tokens.yaml"), filepath.Join(dir, f.Secrets["operator-token"].File), "write")
}

func (s composeService) appListen(t *testing.T) string {
	p, err := parseArgs(s.Command, s.Environment)
	if err != nil || p.app == nil {
		t.Fatalf("app service command %q: not the legacy app (%v)", s.Command, err)
	}
	return p.app.Listen
}

func hasVolume(s composeService, prefix string) bool {
	for _, v := range s.Volumes {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}

// checkTokenDigest checks that the plaintext token in tokenFile has its
// SHA-256 in tokensFile with the wanted role.
func checkTokenDigest(t *testing.T, tokensFile, tokenFile, role string) {
	t.Helper()
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	checkTokenIn(t, tokensFile, data, strings.TrimSpace(string(tok)), role)
}

func checkTokenIn(t *testing.T, where string, tokensYAML []byte, token, role string) {
	t.Helper()
	var f struct {
		Tokens []struct {
			Name, SHA256, Role, Token string
			Configs                   []string
		}
	}
	if err := yaml.Unmarshal(tokensYAML, &f); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	sum := sha256.Sum256([]byte(token))
	for _, e := range f.Tokens {
		if e.SHA256 == hex.EncodeToString(sum[:]) || (e.Token != "" && e.Token == token) {
			if e.Role != role {
				t.Errorf("%s: token %q has role %q, want %q", where, e.Name, e.Role, role)
			}
			return
		}
	}
	t.Errorf("%s: no entry for the client's token (sha256 %x)", where, sum)
}
