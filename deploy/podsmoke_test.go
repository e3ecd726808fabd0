package deploy_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/etcdtest"
)

// TestKubernetesPodSmoke runs the Kubernetes example as real processes: the
// config API Deployment of config-api.yaml (on a real embedded etcd, with
// TLS), then the pod of app-with-sidecars.yaml in its init order —
// config-init, the sync and proxy sidecars, the app — each with its own
// args. What the kubelet would provide is reproduced: every volume is a
// directory, Secret volumes are laid out like the kubelet's (..data
// symlinks) with the manifests' stub tokens and freshly issued certificates
// in place of the empty stubs, and every probe of the manifests is then
// fetched on the port it names. Only addresses are rewritten: the fixed
// container ports to free 127.0.0.1 ports and the Service/etcd host names to
// 127.0.0.1.
func TestKubernetesPodSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the pod smoke test (builds and runs the binary)")
	}
	apiSet := readManifests(t, filepath.Join("kubernetes", "base", "config-api.yaml"))
	appSet := readManifests(t, filepath.Join("kubernetes", "base", "app-with-sidecars.yaml"))
	apiDep, _ := apiSet.find("Deployment", "outrigger-config").(*appsv1.Deployment)
	appDep, _ := appSet.find("Deployment", "legacy-app").(*appsv1.Deployment)
	if apiDep == nil || appDep == nil {
		t.Fatal("Deployments outrigger-config or legacy-app not found")
	}
	bin := t.TempDir()
	outrigger := goBuild(t, bin, "outrigger", "../cmd/outrigger")
	legacyApp := goBuild(t, bin, "legacy-app", "../examples/legacy-app")
	etcd := etcdtest.Start(t)

	// Certificates: what cert-manager-certificate.yaml would issue.
	ca := certstest.NewCA(t, "outrigger-internal-ca")
	apiLeaf := ca.Issue(t, certstest.LeafOpts{DNSNames: []string{"outrigger-config"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	appLeaf := ca.Issue(t, certstest.LeafOpts{DNSNames: []string{"app.example.com", "localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	issued := map[string]map[string][]byte{
		"outrigger-config-tls": {"tls.crt": apiLeaf.CertPEM, "tls.key": apiLeaf.KeyPEM, "ca.crt": ca.PEM},
		"legacy-app-tls":       {"tls.crt": appLeaf.CertPEM, "tls.key": appLeaf.KeyPEM, "ca.crt": ca.PEM},
	}

	// Every fixed container port gets a free loopback port.
	ports := map[int32]string{}
	for _, d := range []*appsv1.Deployment{apiDep, appDep} {
		for _, c := range append(append([]corev1.Container{}, d.Spec.Template.Spec.InitContainers...), d.Spec.Template.Spec.Containers...) {
			for _, p := range c.Ports {
				ports[p.ContainerPort] = freePort(t)
			}
		}
	}
	appAddr := freePort(t)
	pairs := []string{
		"https://outrigger-config:7700", "https://" + ports[7700],
		"127.0.0.1:8080", appAddr,
		"--etcd=http://etcd-0.etcd:2379,http://etcd-1.etcd:2379,http://etcd-2.etcd:2379", "--etcd=" + strings.Join(etcd, ","),
	}
	for cp, addr := range ports {
		pairs = append(pairs, "=:"+strconv.Itoa(int(cp)), "="+addr)
	}

	root := t.TempDir()
	runPod := func(name string, d *appsv1.Deployment, set manifestSet, ordered bool) {
		pod := &d.Spec.Template.Spec
		vols := podVolumes(t, filepath.Join(root, name), pod, set, issued)
		for _, c := range pod.InitContainers {
			args := containerArgs(c, vols, pairs)
			if c.RestartPolicy == nil { // a plain init container: runs to completion first
				run(t, c.Name, outrigger, args)
				continue
			}
			start(t, c.Name, outrigger, args)
			if ordered && c.StartupProbe != nil {
				// The kubelet starts the next container once this startup probe passes.
				waitProbe(t, c.Name, c.StartupProbe, pod, ports)
			}
		}
		for _, c := range pod.Containers {
			args := containerArgs(c, vols, pairs)
			if isOutrigger(c) && args[0] == "legacy-app" {
				start(t, c.Name, legacyApp, args[1:])
			} else {
				start(t, c.Name, outrigger, args)
			}
		}
		for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
			for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				if p != nil {
					waitProbe(t, c.Name, p, pod, ports)
				}
			}
		}
	}
	runPod("config-api", apiDep, apiSet, false)

	// The first version, pushed by an operator with the write token.
	seed := filepath.Join(root, "app.json")
	if err := os.WriteFile(seed, []byte(`{"greeting": "hello from kubernetes", "healthy": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	opToken := filepath.Join(root, "operator.token")
	if err := os.WriteFile(opToken, []byte("CHANGE-ME-operator-write-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(root, "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pushArgs := func(file string) []string {
		return []string{"config", "push", "legacy-app", file, "--server=https://" + ports[7700], "--token-file=" + opToken, "--ca=" + caFile}
	}
	run(t, "push", outrigger, pushArgs(seed))

	runPod("legacy-app", appDep, appSet, true)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "app.example.com"},
	}}
	waitHTTP(t, "https://"+ports[8443]+"/", client, "hello from kubernetes")
	if err := os.WriteFile(seed, []byte(`{"greeting": "second kubernetes version", "healthy": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "push", outrigger, pushArgs(seed))
	waitHTTP(t, "https://"+ports[8443]+"/", client, "second kubernetes version")
}

// podVolumes makes a directory for every volume of pod: emptyDirs empty,
// Secrets and ConfigMaps from set laid out the way the kubelet does, with
// issued content replacing the manifests' empty stubs.
func podVolumes(t *testing.T, dir string, pod *corev1.PodSpec, set manifestSet, issued map[string]map[string][]byte) map[string]string {
	t.Helper()
	vols := map[string]string{}
	for _, v := range pod.Volumes {
		path := filepath.Join(dir, v.Name)
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
		vols[v.Name] = path
		files := map[string][]byte{}
		switch {
		case v.Secret != nil:
			s, _ := set.find("Secret", v.Secret.SecretName).(*corev1.Secret)
			if s == nil {
				t.Fatalf("volume %s: Secret %s not in the manifests", v.Name, v.Secret.SecretName)
			}
			for k, val := range s.StringData {
				files[k] = []byte(val)
			}
			for k, val := range issued[s.Name] {
				files[k] = val
			}
			if s.Name == "legacy-app-sync-credentials" {
				files["ca.crt"] = issued["outrigger-config-tls"]["ca.crt"]
			}
		case v.ConfigMap != nil:
			cm, _ := set.find("ConfigMap", v.ConfigMap.Name).(*corev1.ConfigMap)
			if cm == nil {
				t.Fatalf("volume %s: ConfigMap %s not in the manifests", v.Name, v.ConfigMap.Name)
			}
			for k, val := range cm.Data {
				files[k] = []byte(val)
			}
		default:
			continue
		}
		certstest.NewSecretVolume(t, path, files)
	}
	return vols
}

// containerArgs rewrites c's args for this machine: mount paths to the
// volume directories, then the address pairs.
func containerArgs(c corev1.Container, vols map[string]string, pairs []string) []string {
	var rp []string
	for _, m := range c.VolumeMounts {
		rp = append(rp, strings.TrimSuffix(m.MountPath, "/")+"/", vols[m.Name]+"/")
	}
	r := strings.NewReplacer(append(rp, pairs...)...)
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		out[i] = r.Replace(a)
	}
	return out
}

// waitProbe fetches an httpGet probe of container name on its rewritten
// port until it answers 200.
func waitProbe(t *testing.T, name string, p *corev1.Probe, pod *corev1.PodSpec, ports map[int32]string) {
	t.Helper()
	if p.HTTPGet == nil {
		t.Fatalf("container %s: probe is not an httpGet", name)
	}
	port, ok := containerPort(pod, p.HTTPGet.Port)
	if !ok {
		t.Fatalf("container %s: probe port %s not declared", name, p.HTTPGet.Port.String())
	}
	scheme := "http"
	client := &http.Client{Timeout: 5 * time.Second}
	if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
		// The kubelet does not verify probe certificates either.
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	waitHTTP(t, scheme+"://"+ports[port]+p.HTTPGet.Path, client)
}
