package etcdtest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func dial(t *testing.T, eps []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("dial %v: %v", eps, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStartServesOnLoopback(t *testing.T) {
	eps := Start(t)
	if len(eps) != 1 {
		t.Fatalf("got %d endpoints, want 1", len(eps))
	}
	u, err := url.Parse(eps[0])
	if err != nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("endpoint %q is not on 127.0.0.1 (err %v)", eps[0], err)
	}
	c := dial(t, eps)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get k = %v, want v", resp.Kvs)
	}
}

func TestClusterSurvivesMemberLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("3-member cluster in -short mode")
	}
	eps, stop := StartCluster(t, 3)
	if len(eps) != 3 {
		t.Fatalf("got %d endpoints, want 3", len(eps))
	}
	stop(0)
	stop(0) // idempotent
	c := dial(t, eps[1:])
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatalf("put after losing one member of three: %v", err)
		}
	}
	resp, err := c.Get(ctx, "k", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if resp.Count != 3 {
		t.Fatalf("count = %d, want 3", resp.Count)
	}
}
