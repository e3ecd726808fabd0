// Package etcdtest runs real embedded etcd servers (go.etcd.io/etcd/server/v3/embed)
// for tests: one member with Start, or a small cluster with StartCluster for
// member-loss tests. Servers listen on 127.0.0.1 only, keep their data in
// t.TempDir(), log nothing below error level and are closed by t.Cleanup.
//
// It does not provide clients, TLS or authentication: tests dial the returned
// plain-HTTP client URLs with go.etcd.io/etcd/client/v3 themselves.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// StartTimeout bounds how long a member (or a whole cluster) may take to
// become ready before the test fails.
const StartTimeout = 20 * time.Second

// startAttempts is how often a start is retried when a picked port was taken
// by another process between picking and binding.
const startAttempts = 3

// Start runs a single-member embedded etcd on 127.0.0.1 random ports in
// t.TempDir(), waits until it serves, registers its shutdown with t.Cleanup and
// returns its client URLs (e.g. "http://127.0.0.1:41234").
func Start(t testing.TB) []string {
	t.Helper()
	eps, _ := StartCluster(t, 1)
	return eps
}

// StartCluster starts an n-member embedded etcd cluster and waits until every
// member is ready. It returns each member's client URL (endpoints[i] belongs to
// member i) and stop, which closes member i (idempotent; safe to call for
// several members). All members are closed by t.Cleanup.
func StartCluster(t testing.TB, n int) (endpoints []string, stop func(i int)) {
	t.Helper()
	if n < 1 {
		t.Fatalf("etcdtest: cluster size %d: must be at least 1", n)
	}
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		members, err := startCluster(t, n, attempt)
		if err == nil {
			stops := make([]func(), n)
			endpoints = make([]string, n)
			for i, m := range members {
				endpoints[i] = m.clientURL
				stops[i] = m.close
				t.Cleanup(m.close)
			}
			return endpoints, func(i int) {
				if i < 0 || i >= n {
					t.Errorf("etcdtest: stop(%d): member index out of range [0,%d)", i, n)
					return
				}
				stops[i]()
			}
		}
		lastErr = err
		if !isAddrInUse(err) {
			break
		}
	}
	t.Fatalf("etcdtest: start %d-member cluster: %v", n, lastErr)
	return nil, nil
}

type member struct {
	clientURL string
	e         *embed.Etcd
	once      sync.Once
}

func (m *member) close() {
	m.once.Do(func() {
		if m.e != nil {
			m.e.Close()
		}
	})
}

// startCluster makes one attempt; on failure it closes whatever it started.
func startCluster(t testing.TB, n, attempt int) ([]*member, error) {
	t.Helper()
	// Peer URLs must be known before any member starts (initial-cluster), so
	// ports are picked up front; a lost race surfaces as "address in use" and
	// StartCluster retries with fresh ports.
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	cfgs := make([]*embed.Config, n)
	var initial []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("m%d", i)
		curl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		purl := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
		cfg := embed.NewConfig()
		cfg.Name = name
		cfg.Dir = filepath.Join(t.TempDir(), fmt.Sprintf("etcd-%s-a%d", name, attempt))
		cfg.ListenClientUrls = []url.URL{curl}
		cfg.AdvertiseClientUrls = []url.URL{curl}
		cfg.ListenPeerUrls = []url.URL{purl}
		cfg.AdvertisePeerUrls = []url.URL{purl}
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		// Tests never crash the host; skipping fsync keeps them fast on a
		// shared, busy machine.
		cfg.UnsafeNoFsync = true
		cfg.InitialClusterToken = fmt.Sprintf("etcdtest-%d", ports[0])
		// Generous election timing: a loaded CI machine must not cause
		// leader flapping mid-test.
		cfg.TickMs = 50
		cfg.ElectionMs = 1000
		cfgs[i] = cfg
		initial = append(initial, name+"="+purl.String())
	}
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
	}

	members := make([]*member, n)
	closeAll := func() {
		for _, m := range members {
			if m != nil {
				m.close()
			}
		}
	}
	for i, cfg := range cfgs {
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("member %s: %w", cfg.Name, err)
		}
		members[i] = &member{clientURL: cfg.AdvertiseClientUrls[0].String(), e: e}
	}
	deadline := time.NewTimer(StartTimeout)
	defer deadline.Stop()
	for i, m := range members {
		select {
		case <-m.e.Server.ReadyNotify():
		case err := <-m.e.Err():
			closeAll()
			return nil, fmt.Errorf("member m%d: %w", i, err)
		case <-deadline.C:
			closeAll()
			return nil, fmt.Errorf("member m%d not ready after %v", i, StartTimeout)
		}
	}
	return members, nil
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// isAddrInUse reports a lost port race. etcd does not always wrap with %w,
// hence the text fallback.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || (err != nil && strings.Contains(err.Error(), "address already in use"))
}
