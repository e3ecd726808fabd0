package proxy

// The Linux side of the listener handover (see handover_proxy.go): passing
// descriptors over SCM_RIGHTS and checking the peer with SO_PEERCRED.

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
