package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireNetns skips (or, under CI=true, fails) when network namespaces
// cannot be created: they need root and iproute2's ip.
func requireNetns(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root to create network namespaces"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs ip (Debian package iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("pod-in-a-network-namespace test %s; CI must run it", why)
	}
	t.Skipf("skipping pod-in-a-network-namespace test: it %s (under CI=true this fails)", why)
}

// netnsPair is two network namespaces joined by a veth pair: "cli" plays
// the world outside the pod, "pod" the pod. Both have loopback up. The
// addresses exist only inside these namespaces.
type netnsPair struct {
	cli, pod       string
	cliIP, podIP   string
	cliVeth, podIf string
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	n := &netnsPair{
		cli: "orcli-" + id, pod: "orpod-" + id,
		cliIP: "10.213.0.1", podIP: "10.213.0.2",
		cliVeth: "orc" + id, podIf: "orp" + id,
	}
	ipCmd(t, "netns", "add", n.cli)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.cli).Run() })
	ipCmd(t, "netns", "add", n.pod)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.pod).Run() })
	ipCmd(t, "link", "add", n.cliVeth, "type", "veth", "peer", "name", n.podIf)
	ipCmd(t, "link", "set", n.cliVeth, "netns", n.cli)
	ipCmd(t, "link", "set", n.podIf, "netns", n.pod)
	for _, s := range []struct{ ns, dev, ip string }{{n.cli, n.cliVeth, n.cliIP}, {n.pod, n.podIf, n.podIP}} {
		ipCmd(t, "-n", s.ns, "addr", "add", s.ip+"/30", "dev", s.dev)
		ipCmd(t, "-n", s.ns, "link", "set", s.dev, "up")
		ipCmd(t, "-n", s.ns, "link", "set", "lo", "up")
	}
	return n
}

// argv prefixes a command so it runs inside namespace ns.
func inNS(ns string, argv ...string) []string {
	if argv[0] == "outrigger" {
		argv = append([]string{bin}, argv[1:]...)
	}
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}

// run runs a command inside ns and returns its combined output and exit code.
func runIn(t *testing.T, ns string, argv ...string) (string, int) {
	t.Helper()
	full := inNS(ns, argv...)
	out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("%v: %v", full, err)
	}
	return string(out), 0
}

// dialerIn returns a DialContext that creates its sockets inside namespace
// ns: the calling goroutine's OS thread enters ns for the socket() call and
// returns to its own namespace afterwards. A socket keeps the namespace it
// was created in, so the connection lives in ns.
func dialerIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("setns %s: %w", ns, err)
		}
		var d net.Dialer
		conn, dialErr := d.DialContext(ctx, network, addr)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// This thread is stuck in ns: keep it locked so the runtime
			// destroys it when the goroutine exits instead of reusing it.
			if conn != nil {
				conn.Close()
			}
			return nil, fmt.Errorf("setns back: %w", err)
		}
		runtime.UnlockOSThread()
		return conn, dialErr
	}
}
