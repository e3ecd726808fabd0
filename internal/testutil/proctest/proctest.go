// Package proctest runs child processes for end-to-end tests: output
// captured for assertions and printed when the test fails, signals, exit
// codes with a deadline, and cleanup that kills the whole process group even
// when the test fails. It does not build binaries or choose ports.
package proctest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a running (or finished) child process.
type Proc struct {
	t    testing.TB
	name string
	argv []string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

type lockedWriter struct{ p *Proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// maxLoggedOutput bounds how much of a failed test's child output is logged.
const maxLoggedOutput = 8000

// Start runs argv with the test's environment plus env, in its own process
// group (killed with the test, and with the test binary via Pdeathsig).
func Start(t testing.TB, name string, argv []string, env ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, name: name, argv: argv, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = lockedWriter{p}, lockedWriter{p}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			out := p.Output()
			if len(out) > maxLoggedOutput {
				out = "…" + out[len(out)-maxLoggedOutput:]
			}
			t.Logf("--- output of %s (%v):\n%s", name, argv, out)
		}
	})
	return p
}

// Output returns everything the process wrote to stdout and stderr so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends s to the process (not its group).
func (p *Proc) Signal(s syscall.Signal) {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(s)
	}
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the exit (failing the test after timeout) and returns the
// exit code, or -1 if the process died from a signal.
func (p *Proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %v; output:\n%s", p.name, timeout, p.Output())
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	return -1
}
