package deploy_test

import (
	"bytes"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/outrigger-sidecar/outrigger/internal/configapi"
)

// TestConfigAPITokens checks the tokens Secret with the server's own parser
// and that the sidecars' token is in it, read-only, for the config they sync.
func TestConfigAPITokens(t *testing.T) {
	api := readManifests(t, filepath.Join("kubernetes", "base", "config-api.yaml"))
	app := readManifests(t, filepath.Join("kubernetes", "base", "app-with-sidecars.yaml"))

	tokSecret, _ := api.find("Secret", "outrigger-config-tokens").(*corev1.Secret)
	if tokSecret == nil {
		t.Fatal("config-api.yaml: no Secret outrigger-config-tokens")
	}
	tokensYAML := tokSecret.StringData["tokens.yaml"]
	if _, err := configapi.ParseTokens([]byte(tokensYAML)); err != nil {
		t.Fatalf("tokens.yaml in Secret outrigger-config-tokens: %v", err)
	}

	creds, _ := app.find("Secret", "legacy-app-sync-credentials").(*corev1.Secret)
	if creds == nil {
		t.Fatal("app-with-sidecars.yaml: no Secret legacy-app-sync-credentials")
	}
	checkTokenIn(t, "outrigger-config-tokens", []byte(tokensYAML), creds.StringData["token"], "read")

	// The sidecar token may see the config that sync's --source names.
	var f struct {
		Tokens []struct {
			Name, SHA256, Role string
			Configs            []string
		}
	}
	if err := yaml.Unmarshal([]byte(tokensYAML), &f); err != nil {
		t.Fatal(err)
	}
	for _, d := range app.deployments() {
		for _, c := range d.Spec.Template.Spec.InitContainers {
			p, err := parseArgs(c.Args, envMap(c))
			if err != nil || p.sync == nil {
				continue
			}
			name := path.Base(p.sync.Source)
			for _, e := range f.Tokens {
				if e.Role != "read" {
					continue
				}
				ok := len(e.Configs) == 0
				for _, pat := range e.Configs {
					if m, _ := path.Match(pat, name); m {
						ok = true
					}
				}
				if !ok {
					t.Errorf("container %s syncs config %q, but read token %q may only see %v", c.Name, name, e.Name, e.Configs)
				}
			}
		}
	}
}

// certManagerObject is the subset of cert-manager's Certificate and Issuer
// (cert-manager.io/v1) these examples use, decoded strictly: cert-manager's
// Go types are not a dependency worth taking for one example file.
type certManagerObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		// Certificate
		SecretName  string   `yaml:"secretName"`
		CommonName  string   `yaml:"commonName"`
		DNSNames    []string `yaml:"dnsNames"`
		IsCA        bool     `yaml:"isCA"`
		Duration    string   `yaml:"duration"`
		RenewBefore string   `yaml:"renewBefore"`
		Usages      []string `yaml:"usages"`
		PrivateKey  *struct {
			Algorithm      string `yaml:"algorithm"`
			Size           int    `yaml:"size"`
			RotationPolicy string `yaml:"rotationPolicy"`
		} `yaml:"privateKey"`
		IssuerRef *struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"issuerRef"`
		// Issuer
		SelfSigned *struct{} `yaml:"selfSigned"`
		CA         *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"ca"`
	} `yaml:"spec"`
}

func TestCertManagerManifest(t *testing.T) {
	data := mustRead(t, filepath.Join("kubernetes", "cert-manager-certificate.yaml"))
	docs, err := splitDocuments(data)
	if err != nil {
		t.Fatal(err)
	}
	issuers := map[string]bool{}
	secrets := map[string]bool{}
	var certs []certManagerObject
	for i, doc := range docs {
		var o certManagerObject
		dec := yaml.NewDecoder(bytes.NewReader(doc))
		dec.KnownFields(true)
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		if o.APIVersion != "cert-manager.io/v1" {
			t.Errorf("document %d: apiVersion %q", i+1, o.APIVersion)
		}
		switch o.Kind {
		case "Issuer":
			issuers[o.Metadata.Name] = true
		case "Certificate":
			certs = append(certs, o)
			secrets[o.Spec.SecretName] = true
		default:
			t.Errorf("document %d: kind %q", i+1, o.Kind)
		}
	}
	for _, c := range certs {
		ref := c.Spec.IssuerRef
		if ref == nil || (ref.Kind == "Issuer" && !issuers[ref.Name]) {
			t.Errorf("Certificate %s: issuerRef %+v is not an Issuer defined here (nor a ClusterIssuer)", c.Metadata.Name, ref)
		}
		if !c.Spec.IsCA && (c.Spec.PrivateKey == nil || c.Spec.PrivateKey.RotationPolicy != "Always") {
			t.Errorf("Certificate %s: privateKey.rotationPolicy should be Always", c.Metadata.Name)
		}
	}
	// The Secrets the manifests mount are the ones issued here.
	for _, want := range []string{"legacy-app-tls", "outrigger-config-tls"} {
		if !secrets[want] {
			t.Errorf("no Certificate issues Secret %q", want)
		}
	}
	// The config API's certificate names its Service.
	for _, c := range certs {
		if c.Spec.SecretName == "outrigger-config-tls" && !contains(c.Spec.DNSNames, "outrigger-config") {
			t.Errorf("Certificate %s: dnsNames %v lack the Service name outrigger-config that sync's --source uses", c.Metadata.Name, c.Spec.DNSNames)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
