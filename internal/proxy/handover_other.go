//go:build !linux

package proxy

import (
	"errors"
	"log/slog"
	"net"
)

var errNoPredecessor = errors.New("no running proxy on the handover socket")

var errHandoverUnsupported = errors.New("--handover-socket is only supported on Linux")

type handoverOffer struct {
	Listen   string `json:"listen"`
	Redirect string `json:"redirect,omitempty"`
	PID      int    `json:"pid"`
}

type inherited struct {
	listen, redirect net.Listener
	pid              int
}

func (in *inherited) serving() {}
func (in *inherited) release() {}

type handoverServer struct{}

func (s *handoverServer) close() {}

func takeListeners(path, listen, redirect string) (*inherited, error) {
	return nil, errHandoverUnsupported
}

func listenHandover(path string, offer handoverOffer, listeners []net.Listener, log *slog.Logger, onServed func(pid int)) (*handoverServer, error) {
	return nil, errHandoverUnsupported
}
