package reload

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// signalNames maps names without the SIG prefix to signals. Only signals
// that exist on every Unix Go supports are listed; others can be given by
// number.
var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT,
	"ILL": syscall.SIGILL, "TRAP": syscall.SIGTRAP, "ABRT": syscall.SIGABRT,
	"BUS": syscall.SIGBUS, "FPE": syscall.SIGFPE, "KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1, "SEGV": syscall.SIGSEGV, "USR2": syscall.SIGUSR2,
	"PIPE": syscall.SIGPIPE, "ALRM": syscall.SIGALRM, "TERM": syscall.SIGTERM,
	"CHLD": syscall.SIGCHLD, "CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP,
	"TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU,
	"URG": syscall.SIGURG, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
	"VTALRM": syscall.SIGVTALRM, "PROF": syscall.SIGPROF, "WINCH": syscall.SIGWINCH,
	"IO": syscall.SIGIO, "SYS": syscall.SIGSYS,
}

// maxSignal is the highest signal number accepted (Linux real-time signals
// end at 64).
const maxSignal = 64

// ParseSignal parses a signal given as a name with or without the SIG
// prefix, in any case ("HUP", "SIGHUP", "usr1"), or as a number ("1").
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("signal %q: empty", s)
	}
	if t[0] >= '0' && t[0] <= '9' {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > maxSignal {
			return 0, fmt.Errorf("signal %q: want a number from 1 to %d or a name like HUP", s, maxSignal)
		}
		return syscall.Signal(n), nil
	}
	if sig, ok := signalNames[strings.TrimPrefix(t, "SIG")]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q: unknown name (try HUP, USR1, USR2, TERM or a number)", s)
}

// SignalName returns "SIGHUP" for SIGHUP, or the number for unnamed signals.
func SignalName(sig syscall.Signal) string {
	for name, v := range signalNames {
		if v == sig { // values are distinct, so the order of the map does not matter
			return "SIG" + name
		}
	}
	return strconv.Itoa(int(sig))
}
