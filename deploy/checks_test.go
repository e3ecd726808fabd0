package deploy_test

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const appUID = 65532

// sidecarMemoryLimit is the most memory an Outrigger sidecar may be given
// in the examples: they must show it fits (GOMEMLIMIT follows the limit).
var sidecarMemoryLimit = resource.MustParse("64Mi")

// TestPlainManifests runs the semantic checks on every plain manifest file.
func TestPlainManifests(t *testing.T) {
	for _, file := range plainManifests(t) {
		t.Run(file, func(t *testing.T) {
			for _, p := range checkSet(readManifests(t, file), t.TempDir()) {
				t.Error(p)
			}
		})
	}
}

// problems collects what the checks find, so that tests can assert on them.
type problems []string

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// checkSet checks one rendering: each Deployment's pod, and that Services,
// PodDisruptionBudgets and volumes point at things that exist in it.
func checkSet(set manifestSet, tmp string) []string {
	var pr problems
	deps := set.deployments()
	for _, d := range deps {
		for _, p := range checkDeployment(set, d, tmp) {
			pr.add("Deployment %s: %s", d.Name, p)
		}
	}
	if len(deps) == 0 {
		return pr // e.g. an overlay's lone PodDisruptionBudget
	}
	for _, o := range set {
		switch obj := o.obj.(type) {
		case *corev1.Service:
			d := selectDeployment(deps, labels.SelectorFromSet(obj.Spec.Selector))
			if d == nil {
				pr.add("%s: selector %v matches no Deployment's pods", o.where, obj.Spec.Selector)
				continue
			}
			for _, p := range obj.Spec.Ports {
				if _, ok := containerPort(&d.Spec.Template.Spec, p.TargetPort); !ok {
					pr.add("%s: port %q targets %s, which no container of %s declares", o.where, p.Name, p.TargetPort.String(), d.Name)
				}
			}
		case *policyv1.PodDisruptionBudget:
			sel, err := metav1LabelSelector(obj)
			if err != nil {
				pr.add("%s: %v", o.where, err)
			} else if selectDeployment(deps, sel) == nil {
				pr.add("%s: selector matches no Deployment's pods", o.where)
			}
		}
	}
	return pr
}

func selectDeployment(deps []*appsv1.Deployment, sel labels.Selector) *appsv1.Deployment {
	for _, d := range deps {
		if !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return d
		}
	}
	return nil
}

// containerPort resolves a Service or probe port (number or name) to a
// declared container port.
func containerPort(pod *corev1.PodSpec, port intstr.IntOrString) (int32, bool) {
	for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
					return p.ContainerPort, true
				}
			}
		}
	}
	return 0, false
}

// container is one container of a pod with its parsed command line.
type container struct {
	c       corev1.Container
	init    bool // an init container (sidecar or not)
	sidecar bool // a native sidecar: init container with restartPolicy Always
	args    *parsedArgs
}

func isOutrigger(c corev1.Container) bool {
	return strings.Contains(c.Image, "/outrigger:") || strings.Contains(c.Image, "/outrigger@")
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func checkDeployment(set manifestSet, d *appsv1.Deployment, tmp string) []string {
	var pr problems
	pod := &d.Spec.Template.Spec
	sel, err := metav1LabelSelectorOf(d)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		pr.add("selector %v does not match the pod template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}

	// Pod-level security: the "restricted" Pod Security Standard.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		pr.add("pod securityContext.runAsNonRoot must be true")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		pr.add("pod securityContext.seccompProfile must be RuntimeDefault")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		pr.add("automountServiceAccountToken must be false: nothing in the pod talks to the Kubernetes API")
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		switch {
		case v.Secret != nil && set.find("Secret", v.Secret.SecretName) == nil:
			pr.add("volume %q: Secret %q is not defined alongside (a stub is expected)", v.Name, v.Secret.SecretName)
		case v.ConfigMap != nil && set.find("ConfigMap", v.ConfigMap.Name) == nil:
			pr.add("volume %q: ConfigMap %q is not defined alongside", v.Name, v.ConfigMap.Name)
		}
	}

	var all []*container
	for _, c := range pod.InitContainers {
		all = append(all, &container{c: c, init: true, sidecar: c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways})
	}
	for _, c := range pod.Containers {
		all = append(all, &container{c: c})
	}
	for _, ct := range all {
		c := ct.c
		checkContainerSecurity(&pr, pod, c)
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				pr.add("container %s mounts volume %q, which the pod does not define", c.Name, m.Name)
			}
		}
		if c.Resources.Limits.Memory().IsZero() {
			pr.add("container %s has no memory limit", c.Name)
		}
		if !isOutrigger(c) {
			continue
		}
		if len(c.Command) > 0 {
			pr.add("container %s overrides the image's ENTRYPOINT (command: %q); give the role in args", c.Name, c.Command)
		}
		p, err := parseArgs(c.Args, envMap(c))
		if err != nil {
			pr.add("container %s: %v", c.Name, err)
			continue
		}
		if err := p.validate(tmp); err != nil {
			pr.add("container %s: args %q rejected by Validate: %v", c.Name, c.Args, err)
		}
		ct.args = p
		checkRoleContainer(&pr, pod, ct)
	}
	checkPodWiring(&pr, set, pod, all)
	return pr
}

func checkContainerSecurity(pr *problems, pod *corev1.PodSpec, c corev1.Container) {
	sc := c.SecurityContext
	if sc == nil {
		pr.add("container %s: no securityContext", c.Name)
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		pr.add("container %s: allowPrivilegeEscalation must be false", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		pr.add("container %s: readOnlyRootFilesystem must be true", c.Name)
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
		pr.add("container %s: capabilities must drop ALL and add none", c.Name)
	}
	if uid := runAsUser(pod, c); uid != appUID {
		pr.add("container %s: runs as UID %d, want %d (the image's user; the same UID lets sync signal the app)", c.Name, uid, appUID)
	}
}

func runAsUser(pod *corev1.PodSpec, c corev1.Container) int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return *c.SecurityContext.RunAsUser
	}
	if pod.SecurityContext != nil && pod.SecurityContext.RunAsUser != nil {
		return *pod.SecurityContext.RunAsUser
	}
	return -1
}

// checkRoleContainer checks an Outrigger container against its parsed flags.
func checkRoleContainer(pr *problems, pod *corev1.PodSpec, ct *container) {
	c, p := ct.c, ct.args
	longRunning := p.role == "proxy" || p.role == "config serve" || (p.role == "sync" && !p.sync.Once && !p.sync.DryRun)
	switch {
	case p.role == "sync" && p.sync.Once:
		if !ct.init || ct.sidecar {
			pr.add("container %s: sync --once belongs in a plain init container (no restartPolicy)", c.Name)
		}
	case (p.role == "proxy" || p.role == "sync") && !ct.sidecar:
		pr.add("container %s: outrigger %s must be a native sidecar (an initContainer with restartPolicy: Always)", c.Name, p.role)
	}
	if ct.sidecar && c.Resources.Limits.Memory().Cmp(sidecarMemoryLimit) > 0 {
		pr.add("container %s: memory limit %s above the %s a sidecar needs", c.Name, c.Resources.Limits.Memory(), &sidecarMemoryLimit)
	}
	if !longRunning {
		if c.StartupProbe != nil || c.ReadinessProbe != nil || c.LivenessProbe != nil {
			pr.add("container %s: a run-to-completion container must not have probes", c.Name)
		}
		return
	}

	// Probes: on the admin listener (proxy, sync) or the API listener (config serve).
	probeAddr, scheme := p.common.Admin, corev1.URISchemeHTTP
	if p.role == "config serve" {
		probeAddr = p.api.Listen
		if p.api.Cert != "" {
			scheme = corev1.URISchemeHTTPS
		}
	}
	host, portStr, err := net.SplitHostPort(probeAddr)
	if err != nil {
		pr.add("container %s: probe listener %q: %v", c.Name, probeAddr, err)
		return
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		pr.add("container %s: probes need the listener on the pod IP, but it binds %q (the kubelet cannot reach loopback)", c.Name, probeAddr)
	}
	wantPort, _ := strconv.Atoi(portStr)
	for _, pb := range []struct {
		kind, path string
		probe      *corev1.Probe
	}{
		// A sidecar's startup probe gates the next container's start, so it
		// must not wait for the app (which starts last): /healthz, not /readyz.
		{"startupProbe", "/healthz", c.StartupProbe},
		{"readinessProbe", "/readyz", c.ReadinessProbe},
		{"livenessProbe", "/healthz", c.LivenessProbe},
	} {
		if pb.probe == nil || pb.probe.HTTPGet == nil {
			pr.add("container %s: %s must be an httpGet of %s", c.Name, pb.kind, pb.path)
			continue
		}
		g := pb.probe.HTTPGet
		if g.Path != pb.path {
			pr.add("container %s: %s path %q, want %q", c.Name, pb.kind, g.Path, pb.path)
		}
		if s := g.Scheme; (s == "" && scheme != corev1.URISchemeHTTP) || (s != "" && s != scheme) {
			pr.add("container %s: %s scheme %q, want %q", c.Name, pb.kind, s, scheme)
		}
		if port, ok := containerPort(pod, g.Port); !ok || int(port) != wantPort {
			pr.add("container %s: %s port %s is not the listener's port %d", c.Name, pb.kind, g.Port.String(), wantPort)
		}
	}
}

// checkPodWiring checks how the containers of one pod fit together.
func checkPodWiring(pr *problems, set manifestSet, pod *corev1.PodSpec, all []*container) {
	var proxyC, syncC, appC *container
	firstSidecar := -1
	for i, ct := range all {
		if ct.sidecar && firstSidecar < 0 {
			firstSidecar = i
		}
		switch {
		case ct.args == nil && !ct.init, ct.args != nil && ct.args.role == "legacy-app":
			appC = ct
		case ct.args != nil && ct.args.role == "proxy":
			proxyC = ct
		case ct.args != nil && ct.args.role == "sync" && !ct.args.sync.Once:
			syncC = ct
		case ct.args != nil && ct.args.role == "sync" && ct.args.sync.Once:
			if firstSidecar >= 0 {
				pr.add("init container %s (sync --once) must run before the sidecars, so the app's config exists when they start", ct.c.Name)
			}
		}
	}
	if proxyC == nil && syncC == nil {
		return // not a sidecar pod (the config API)
	}
	if appC == nil {
		pr.add("a pod with Outrigger sidecars has no app container")
		return
	}

	if proxyC != nil {
		pc := proxyC.args.proxy
		// The Service-facing port and the proxy's --listen agree.
		_, port, _ := net.SplitHostPort(pc.Listen)
		if n, _ := strconv.Atoi(port); !declaresPort(proxyC.c, int32(n)) {
			pr.add("proxy listens on %q but its container does not declare port %s", pc.Listen, port)
		}
		// The grace period covers the app's preStop, the proxy's delay and drain.
		need := pc.ShutdownDelay + pc.DrainTimeout + preStopSleep(appC.c)
		if grace := gracePeriod(pod); grace <= need {
			pr.add("terminationGracePeriodSeconds %v must exceed the app's preStop sleep + --shutdown-delay + --drain-timeout = %v", grace, need)
		}
		// Certificates come from a kubernetes.io/tls Secret.
		if pc.CertFile != "" {
			v := mountedVolume(pod, proxyC.c, pc.CertFile)
			if v == nil || v.Secret == nil {
				pr.add("proxy --cert %q is not on a Secret volume", pc.CertFile)
			} else if s, _ := set.find("Secret", v.Secret.SecretName).(*corev1.Secret); s != nil && s.Type != corev1.SecretTypeTLS {
				pr.add("proxy --cert comes from Secret %q of type %q, want %q", s.Name, s.Type, corev1.SecretTypeTLS)
			}
		}
		// The upstream is the app's listener.
		if appC.args != nil && appC.args.app != nil && !strings.HasSuffix(pc.Upstream, "//"+appC.args.app.Listen) {
			pr.add("proxy --upstream %q is not the app's --listen %q", pc.Upstream, appC.args.app.Listen)
		}
	}
	if syncC != nil {
		sc := syncC.args.sync
		// The app reads what sync writes: --dest is on a volume the app mounts too.
		sv := mountedVolume(pod, syncC.c, sc.Dest)
		av := mountedVolume(pod, appC.c, sc.Dest)
		if sv == nil || av == nil || sv.Name != av.Name {
			pr.add("sync --dest %q is not on a volume shared with the app container", sc.Dest)
		}
		if appC.args != nil && appC.args.app != nil && appC.args.app.Config != sc.Dest {
			pr.add("sync --dest %q is not the app's --config %q", sc.Dest, appC.args.app.Config)
		}
		if sc.PidFile != "" || sc.Process != "" {
			if pod.ShareProcessNamespace == nil || !*pod.ShareProcessNamespace {
				pr.add("sync signals the app, so the pod needs shareProcessNamespace: true")
			}
			if runAsUser(pod, syncC.c) != runAsUser(pod, appC.c) {
				pr.add("sync (UID %d) must run as the app's UID (%d) to signal it", runAsUser(pod, syncC.c), runAsUser(pod, appC.c))
			}
		}
		if sc.PidFile != "" && appC.args != nil && appC.args.app != nil && appC.args.app.PidFile != sc.PidFile {
			pr.add("sync --pid-file %q is not the app's --pid-file %q", sc.PidFile, appC.args.app.PidFile)
		}
	}
}

func declaresPort(c corev1.Container, port int32) bool {
	for _, p := range c.Ports {
		if p.ContainerPort == port {
			return true
		}
	}
	return false
}

func preStopSleep(c corev1.Container) time.Duration {
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		return time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	return 0
}

func gracePeriod(pod *corev1.PodSpec) time.Duration {
	if pod.TerminationGracePeriodSeconds == nil {
		return 30 * time.Second // the Kubernetes default
	}
	return time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
}

// mountedVolume returns the volume under which c sees file, or nil.
func mountedVolume(pod *corev1.PodSpec, c corev1.Container, file string) *corev1.Volume {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		mp := path.Clean(m.MountPath)
		if strings.HasPrefix(path.Clean(file), mp+"/") && (best == nil || len(mp) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil {
		return nil
	}
	for i, v := range pod.Volumes {
		if v.Name == best.Name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

func metav1LabelSelectorOf(d *appsv1.Deployment) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(d.Spec.Selector)
}

func metav1LabelSelector(pdb *policyv1.PodDisruptionBudget) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
}
