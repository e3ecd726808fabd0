package reload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// procRoot is where processes are looked up (Linux procfs).
const procRoot = "/proc"

// maxPidFile bounds how much of a pid file is read: a pid is a few digits.
const maxPidFile = 4096

// commLen is the kernel's limit for /proc/PID/comm (TASK_COMM_LEN - 1).
const commLen = 15

// Signal sends a Unix signal to the application, found through a pid file or
// by process name.
//
// With PidFile, the file must hold one positive decimal pid (surrounding
// whitespace allowed) of an existing process. With Process (used only when
// PidFile is empty), every process whose /proc/PID/comm or argv[0] basename
// equals the name is signalled — all of them, e.g. every worker of a
// pre-forking server; it is an error if none matches. The sidecar's own
// process is never signalled. Sending a signal to another container's
// process requires a shared PID namespace (Kubernetes: shareProcessNamespace:
// true) and the same uid, or CAP_KILL.
type Signal struct {
	PidFile string
	Process string
	// Sig is the signal to send; zero means SIGHUP.
	Sig syscall.Signal
}

func (s Signal) sig() syscall.Signal {
	if s.Sig == 0 {
		return syscall.SIGHUP
	}
	return s.Sig
}

// String implements Reloader.
func (s Signal) String() string {
	if s.PidFile != "" {
		return fmt.Sprintf("signal %s to pid file %s", SignalName(s.sig()), s.PidFile)
	}
	return fmt.Sprintf("signal %s to process %q", SignalName(s.sig()), s.Process)
}

// Reload implements Reloader.
func (s Signal) Reload(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reload: %s: %w", s, err)
	}
	switch {
	case s.PidFile != "":
		pid, err := ReadPidFile(s.PidFile)
		if err != nil {
			return fmt.Errorf("reload: %s: %w", s, err)
		}
		if err := signalPID(pid, s.sig()); err != nil {
			return fmt.Errorf("reload: %s: %w", s, err)
		}
		return nil
	case s.Process != "":
		pids, err := FindProcesses(s.Process)
		if err != nil {
			return fmt.Errorf("reload: %s: %w", s, err)
		}
		if len(pids) == 0 {
			return fmt.Errorf("reload: %s: no such process in this PID namespace (in Kubernetes set shareProcessNamespace: true)", s)
		}
		var errs []error
		sent := 0
		for _, pid := range pids {
			err := signalPID(pid, s.sig())
			if errors.Is(err, syscall.ESRCH) {
				continue // exited since we listed it
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			sent++
		}
		if len(errs) > 0 {
			return fmt.Errorf("reload: %s: %w", s, errors.Join(errs...))
		}
		if sent == 0 {
			return fmt.Errorf("reload: %s: every matching process exited before it could be signalled", s)
		}
		return nil
	default:
		return errors.New("reload: signal: neither a pid file nor a process name given")
	}
}

// ReadPidFile reads and parses a pid file.
func ReadPidFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("pid file %q: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPidFile+1))
	if err != nil {
		return 0, fmt.Errorf("pid file %q: %w", path, err)
	}
	if len(b) > maxPidFile {
		return 0, fmt.Errorf("pid file %q: larger than %d bytes", path, maxPidFile)
	}
	pid, err := ParsePID(b)
	if err != nil {
		return 0, fmt.Errorf("pid file %q: %w", path, err)
	}
	return pid, nil
}

// ParsePID parses the content of a pid file: one positive decimal number,
// optionally surrounded by whitespace. Zero and negative numbers are
// rejected because kill(2) treats them as process groups (-1: every process).
func ParsePID(b []byte) (int, error) {
	s := string(bytes.TrimSpace(b))
	if s == "" {
		return 0, errors.New("empty, expected a pid")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a pid: want one positive decimal number", truncate(s, 32))
		}
	}
	pid, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a pid: %w", truncate(s, 32), err)
	}
	if pid <= 0 {
		return 0, fmt.Errorf("pid %d: must be positive", pid)
	}
	return int(pid), nil
}

// signalPID sends sig to pid and turns errors into advice.
func signalPID(pid int, sig syscall.Signal) error {
	if pid == os.Getpid() {
		return fmt.Errorf("pid %d is the sidecar itself", pid)
	}
	err := syscall.Kill(pid, sig)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ESRCH):
		return fmt.Errorf("pid %d: no such process (stale pid file, or not in a shared PID namespace?): %w", pid, err)
	case errors.Is(err, syscall.EPERM):
		return fmt.Errorf("pid %d: %w: the sidecar runs as uid %d and the target as uid %s; run both as the same user or grant the sidecar CAP_KILL (in Kubernetes also set shareProcessNamespace: true)",
			pid, err, os.Geteuid(), processUID(pid))
	default:
		return fmt.Errorf("pid %d: %w", pid, err)
	}
}

// processUID returns the real uid of pid from /proc, or "unknown".
func processUID(pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	return "unknown"
}

// FindProcesses returns the pids, ascending, of processes other than this one
// whose comm or argv[0] basename equals name. The kernel truncates comm to
// 15 bytes, so a longer name also matches a comm equal to its prefix.
func FindProcesses(name string) ([]int, error) {
	if name == "" || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("process name %q: want a bare executable name", name)
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 || pid == self {
			continue
		}
		if processMatches(pid, name) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

func processMatches(pid int, name string) bool {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		comm := strings.TrimSuffix(string(b), "\n")
		if comm == name || (len(name) > commLen && len(comm) == commLen && strings.HasPrefix(name, comm)) {
			return true
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil || len(b) == 0 {
		return false // kernel thread, zombie or gone
	}
	argv0, _, _ := bytes.Cut(b, []byte{0})
	return filepath.Base(string(argv0)) == name
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
