package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest document.
type object struct {
	where string // "file.yaml#2 (Deployment legacy-app)"
	kind  string
	name  string
	obj   any // *appsv1.Deployment, *corev1.Service, …
}

// manifestSet is every object of one rendering (a plain file, or a
// kustomize build), with typed accessors.
type manifestSet []object

func (m manifestSet) deployments() []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, o := range m {
		if d, ok := o.obj.(*appsv1.Deployment); ok {
			out = append(out, d)
		}
	}
	return out
}

func (m manifestSet) find(kind, name string) any {
	for _, o := range m {
		if o.kind == kind && o.name == name {
			return o.obj
		}
	}
	return nil
}

// newTyped returns the k8s.io/api type for apiVersion and kind; only the
// kinds the manifests are meant to contain are known, so a typo in either
// fails.
func newTyped(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	}
	return nil, fmt.Errorf("apiVersion %q kind %q: not a kind these manifests use", apiVersion, kind)
}

// splitDocuments splits a multi-document YAML stream, dropping documents
// that hold only comments or whitespace.
func splitDocuments(data []byte) ([][]byte, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var probe any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		if probe == nil {
			continue
		}
		docs = append(docs, doc)
	}
}

// decodeManifests decodes every document of data STRICTLY into its
// k8s.io/api type: unknown or duplicate fields are errors, so a misspelt
// or misplaced key (say restartPolicy one level too deep) cannot pass.
func decodeManifests(name string, data []byte) (manifestSet, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out manifestSet
	for i, doc := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s#%d: %w", name, i+1, err)
		}
		obj, err := newTyped(tm.APIVersion, tm.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", name, i+1, err)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s#%d (%s): strict decoding: %w", name, i+1, tm.Kind, err)
		}
		meta := objectMeta(obj)
		if meta.Name == "" {
			return nil, fmt.Errorf("%s#%d (%s): metadata.name is empty", name, i+1, tm.Kind)
		}
		out = append(out, object{
			where: fmt.Sprintf("%s#%d (%s %s)", name, i+1, tm.Kind, meta.Name),
			kind:  tm.Kind,
			name:  meta.Name,
			obj:   obj,
		})
	}
	return out, nil
}

func objectMeta(obj any) metav1.ObjectMeta {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.ObjectMeta
	case *corev1.Service:
		return o.ObjectMeta
	case *corev1.Secret:
		return o.ObjectMeta
	case *corev1.ConfigMap:
		return o.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return o.ObjectMeta
	}
	return metav1.ObjectMeta{}
}

func readManifests(t *testing.T, path string) manifestSet {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set, err := decodeManifests(filepath.Base(path), data)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// Kubernetes files that are not plain manifests of k8s.io/api kinds.
var notPlainManifests = map[string]string{
	"kustomization.yaml":            "kustomize configuration (checked by TestKustomize)",
	"cert-manager-certificate.yaml": "cert-manager CRDs (checked by TestCertManagerManifest)",
}

// plainManifests lists every YAML file under deploy/kubernetes that is a
// plain manifest (including those of the overlays).
func plainManifests(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("kubernetes", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return nil
		}
		if _, skip := notPlainManifests[filepath.Base(path)]; skip {
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found only %d manifests under deploy/kubernetes: %v", len(files), files)
	}
	return files
}

// requireTool returns the path of a command-line tool, or skips the test
// when it is missing — except under CI=true, where a missing tool fails.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found in PATH (Debian: apt-get install -y %s)", name, debianPackage)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true requires it", msg)
	}
	t.Skip(msg)
	return ""
}

func TestManifestsDecodeStrictly(t *testing.T) {
	for _, file := range plainManifests(t) {
		t.Run(file, func(t *testing.T) {
			set := readManifests(t, file)
			if len(set) == 0 {
				t.Fatalf("%s: no documents", file)
			}
		})
	}
}

func TestStrictDecodingRejects(t *testing.T) {
	tests := []struct {
		name, doc, wantErr string
	}{
		{"unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {portz: []}\n", "unknown field"},
		{"misplaced restartPolicy", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: a\n          image: b\n          sidecar: {restartPolicy: Always}\n", "unknown field"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n", "already set"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "not a kind"},
		{"wrong apiVersion", "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: x}\n", "not a kind"},
		{"missing name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name"},
		{"bad quantity", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          resources: {limits: {memory: lots}}\n", "quantities"},
		{"not YAML", "apiVersion: [v1\n", "yaml"},
		{"scalar document", "just a string\n", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeManifests("test.yaml", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("decodeManifests: got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPlainFilesAreTheBase(t *testing.T) {
	// The files users `kubectl apply -f` are links to the kustomize base, so
	// the two cannot drift.
	for _, name := range []string{"app-with-sidecars.yaml", "config-api.yaml"} {
		t.Run(name, func(t *testing.T) {
			top, err := os.ReadFile(filepath.Join("kubernetes", name))
			if err != nil {
				t.Fatal(err)
			}
			base, err := os.ReadFile(filepath.Join("kubernetes", "base", name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(top, base) {
				t.Fatalf("kubernetes/%s differs from kubernetes/base/%s; it should be a link to it", name, name)
			}
		})
	}
}

// kustomize renders dir with `kubectl kustomize`.
func kustomize(t *testing.T, kubectl, dir string) []byte {
	t.Helper()
	ctx := t.Context()
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
	}
	return out
}

var kustomizations = []struct {
	dir                      string
	appReplicas, apiReplicas int32
	wantPDB                  []string
}{
	{"kubernetes/base", 2, 3, []string{"outrigger-config"}},
	{"kubernetes/overlays/dev", 1, 1, nil},
	{"kubernetes/overlays/production", 3, 3, []string{"outrigger-config", "legacy-app"}},
}

func TestKustomize(t *testing.T) {
	kubectl := requireTool(t, "kubectl", "kubectl")
	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			set, err := decodeManifests(k.dir, kustomize(t, kubectl, k.dir))
			if err != nil {
				t.Fatal(err)
			}
			app, _ := set.find("Deployment", "legacy-app").(*appsv1.Deployment)
			api, _ := set.find("Deployment", "outrigger-config").(*appsv1.Deployment)
			if app == nil || api == nil {
				t.Fatalf("%s renders no legacy-app or outrigger-config Deployment", k.dir)
			}
			if got := *app.Spec.Replicas; got != k.appReplicas {
				t.Errorf("legacy-app replicas = %d, want %d", got, k.appReplicas)
			}
			if got := *api.Spec.Replicas; got != k.apiReplicas {
				t.Errorf("outrigger-config replicas = %d, want %d", got, k.apiReplicas)
			}
			var pdbs []string
			for _, o := range set {
				if o.kind == "PodDisruptionBudget" {
					pdbs = append(pdbs, o.name)
				}
			}
			if !sameSet(pdbs, k.wantPDB) {
				t.Errorf("PodDisruptionBudgets = %v, want %v", pdbs, k.wantPDB)
			}
			for _, p := range checkSet(set, t.TempDir()) {
				t.Error(p)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
