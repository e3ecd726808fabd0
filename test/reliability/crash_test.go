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
		api.Signal(syscall.SIGKILL)
		api.Wait(10 * time.Second)
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
	reportCounts(t, "config-api-crash", int64(len(acked)), int64(lost),
		fmt.Sprintf("kill -9 rounds=%d acknowledged=%d in-history=%d lost=%d (sent = acknowledged pushes)", rounds, len(acked), len(vs), lost))
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
	kills := 12
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

	// Every complete version has one of these sizes: a cheap second reader
	// checks size and last byte thousands of times while the full reader
	// parses whole files.
	sizes := map[int64]bool{}
	for gen := 0; gen <= kills; gen++ {
		sizes[int64(len(big(gen)))] = true
	}
	var (
		reads, quick, bad atomic.Int64
		badMsg            atomic.Value
		stop              = make(chan struct{})
		readers           sync.WaitGroup
	)
	readers.Add(2)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if msg := quickCheck(dest, sizes); msg != "" {
				bad.Add(1)
				badMsg.Store(msg)
			}
			quick.Add(1)
			// Leave the CPU to the sync being killed: on 2 cores a
			// spinning reader would stretch every run.
			time.Sleep(200 * time.Microsecond)
		}
	}()
	go func() {
		defer readers.Done()
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
			time.Sleep(2 * time.Millisecond)
		}
	}()

	// Time one undisturbed run, so the kills below land across the whole
	// of a run (start-up, read, validate, write, fsync, rename) rather than
	// mostly before the write.
	syncArgs := []string{"outrigger", "sync", "--once", "--source", "file://" + src, "--dest", dest, "--format", "json", "--admin", ""}
	t0 := time.Now()
	if code := start(t, "sync timing run", syncArgs).Wait(60 * time.Second); code != 0 {
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
	// Two of three runs are killed just after their temporary file appears
	// (mid-write, whatever the machine's speed); the others at a random
	// moment of a run (start-up, read, validate, fsync, rename).
	seenTemps := map[string]bool{}
	newTemp := func() bool {
		found := false
		entries, _ := os.ReadDir(filepath.Dir(dest))
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") && !seenTemps[e.Name()] {
				seenTemps[e.Name()] = true
				found = true
			}
		}
		return found
	}
	newTemp()
	completed, killed, midWrite, landed := 0, 0, 0, 0
	for gen := 1; gen <= kills; gen++ {
		writeSource(gen)
		p := start(t, fmt.Sprintf("sync #%d", gen), syncArgs)
		if gen%3 != 0 {
			deadline := time.Now().Add(30 * time.Second)
			for !newTemp() && !p.Exited() && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
			if !p.Exited() {
				midWrite++
			}
			if gen%2 == 0 { // else kill at once, inside the write
				time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
			}
		} else {
			time.Sleep(time.Duration(rand.Int64N(int64(min(full, time.Second)))))
		}
		if p.Exited() {
			completed++
		} else {
			killed++
		}
		p.Kill()
		newTemp()
		if strings.Contains(generation(), fmt.Sprintf(`"generation %d"`, gen)) {
			landed++
		}
	}
	close(stop)
	readers.Wait()
	reportCounts(t, "sync-crash", reads.Load(), bad.Load(),
		fmt.Sprintf("one-run=%s runs=%d killed=%d killed-after-temp-file-appeared=%d completed=%d new-version-landed=%d quick-checks=%d (sent = full reads of --dest, failed = partial reads)",
			full.Round(time.Millisecond), kills, killed, midWrite, completed, landed, quick.Load()))
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads of --dest saw a partial or unreadable file (last: %v)", bad.Load(), reads.Load(), badMsg.Load())
	}
	if killed == 0 {
		t.Fatal("every run finished before its kill: the scenario tested nothing")
	}
	if b, err := os.ReadFile(dest); err == nil && !json.Valid(b) {
		t.Fatalf("--dest after %d kills is not valid JSON (%d bytes)", kills, len(b))
	}
	// A final clean run converges. Temporary files of killed runs stay
	// until they are older than atomicfile's stale age (10 minutes: a younger
	// one may belong to a live writer), so they are counted, not failed; the
	// destination itself must never be one.
	p := start(t, "sync final", syncArgs)
	if code := p.Wait(60 * time.Second); code != 0 {
		t.Fatalf("final sync --once exited %d:\n%s", code, p.Output())
	}
	b, err := os.ReadFile(dest)
	if err != nil || !strings.Contains(string(b[:min(len(b), 200)]), fmt.Sprintf("generation %d", kills)) {
		t.Fatalf("after the final run --dest starts %.80q (%v), want generation %d", b, err, kills)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	left := 0
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			left++
		}
	}
	t.Logf("%d temporary files of killed runs remain in the destination directory (removed once older than 10 minutes)", left)
}

// quickCheck opens path and reports a problem ("" = fine, or absent): its
// size must be one a complete version has and its last byte must close the
// JSON object.
func quickCheck(path string, sizes map[int64]bool) string {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return ""
		}
		return err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	if !sizes[fi.Size()] {
		return fmt.Sprintf("size %d is no complete version's", fi.Size())
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, fi.Size()-1); err != nil || last[0] != '}' {
		return fmt.Sprintf("last byte %q (%v), want '}'", last, err)
	}
	return ""
}
