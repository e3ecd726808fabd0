package deploy_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestChecksCatchMistakes breaks the example pod in the ways people break
// sidecar pods and expects checkSet to say so: the checks are not vacuous.
func TestChecksCatchMistakes(t *testing.T) {
	file := filepath.Join("kubernetes", "base", "app-with-sidecars.yaml")
	byName := func(d *appsv1.Deployment, name string) *corev1.Container {
		pod := &d.Spec.Template.Spec
		for i := range pod.InitContainers {
			if pod.InitContainers[i].Name == name {
				return &pod.InitContainers[i]
			}
		}
		for i := range pod.Containers {
			if pod.Containers[i].Name == name {
				return &pod.Containers[i]
			}
		}
		t.Fatalf("no container %s", name)
		return nil
	}
	setArg := func(c *corev1.Container, flag, value string) {
		for i, a := range c.Args {
			if strings.HasPrefix(a, flag+"=") {
				c.Args[i] = flag + "=" + value
				return
			}
		}
		c.Args = append(c.Args, flag+"="+value)
	}
	tests := []struct {
		name   string
		break_ func(d *appsv1.Deployment)
		want   string
	}{
		{"sidecar without restartPolicy", func(d *appsv1.Deployment) { byName(d, "proxy").RestartPolicy = nil }, "native sidecar"},
		{"config init after the sidecars", func(d *appsv1.Deployment) {
			ic := d.Spec.Template.Spec.InitContainers
			d.Spec.Template.Spec.InitContainers = append(ic[1:], ic[0])
		}, "must run before the sidecars"},
		{"startup probe on readyz", func(d *appsv1.Deployment) { byName(d, "proxy").StartupProbe.HTTPGet.Path = "/readyz" }, "startupProbe path"},
		{"admin on loopback", func(d *appsv1.Deployment) { setArg(byName(d, "sync"), "--admin", "127.0.0.1:9902") }, "kubelet cannot reach loopback"},
		{"probe on the wrong port", func(d *appsv1.Deployment) { setArg(byName(d, "proxy"), "--admin", ":9999") }, "is not the listener's port"},
		{"misspelt flag", func(d *appsv1.Deployment) { setArg(byName(d, "proxy"), "--drain-timout", "1s") }, "flag provided but not defined"},
		{"flag value Validate rejects", func(d *appsv1.Deployment) { setArg(byName(d, "proxy"), "--upstream", "http://10.1.2.3:8080") }, "--upstream"},
		{"misspelt env var", func(d *appsv1.Deployment) {
			c := byName(d, "sync")
			c.Env = append(c.Env, corev1.EnvVar{Name: "OUTRIGGER_LOGLEVEL", Value: "debug"})
		}, "no flag"},
		{"grace period too short", func(d *appsv1.Deployment) {
			g := int64(10)
			d.Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds"},
		{"no shared PID namespace", func(d *appsv1.Deployment) { d.Spec.Template.Spec.ShareProcessNamespace = nil }, "shareProcessNamespace"},
		{"sync as another UID", func(d *appsv1.Deployment) {
			u := int64(1000)
			byName(d, "sync").SecurityContext.RunAsUser = &u
		}, "UID"},
		{"dest not shared with the app", func(d *appsv1.Deployment) { setArg(byName(d, "sync"), "--dest", "/etc/outrigger/sync/app.json") }, "not on a volume shared"},
		{"privilege escalation", func(d *appsv1.Deployment) {
			b := true
			byName(d, "app").SecurityContext.AllowPrivilegeEscalation = &b
		}, "allowPrivilegeEscalation"},
		{"writable root", func(d *appsv1.Deployment) { byName(d, "proxy").SecurityContext.ReadOnlyRootFilesystem = nil }, "readOnlyRootFilesystem"},
		{"sidecar memory above 64Mi", func(d *appsv1.Deployment) {
			byName(d, "proxy").Resources.Limits[corev1.ResourceMemory] = resource.MustParse("256Mi")
		}, "memory limit"},
		{"mount of an undefined volume", func(d *appsv1.Deployment) {
			c := byName(d, "app")
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "nope", MountPath: "/x"})
		}, "does not define"},
		{"upstream is not the app", func(d *appsv1.Deployment) { setArg(byName(d, "proxy"), "--upstream", "http://127.0.0.1:9090") }, "is not the app's --listen"},
		{"selector misses the pods", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"x": "y"} }, "selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := readManifests(t, file) // a fresh copy to break
			d := set.deployments()[0]
			tt.break_(d)
			probs := checkSet(set, t.TempDir())
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("no problem mentions %q; got %q", tt.want, probs)
			}
		})
	}
}
