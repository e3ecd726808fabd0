package sync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/etcdtest"
)

// TestEtcdSource runs the role against a real embedded etcd: puts reach
// the app, a deleted key never empties the file.
func TestEtcdSource(t *testing.T) {
	endpoints := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "app", string(appJSON("v1", true))); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.json")
	if err := os.WriteFile(dest, appJSON("v0", true), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, dest)
	cfg := baseConfig(t, "unused", dest)
	cfg.Source = "etcd://" + strings.TrimPrefix(endpoints[0], "http://") + "/app"
	cfg.PidFile = a.pidFile
	cfg.Health = a.url + "/healthz"
	cfg.Rollback = true
	h := startSyncer(t, cfg, Deps{})
	eventually(t, "app greets v1", func() bool { return a.greeting(t) == "v1" })

	if _, err := cli.Put(ctx, "app", string(appJSON("v2", true))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "app greets v2", func() bool { return a.greeting(t) == "v2" })
	applied := h.status().Version

	if _, err := cli.Delete(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deletion seen as a source error", func() bool { return h.status().SourceErrors > 0 })
	if got := readFile(t, dest); string(got) != string(appJSON("v2", true)) {
		t.Errorf("dest = %q after the key was deleted", got)
	}
	if st := h.status(); st.Version != applied {
		t.Errorf("version %q after delete, want %q", st.Version, applied)
	}
	if err := h.s.Ready(); err != nil {
		t.Errorf("not ready after a deletion: %v", err)
	}
	if _, err := cli.Put(ctx, "app", string(appJSON("v3", true))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "app greets v3", func() bool { return a.greeting(t) == "v3" })
}
