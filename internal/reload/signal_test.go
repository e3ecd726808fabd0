package reload

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the re-executed test binary a helper instead of a test run:
//
//	listen:FILE   write "ready" to FILE, then a line per SIGHUP/SIGUSR1 received
//	send:PIDFILE  run Signal{PidFile: PIDFILE}.Reload and print the error
const childEnv = "RELOAD_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

func child(mode string) int {
	kind, arg, _ := strings.Cut(mode, ":")
	switch kind {
	case "listen":
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM)
		f, err := os.OpenFile(arg, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return 2
		}
		fmt.Fprintln(f, "ready")
		timeout := time.After(60 * time.Second) // orphan guard
		for {
			select {
			case s := <-ch:
				if s == syscall.SIGTERM {
					return 0
				}
				fmt.Fprintln(f, SignalName(s.(syscall.Signal)))
			case <-timeout:
				return 3
			}
		}
	case "send":
		err := Signal{PidFile: arg}.Reload(context.Background())
		fmt.Println(err)
		return 0
	}
	return 4
}

// startListener starts a helper child that logs signals to a file. argv0
// may name a symlink to the test binary, so that the child has a unique comm.
func startListener(t *testing.T, argv0 string) (*exec.Cmd, string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "signals.log")
	cmd := exec.Command(argv0, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=listen:"+log)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitLines(t, log, []string{"ready"})
	return cmd, log
}

// waitLines waits until the file's lines equal want (deadlock guard only).
func waitLines(t *testing.T, path string, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		got = readLines(path)
		if strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: lines %q, want %q", path, got, want)
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func writePidFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignalPidFile(t *testing.T) {
	cmd, log := startListener(t, os.Args[0])
	pidFile := writePidFile(t, strconv.Itoa(cmd.Process.Pid)+"\n")
	ctx := context.Background()
	if err := (Signal{PidFile: pidFile}).Reload(ctx); err != nil {
		t.Fatal(err)
	}
	waitLines(t, log, []string{"ready", "SIGHUP"})
	if err := (Signal{PidFile: pidFile, Sig: syscall.SIGUSR1}).Reload(ctx); err != nil {
		t.Fatal(err)
	}
	waitLines(t, log, []string{"ready", "SIGHUP", "SIGUSR1"})
}

func TestSignalProcessNameAllMatches(t *testing.T) {
	// A symlink with a unique name gives the children a comm no other
	// process on the machine has.
	name := "rl" + randHex(t, 5)
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(os.Args[0], link); err != nil {
		t.Fatal(err)
	}
	_, log1 := startListener(t, link)
	_, log2 := startListener(t, link)
	s := Signal{Process: name}
	if !strings.Contains(s.String(), name) {
		t.Errorf("String() = %q", s)
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitLines(t, log1, []string{"ready", "SIGHUP"})
	waitLines(t, log2, []string{"ready", "SIGHUP"})
}

func TestSignalErrors(t *testing.T) {
	exited := exec.Command("/bin/true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sig  Signal
		want string
	}{
		{"nothing configured", Signal{}, "neither a pid file nor a process"},
		{"pid file missing", Signal{PidFile: filepath.Join(t.TempDir(), "none.pid")}, "no such file"},
		{"pid file empty", Signal{PidFile: writePidFile(t, "  \n")}, "empty"},
		{"pid file garbage", Signal{PidFile: writePidFile(t, "httpd\n")}, "not a pid"},
		{"pid file negative", Signal{PidFile: writePidFile(t, "-1")}, "not a pid"},
		{"pid file zero", Signal{PidFile: writePidFile(t, "0")}, "must be positive"},
		{"pid file huge", Signal{PidFile: writePidFile(t, strings.Repeat("1", 5000))}, "larger than"},
		{"process exited", Signal{PidFile: writePidFile(t, strconv.Itoa(exited.ProcessState.Pid()))}, "no such process"},
		{"own pid", Signal{PidFile: writePidFile(t, strconv.Itoa(os.Getpid()))}, "the sidecar itself"},
		{"no process with that name", Signal{Process: "no-such-proc-" + randHex(t, 4)}, "shareProcessNamespace"},
		{"process name with slash", Signal{Process: "/usr/bin/app"}, "bare executable name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sig.Reload(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

// TestSignalPermissionDenied runs the sender as an unprivileged user against
// a root-owned child and checks the advice in the error. Needs root.
func TestSignalPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the sender as another user")
	}
	cmd, _ := startListener(t, os.Args[0])
	dir := t.TempDir()
	// The unprivileged sender must reach its binary and the pid file.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "sender")
	copyFile(t, os.Args[0], bin)
	pidFile := filepath.Join(dir, "app.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	sender := exec.Command(bin, "-test.run=^$")
	sender.Env = append(os.Environ(), childEnv+"=send:"+pidFile)
	sender.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := sender.CombinedOutput()
	if err != nil {
		t.Fatalf("sender: %v: %s", err, out)
	}
	for _, want := range []string{"operation not permitted", "runs as uid 65534", "target as uid 0", "CAP_KILL"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error %q lacks %q", out, want)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestParsePID(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1234", 1234, true},
		{" 42\n", 42, true},
		{"1", 1, true},
		{"2147483647", 2147483647, true},
		{"0007", 7, true},
		{"", 0, false},
		{"0", 0, false},
		{"-1", 0, false},
		{"+5", 0, false},
		{"12 34", 0, false},
		{"0x10", 0, false},
		{"99999999999", 0, false},
		{"١٢", 0, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, err := ParsePID([]byte(tc.in))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParsePID(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParsePID(f *testing.F) {
	for _, s := range []string{"1", " 42\n", "-1", "0", "abc", "99999999999", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := ParsePID(b)
		if err == nil && pid <= 0 {
			t.Fatalf("ParsePID(%q) accepted non-positive %d", b, pid)
		}
		if err == nil && strconv.Itoa(pid) != strings.TrimLeft(strings.TrimSpace(string(b)), "0") {
			t.Fatalf("ParsePID(%q) = %d does not round-trip", b, pid)
		}
	})
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"HUP", syscall.SIGHUP, true},
		{"SIGHUP", syscall.SIGHUP, true},
		{"hup", syscall.SIGHUP, true},
		{" sigusr1 ", syscall.SIGUSR1, true},
		{"USR2", syscall.SIGUSR2, true},
		{"TERM", syscall.SIGTERM, true},
		{"WINCH", syscall.SIGWINCH, true},
		{"1", syscall.SIGHUP, true},
		{"10", syscall.Signal(10), true},
		{"64", syscall.Signal(64), true},
		{"", 0, false},
		{"0", 0, false},
		{"65", 0, false},
		{"-1", 0, false},
		{"1x", 0, false},
		{"SIG", 0, false},
		{"SIGSIGHUP", 0, false},
		{"RELOAD", 0, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, err := ParseSignal(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseSignal(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
	if got := SignalName(syscall.SIGUSR1); got != "SIGUSR1" {
		t.Errorf("SignalName(SIGUSR1) = %q", got)
	}
	if got := SignalName(syscall.Signal(40)); got != "40" {
		t.Errorf("SignalName(40) = %q", got)
	}
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"HUP", "SIGUSR1", "1", "64", "65", "", "sig", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignal(s)
		if err != nil {
			return
		}
		if sig < 1 || sig > maxSignal {
			t.Fatalf("ParseSignal(%q) = %d out of range", s, sig)
		}
		// Whatever parsed must parse again from its canonical name.
		again, err := ParseSignal(SignalName(sig))
		if err != nil || again != sig {
			t.Fatalf("ParseSignal(SignalName(%d)) = %v, %v", sig, again, err)
		}
	})
}
