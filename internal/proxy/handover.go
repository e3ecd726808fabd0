//go:build linux

package proxy

// Listener handover: a zero-loss restart of the proxy on one host.
//
// With --handover-socket PATH, a starting proxy first dials PATH. If an
// older proxy answers, it receives the old proxy's listening sockets (the
// file descriptors, over SCM_RIGHTS) instead of binding new ones, so both
// processes accept from the very same kernel socket and accept queue. Once
// the new proxy serves, it says so, and the old one runs its graceful
// shutdown (readiness false, --shutdown-delay, stop accepting, drain). A
// connection that is in the accept queue when the old proxy stops accepting
// stays in the queue and is accepted by the new proxy: unlike two sockets
// sharing a port with SO_REUSEPORT, where the kernel resets what was queued
// on the closed socket (unless net.ipv4.tcp_migrate_req=1), nothing is
// refused.
//
// The new proxy then listens on PATH itself, for the next restart. The
// socket file is created with mode 0600 and a peer must run as the same
// user (or root), checked with SO_PEERCRED.
//
// Wire protocol (one Unix stream connection, newline-terminated JSON):
//
//	new → old  {"op":"take","pid":N}
//	old → new  {"listen":"…","redirect":"…","pid":N}  + SCM_RIGHTS [listen fd, redirect fd?]
//	new → old  {"op":"serving"}                        (when the new proxy serves)
//
// If the new proxy goes away before "serving", the old one keeps serving.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// handoverTimeout bounds each step of the exchange with the predecessor.
const handoverTimeout = 5 * time.Second

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path).
const maxSocketPath = 107

type handoverRequest struct {
	Op  string `json:"op"`
	PID int    `json:"pid,omitempty"`
}

type handoverOffer struct {
	Listen   string `json:"listen"`
	Redirect string `json:"redirect,omitempty"`
	PID      int    `json:"pid"`
}

// inherited is what a predecessor handed over.
type inherited struct {
	listen, redirect net.Listener // nil where not handed over or not matching
	pid              int
	conn             *net.UnixConn // kept open until we serve; then "serving"
}

// errNoPredecessor means nobody answered on the handover socket.
var errNoPredecessor = errors.New("no running proxy on the handover socket")

// takeListeners asks the proxy on path for its listening sockets. It returns
// errNoPredecessor if the socket does not exist or nobody listens on it.
// The listeners are returned only for addresses equal to ours (the same
// --listen / --redirect-http strings); others are closed.
func takeListeners(path, listen, redirect string) (*inherited, error) {
	d := net.Dialer{Timeout: handoverTimeout}
	c, err := d.Dial("unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, errNoPredecessor
		}
		return nil, err
	}
	uc := c.(*net.UnixConn)
	ok := false
	defer func() {
		if !ok {
			_ = uc.Close()
		}
	}()
	_ = uc.SetDeadline(time.Now().Add(handoverTimeout))
	if err := writeJSONLine(uc, handoverRequest{Op: "take", PID: os.Getpid()}); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(2*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("read offer: %w", err)
	}
	files, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	var offer handoverOffer
	if err := json.Unmarshal(trimLine(buf[:n]), &offer); err != nil {
		return nil, fmt.Errorf("malformed offer: %w", err)
	}
	want := 1
	if offer.Redirect != "" {
		want = 2
	}
	if len(files) != want {
		return nil, fmt.Errorf("offer names %d listeners but carries %d descriptors", want, len(files))
	}
	in := &inherited{pid: offer.PID, conn: uc}
	if offer.Listen == listen {
		if in.listen, err = net.FileListener(files[0]); err != nil {
			return nil, fmt.Errorf("inherit --listen socket: %w", err)
		}
	}
	if offer.Redirect != "" && offer.Redirect == redirect {
		if in.redirect, err = net.FileListener(files[1]); err != nil {
			if in.listen != nil {
				_ = in.listen.Close()
			}
			return nil, fmt.Errorf("inherit --redirect-http socket: %w", err)
		}
	}
	_ = uc.SetDeadline(time.Time{})
	ok = true
	return in, nil
}

// serving tells the predecessor that we serve, so it can drain and exit.
func (in *inherited) serving() {
	if in == nil || in.conn == nil {
		return
	}
	_ = in.conn.SetWriteDeadline(time.Now().Add(handoverTimeout))
	_ = writeJSONLine(in.conn, handoverRequest{Op: "serving", PID: os.Getpid()})
	_ = in.conn.Close()
	in.conn = nil
}

// release closes what was not used (New failed after the handover).
func (in *inherited) release() {
	if in == nil {
		return
	}
	if in.conn != nil {
		_ = in.conn.Close()
		in.conn = nil
	}
}

func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "handover"))
		}
	}
	return files, nil
}

func writeJSONLine(c net.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.Write(append(b, '\n'))
	return err
}

func trimLine(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// handoverServer offers our listening sockets to a successor on path.
type handoverServer struct {
	path     string
	ln       *net.UnixListener
	info     os.FileInfo // of path as we created it, to unlink only our own
	offer    handoverOffer
	files    []*os.File // dups of the listening sockets, in offer order
	log      *slog.Logger
	onServed func(pid int) // the successor serves: drain and exit
	once     sync.Once
	wg       sync.WaitGroup
}

// listenHandover binds path (replacing a stale or predecessor's socket
// file) and serves handover requests until close.
func listenHandover(path string, offer handoverOffer, listeners []net.Listener, log *slog.Logger, onServed func(pid int)) (*handoverServer, error) {
	files := make([]*os.File, 0, len(listeners))
	closeFiles := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	for _, l := range listeners {
		fl, ok := l.(interface{ File() (*os.File, error) })
		if !ok {
			closeFiles()
			return nil, fmt.Errorf("listener %T cannot be handed over", l)
		}
		f, err := fl.File()
		if err != nil {
			closeFiles()
			return nil, err
		}
		files = append(files, f)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			closeFiles()
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		_ = os.Remove(path) // a predecessor's (we took its sockets) or a stale one
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		closeFiles()
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // a successor may own the path by then
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		closeFiles()
		return nil, err
	}
	info, err := os.Lstat(path)
	if err != nil {
		_ = ln.Close()
		closeFiles()
		return nil, err
	}
	s := &handoverServer{path: path, ln: ln, info: info, offer: offer, files: files, log: log, onServed: onServed}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *handoverServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.handle(c) }()
	}
}

func (s *handoverServer) handle(c *net.UnixConn) {
	defer c.Close()
	if err := checkPeer(c); err != nil {
		s.log.Warn("handover refused", "err", err)
		return
	}
	_ = c.SetDeadline(time.Now().Add(handoverTimeout))
	r := bufio.NewReaderSize(c, 512)
	var req handoverRequest
	line, err := r.ReadSlice('\n')
	if err == nil {
		err = json.Unmarshal(trimLine(line), &req)
	}
	if err != nil || req.Op != "take" {
		s.log.Warn("handover: malformed request", "err", err, "op", req.Op)
		return
	}
	b, _ := json.Marshal(s.offer)
	fds := make([]int, len(s.files))
	for i, f := range s.files {
		// Not f.Fd(): it would put the shared socket into blocking mode,
		// and our own Accept could then no longer be interrupted.
		rc, err := f.SyscallConn()
		if err == nil {
			err = rc.Control(func(fd uintptr) { fds[i] = int(fd) })
		}
		if err != nil {
			s.log.Warn("handover: cannot read a listening socket's descriptor", "err", err)
			return
		}
	}
	if _, _, err := c.WriteMsgUnix(append(b, '\n'), syscall.UnixRights(fds...), nil); err != nil {
		s.log.Warn("handover: sending the listening sockets failed", "err", err)
		return
	}
	s.log.Info("handed the listening sockets to a new proxy; serving until it is ready", "pid", req.PID)
	// The successor may take a while to become ready (it serves right after
	// start-up); give it a generous bound, and keep serving if it dies.
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	line, err = r.ReadSlice('\n')
	if err == nil {
		err = json.Unmarshal(trimLine(line), &req)
	}
	if err != nil || req.Op != "serving" {
		s.log.Warn("handover: the new proxy went away before serving; still serving", "err", err)
		return
	}
	s.log.Info("the new proxy serves on the shared sockets; draining", "pid", req.PID)
	if s.onServed != nil {
		s.onServed(req.PID)
	}
}

// close stops offering and removes the socket file if it is still ours.
func (s *handoverServer) close() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		_ = s.ln.Close()
		if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.info) {
			_ = os.Remove(s.path)
		}
		s.wg.Wait()
		for _, f := range s.files {
			_ = f.Close()
		}
	})
}

// checkPeer allows only a peer running as our user, or root.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	if uid := uint32(os.Getuid()); cred.Uid != uid && cred.Uid != 0 {
		return fmt.Errorf("peer pid %d runs as uid %d, not %d", cred.Pid, cred.Uid, uid)
	}
	return nil
}
