package store_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/store"
	"github.com/outrigger-sidecar/outrigger/internal/store/storetest"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/etcdtest"
)

var prefixSeq atomic.Int64

// uniquePrefix isolates stores sharing one etcd server.
func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("/test-%d-%s/", prefixSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "_"))
}

func openEtcd(t *testing.T, eps []string, prefix string) *store.Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), storetest.Timeout)
	defer cancel()
	s, err := store.OpenEtcd(ctx, store.EtcdOptions{Endpoints: eps, Prefix: prefix, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("OpenEtcd(%v, %q): %v", eps, prefix, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testLogger sends JSON logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewJSONHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestEtcd runs the etcd store's tests against one shared embedded server;
// every store gets its own key prefix.
func TestEtcd(t *testing.T) {
	eps := etcdtest.Start(t)
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, eps []string)
	}{
		{"Contract", testContract},
		{"Reopen", testReopen},
		{"ChangesAcrossInstances", testChangesAcrossInstances},
		{"ConcurrentReplicas", testConcurrentReplicas},
		{"PrefixIsolation", testPrefixIsolation},
		{"CloseEndsChanges", testCloseEndsChanges},
		{"LargeValueLimit", testLargeValueLimit},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, eps) })
	}
}

func testContract(t *testing.T, eps []string) {
	storetest.Run(t, func(t *testing.T) store.Store { return openEtcd(t, eps, uniquePrefix(t)) })
}

func testReopen(t *testing.T, eps []string) {
	p := uniquePrefix(t)
	storetest.RunReopen(t, openEtcd(t, eps, p), func(t *testing.T) store.Store { return openEtcd(t, eps, p) })
}

// testChangesAcrossInstances: a version written by one replica wakes the
// watcher of another.
func testChangesAcrossInstances(t *testing.T, eps []string) {
	p := uniquePrefix(t)
	a, b := openEtcd(t, eps, p), openEtcd(t, eps, p)
	ctx, cancel := context.WithTimeout(context.Background(), storetest.Timeout)
	defer cancel()
	ch, err := b.Changes(ctx)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	for i := 1; i <= 3; i++ {
		if _, _, err := a.Put(ctx, "app", []byte(fmt.Sprint(i)), store.PutOptions{}); err != nil {
			t.Fatalf("Put on replica a: %v", err)
		}
	}
	storetest.WaitChange(t, ctx, ch, "app", 3)
	v, err := b.Get(ctx, "app", 0)
	if err != nil || v.Version != 3 || string(v.Data) != "3" {
		t.Fatalf("replica b Get = %d %q, %v; want 3", v.Version, v.Data, err)
	}
}

// testConcurrentReplicas: several replicas racing on one name never hand
// out a version twice nor skip one.
func testConcurrentReplicas(t *testing.T, eps []string) {
	p := uniquePrefix(t)
	replicas := []*store.Etcd{openEtcd(t, eps, p), openEtcd(t, eps, p), openEtcd(t, eps, p)}
	ctx, cancel := context.WithTimeout(context.Background(), storetest.Timeout)
	defer cancel()
	const each = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]string{}
	)
	for r, s := range replicas {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					data := fmt.Sprintf("replica %d writer %d put %d", r, w, i)
					v, created, err := s.Put(ctx, "hot", []byte(data), store.PutOptions{})
					mu.Lock()
					if err != nil || !created || seen[v.Version] != "" {
						t.Errorf("Put %q = %d created=%v err=%v (version already given to %q)", data, v.Version, created, err, seen[v.Version])
					}
					seen[v.Version] = data
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	h, err := replicas[0].History(ctx, "hot")
	if err != nil || len(h) != len(replicas)*2*each {
		t.Fatalf("History = %d versions, %v; want %d", len(h), err, len(replicas)*2*each)
	}
	for i, v := range h {
		got, err := replicas[i%3].Get(ctx, "hot", v.Version)
		if v.Version != int64(i+1) || err != nil || string(got.Data) != seen[v.Version] {
			t.Fatalf("version %d: %q, %v; acknowledged %q", v.Version, got.Data, err, seen[v.Version])
		}
	}
}

func testPrefixIsolation(t *testing.T, eps []string) {
	ctx, cancel := context.WithTimeout(context.Background(), storetest.Timeout)
	defer cancel()
	// "/a" and "/ab" would overlap without the enforced trailing slash.
	p := strings.TrimSuffix(uniquePrefix(t), "/")
	a, ab := openEtcd(t, eps, p+"a"), openEtcd(t, eps, p+"ab")
	if _, _, err := ab.Put(ctx, "app", []byte("x"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, err := a.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List under /a = %v, %v; want empty", l, err)
	}
	if l, err := ab.List(ctx); err != nil || len(l) != 1 {
		t.Fatalf("List under /ab = %v, %v; want 1 entry", l, err)
	}
}

func TestEtcdOpenErrors(t *testing.T) {
	cases := []struct {
		name string
		opts store.EtcdOptions
		want string
	}{
		{"no endpoints", store.EtcdOptions{}, "no endpoints"},
		{"nothing listening", store.EtcdOptions{Endpoints: []string{deadEndpoint(t)}, DialTimeout: 300 * time.Millisecond}, "not reachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), storetest.Timeout)
			defer cancel()
			s, err := store.OpenEtcd(ctx, tc.opts)
			if err == nil {
				_ = s.Close()
				t.Fatalf("OpenEtcd succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--etcd") {
				t.Fatalf("err = %q, want one naming --etcd and %q", err, tc.want)
			}
		})
	}
}

// deadEndpoint returns a loopback URL where nothing listens (a port that
// was just free).
func deadEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

func testCloseEndsChanges(t *testing.T, eps []string) {
	s := openEtcd(t, eps, uniquePrefix(t))
	ch, err := s.Changes(context.Background())
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatalf("got a change after Close")
		}
	case <-time.After(storetest.Timeout):
		t.Fatalf("Changes channel not closed by Close")
	}
	if _, err := s.Changes(context.Background()); err == nil {
		t.Fatalf("Changes after Close succeeded")
	}
}

// TestEtcdChangesEndWhenQuorumLost: a watcher on a member that loses its
// leader must see its stream end (so the hub re-subscribes elsewhere)
// instead of going silent.
func TestEtcdChangesEndWhenQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("3-member cluster in -short mode")
	}
	eps, stop := etcdtest.StartCluster(t, 3)
	s := openEtcd(t, eps[2:], uniquePrefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), storetest.Timeout)
	defer cancel()
	ch, err := s.Changes(ctx)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if _, _, err := s.Put(ctx, "app", []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	storetest.WaitChange(t, ctx, ch, "app", 1)
	stop(0)
	stop(1)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatalf("changes stream still open after quorum loss")
		}
	}
}

func testLargeValueLimit(t *testing.T, eps []string) {
	s := openEtcd(t, eps, uniquePrefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), storetest.Timeout)
	defer cancel()
	// Above etcd's default 1.5 MiB request limit: a clear error, nothing stored.
	_, _, err := s.Put(ctx, "huge", bytes.Repeat([]byte("x"), 2<<20), store.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "huge") {
		t.Fatalf("Put 2 MiB err = %v, want an error naming the config", err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List after failed huge put = %v, %v", l, err)
	}
}
