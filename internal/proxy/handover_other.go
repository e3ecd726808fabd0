//go:build !linux

package proxy

import (
	"errors"
	"log/slog"
	"net"
)

var errHandoverUnsupported = errors.New("--handover-socket is only supported on Linux")

type handoverServer struct{}

func (s *handoverServer) close() {}

func takeListeners(path, listen, redirect string) (*inherited, error) {
	return nil, errHandoverUnsupported
}

func listenHandover(path string, offer handoverOffer, listeners []net.Listener, log *slog.Logger, onServed func(pid int)) (*handoverServer, error) {
	return nil, errHandoverUnsupported
}
