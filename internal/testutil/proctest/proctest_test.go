package proctest

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartOutputSignalWait(t *testing.T) {
	p := Start(t, "echo", []string{"/bin/sh", "-c", "echo hello; exit 3"})
	if code := p.Wait(10 * time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	if !strings.Contains(p.Output(), "hello") || !p.Exited() {
		t.Fatalf("output %q exited %v", p.Output(), p.Exited())
	}
	s := Start(t, "sleeper", []string{"/bin/sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"})
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	s.Signal(syscall.SIGTERM)
	if code := s.Wait(10 * time.Second); code != 7 {
		t.Fatalf("exit code after SIGTERM %d, want 7", code)
	}
	k := Start(t, "killed", []string{"/bin/sh", "-c", "sleep 30"})
	k.Kill()
	if !k.Exited() || k.Wait(time.Second) != -1 {
		t.Fatal("Kill should end the process by signal")
	}
}
