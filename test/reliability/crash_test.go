package reliability

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestConfigAPICrashLosesNoAcknowledgedVersion pushes a stream of versions
// and kill -9s `config serve` in the middle of it, several times over the
// same data directory. Every version the server acknowledged (201 with a
// version number) must be in the history after the restart, with the content
// that was pushed: an acknowledgement means the write is durable.
func TestConfigAPICrashLosesNoAcknowledgedVersion(t *testing.T) {
	dir := t.TempDir()
	addr, data := freeAddr(t), filepath.Join(dir, "data")
	const rounds = 3
	acked := map[int]string{} // version → sha256 of the pushed content
	var seq int
	for round := 1; round <= rounds; round++ {
		api := startConfigServe(t, addr, data)
		var (
			mu   sync.Mutex
			stop atomic.Bool
			wg   sync.WaitGroup
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				mu.Lock()
				seq++
				body := fmt.Sprintf(`{"greeting": "push %d", "round": %d}`, seq, round)
				mu.Unlock()
				v, err := push(api.url, "app", "application/json", body)
				if err != nil {
					continue // unacknowledged: may or may not have been stored
				}
				sum := sha256.Sum256([]byte(body))
				mu.Lock()
				acked[v] = hex.EncodeToString(sum[:])
				mu.Unlock()
			}
		}()
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		api.signal(syscall.SIGKILL)
		api.wait(10 * time.Second)
		stop.Store(true)
		wg.Wait()
	}
	api := startConfigServe(t, addr, data)
	vs, err := history(api.url, "app")
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]string{}
	for _, v := range vs {
		have[v.Version] = v.SHA256
	}
	lost := 0
	for v, sum := range acked {
		if have[v] != sum {
			lost++
			t.Errorf("acknowledged version %d (sha256 %s…) is %q after kill -9 and restart", v, sum[:12], have[v])
		}
	}
	t.Logf("scenario=config-api-crash kills=%d acknowledged=%d in-history=%d lost=%d", rounds, len(acked), len(vs), lost)
	if len(acked) == 0 {
		t.Fatal("no push was acknowledged: the scenario tested nothing")
	}
}

// TestSyncCrashNeverLeavesPartialFile kill -9s `outrigger sync` at random
// points while it writes multi-megabyte configs, over and over, while a
// reader keeps opening the destination file: every read must parse as
// complete JSON. sync writes a temporary file, fsyncs and renames it, so the
// destination is always either the old or the new version.
func TestSyncCrashNeverLeavesPartialFile(t *testing.T) {
	kills := 16
	if testing.Short() {
		kills = 4
	}
	dir := t.TempDir()
	src, dest := filepath.Join(dir, "source.json"), filepath.Join(dir, "shared", "app.json")
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}
	big := func(gen int) []byte {
		// ~4 MiB, different per generation so every run rewrites the file.
		b, _ := json.Marshal(map[string]any{"greeting": fmt.Sprintf("generation %d", gen),
			"pad": strings.Repeat(fmt.Sprintf("%08d", gen), 4<<20/8)})
		return b
	}
	writeSource := func(gen int) {
		tmp := src + ".tmp"
		if err := os.WriteFile(tmp, big(gen), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, src); err != nil {
			t.Fatal(err)
		}
	}
	writeSource(0)

	var (
		reads, bad atomic.Int64
		badMsg     atomic.Value
		stop       = make(chan struct{})
		readerDone = make(chan struct{})
	)
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(dest)
			if err != nil {
				if !os.IsNotExist(err) {
					bad.Add(1)
					badMsg.Store(err.Error())
				}
				time.Sleep(time.Millisecond)
				continue
			}
			reads.Add(1)
			if !json.Valid(b) {
				bad.Add(1)
				badMsg.Store(fmt.Sprintf("%d bytes of invalid JSON", len(b)))
			}
		}
	}()

	// Time one undisturbed run, so the kills below land across the whole
	// of a run (start-up, read, validate, write, fsync, rename) rather than
	// mostly before the write.
	syncArgs := []string{"outrigger", "sync", "--once", "--source", "file://" + src, "--dest", dest, "--format", "json", "--admin", ""}
	t0 := time.Now()
	if code := start(t, "sync timing run", syncArgs).wait(60 * time.Second); code != 0 {
		t.Fatalf("sync --once exited %d", code)
	}
	full := time.Since(t0)
	generation := func() string {
		f, err := os.Open(dest)
		if err != nil {
			return ""
		}
		defer f.Close()
		head := make([]byte, 64)
		n, _ := io.ReadFull(f, head)
		return string(head[:n])
	}
	completed, killed, landed, temps := 0, 0, 0, 0
	for gen := 1; gen <= kills; gen++ {
		writeSource(gen)
		p := start(t, fmt.Sprintf("sync #%d", gen), syncArgs)
		time.Sleep(full/5 + time.Duration(rand.Int64N(int64(2*full))))
		if p.exited() {
			completed++
		} else {
			killed++
		}
		p.kill()
		if strings.Contains(generation(), fmt.Sprintf(`"generation %d"`, gen)) {
			landed++
		}
		entries, _ := os.ReadDir(filepath.Dir(dest))
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				temps++
			}
		}
	}
	close(stop)
	<-readerDone
	t.Logf("scenario=sync-crash one-run=%s runs=%d killed-mid-run=%d completed=%d new-version-landed=%d temp-files-left-by-kills=%d reads=%d partial-reads=%d",
		full.Round(time.Millisecond), kills, killed, completed, landed, temps, reads.Load(), bad.Load())
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads of --dest saw a partial or unreadable file (last: %v)", bad.Load(), reads.Load(), badMsg.Load())
	}
	if killed == 0 {
		t.Fatal("every run finished before its kill: the scenario tested nothing")
	}
	if b, err := os.ReadFile(dest); err == nil && !json.Valid(b) {
		t.Fatalf("--dest after %d kills is not valid JSON (%d bytes)", kills, len(b))
	}
	// A final clean run converges and leaves no temporary files behind.
	p := start(t, "sync final", syncArgs)
	if code := p.wait(60 * time.Second); code != 0 {
		t.Fatalf("final sync --once exited %d:\n%s", code, p.output())
	}
	b, err := os.ReadFile(dest)
	if err != nil || !strings.Contains(string(b[:min(len(b), 200)]), fmt.Sprintf("generation %d", kills)) {
		t.Fatalf("after the final run --dest starts %.80q (%v), want generation %d", b, err, kills)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left in the destination directory after a clean run", e.Name())
		}
	}
}
