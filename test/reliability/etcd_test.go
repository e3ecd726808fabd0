package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/etcdtest"
)

// TestEtcdMemberLoss runs a 3-member embedded etcd cluster in the test
// process, two `config serve --etcd` replicas (A and B) as processes sharing
// it, and a sync that watches replica B. Stopping one etcd member must not
// stop anything: pushes to A succeed and B's watch delivers them to the sync,
// which writes them to its destination file.
func TestEtcdMemberLoss(t *testing.T) {
	endpoints, stop := etcdtest.StartCluster(t, 3)
	etcdFlag := strings.Join(endpoints, ",")
	a := startConfigServe(t, freeAddr(t), "", "--etcd", etcdFlag)
	b := startConfigServe(t, freeAddr(t), "", "--etcd", etcdFlag)

	dir := t.TempDir()
	dest := filepath.Join(dir, "app.json")
	start(t, "sync", []string{"outrigger", "sync", "--source", b.url + "/v1/configs/app",
		"--dest", dest, "--format", "json", "--wait", "2s", "--resync", "2s", "--admin", freeAddr(t)})
	destHas := func(greeting string) func() bool {
		return func() bool {
			data, err := os.ReadFile(dest)
			return err == nil && strings.Contains(string(data), `"`+greeting+`"`)
		}
	}
	pushTo := func(s *configServer, greeting string) {
		t.Helper()
		if _, err := push(s.url, "app", "application/json", appConfig(greeting, true)); err != nil {
			t.Fatalf("push %q to %s: %v", greeting, s.listen, err)
		}
	}
	pushTo(a, "v1 before member loss")
	waitFor(t, startTimeout, "sync (watching B) to write v1 pushed to A", destHas("v1 before member loss"))

	stop(0)
	begin := time.Now()
	for i := 2; i <= 4; i++ {
		g := fmt.Sprintf("v%d after member loss", i)
		// The first push after the loss may wait for the client to fail
		// over; it must still succeed within a generous bound.
		var err error
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err = push(a.url, "app", "application/json", appConfig(g, true)); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("push %q to A with one etcd member down: %v", g, err)
		}
		waitFor(t, 30*time.Second, "sync (watching B) to write "+g, destHas(g))
	}
	pushTo(b, "v5 pushed to B")
	waitFor(t, 30*time.Second, "sync to write v5 pushed to B", destHas("v5 pushed to B"))
	reportCounts(t, "etcd-member-loss", 4, 0, fmt.Sprintf("3 pushes to A and 1 to B after stopping member 0 of 3, all delivered through B's watch in %v", time.Since(begin).Round(time.Millisecond)))
	for _, s := range []*configServer{a, b} {
		if s.Exited() {
			t.Fatalf("config serve %s exited after an etcd member loss:\n%s", s.listen, s.Output())
		}
		vs, err := history(s.url, "app")
		if err != nil || len(vs) != 5 {
			t.Fatalf("history from %s: %d versions (%v), want 5", s.listen, len(vs), err)
		}
	}
}
