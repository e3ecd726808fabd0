package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testTimeout guards every blocking call; it is a deadlock guard, not an
// expectation about speed.
const testTimeout = 20 * time.Second

type watchResult struct {
	cfg Config
	err error
}

// watchAsync runs src.Watch(after) in a goroutine.
func watchAsync(ctx context.Context, src Source, after string) <-chan watchResult {
	ch := make(chan watchResult, 1)
	go func() {
		cfg, err := src.Watch(ctx, after)
		ch <- watchResult{cfg, err}
	}()
	return ch
}

func waitResult(t *testing.T, ch <-chan watchResult) watchResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testTimeout):
		t.Fatal("Watch did not return")
		return watchResult{}
	}
}

// assertPending checks that Watch has not returned after the source had
// ample time (several debounce periods) to notice a non-change.
func assertPending(t *testing.T, ch <-chan watchResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Watch returned early: version %q err %v", r.cfg.Version, r.err)
	case <-time.After(400 * time.Millisecond):
	}
}

func openFileSource(t *testing.T, p string, bundle bool) *fileSource {
	t.Helper()
	src, err := Open("file://"+filepath.ToSlash(p), Options{Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	fs := src.(*fileSource)
	fs.debounce = 20 * time.Millisecond
	fs.poll = 150 * time.Millisecond
	t.Cleanup(func() { fs.Close() })
	return fs
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, src Source) Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cfg, err := src.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return cfg
}

func TestFileWatchChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, p string)
		want   string
	}{
		{"write", func(t *testing.T, p string) { writeFile(t, p, "v2") }, "v2"},
		{"rename over", func(t *testing.T, p string) {
			tmp := filepath.Join(filepath.Dir(p), ".app.conf.swp")
			writeFile(t, tmp, "renamed")
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}, "renamed"},
		{"truncate then write", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Sync(); err != nil { // the empty state is visible
				t.Fatal(err)
			}
			if _, err := f.WriteString("after truncate"); err != nil {
				t.Fatal(err)
			}
		}, "after truncate"},
		{"remove and create", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			writeFile(t, p, "recreated")
		}, "recreated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.conf")
			writeFile(t, p, "v1")
			src := openFileSource(t, p, false)
			src.poll = time.Hour // events alone must suffice
			v1 := mustGet(t, src)
			if string(v1.Data) != "v1" || v1.Version != dataVersion([]byte("v1")) || len(v1.Version) != 16 {
				t.Fatalf("Get = %+v", v1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ch := watchAsync(ctx, src, v1.Version)
			assertPending(t, ch)
			tt.change(t, p)
			// "remove and create" may first report the deletion.
			r := waitResult(t, ch)
			if errors.Is(r.err, ErrDeleted) {
				r = waitResult(t, watchAsync(ctx, src, v1.Version))
			}
			if r.err != nil {
				t.Fatalf("Watch: %v", r.err)
			}
			if string(r.cfg.Data) != tt.want || r.cfg.Version != dataVersion([]byte(tt.want)) {
				t.Fatalf("Watch = %q (%s), want %q", r.cfg.Data, r.cfg.Version, tt.want)
			}
		})
	}
}

func TestFileIdenticalRewriteIsNotNew(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.json")
	writeFile(t, p, `{"a":1}`)
	src := openFileSource(t, p, false)
	v1 := mustGet(t, src)
	if v1.ContentType != "application/json" {
		t.Errorf("ContentType = %q", v1.ContentType)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ch := watchAsync(ctx, src, v1.Version)
	writeFile(t, p, `{"a":1}`)
	assertPending(t, ch)
	writeFile(t, p, `{"a":2}`)
	r := waitResult(t, ch)
	if r.err != nil || string(r.cfg.Data) != `{"a":2}` {
		t.Fatalf("Watch = %q, %v", r.cfg.Data, r.err)
	}
}

func TestFileWatchAnyWhenAfterEmpty(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.conf")
	writeFile(t, p, "x")
	src := openFileSource(t, p, false)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cfg, err := src.Watch(ctx, "")
	if err != nil || string(cfg.Data) != "x" {
		t.Fatalf("Watch(\"\") = %q, %v", cfg.Data, err)
	}
}

func TestFileDeletionThenRestore(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.conf")
	writeFile(t, p, "v1")
	src := openFileSource(t, p, false)
	v1 := mustGet(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ch := watchAsync(ctx, src, v1.Version)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, ch)
	if !errors.Is(r.err, ErrDeleted) || !errors.Is(r.err, ErrNotFound) {
		t.Fatalf("Watch after delete: %v, want ErrDeleted", r.err)
	}
	// The next Watch waits for the file instead of failing again.
	ch = watchAsync(ctx, src, v1.Version)
	assertPending(t, ch)
	writeFile(t, p, "v2")
	r = waitResult(t, ch)
	if r.err != nil || string(r.cfg.Data) != "v2" {
		t.Fatalf("Watch after restore = %q, %v", r.cfg.Data, r.err)
	}
	if _, err := src.Get(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFileGetErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "")
	tests := []struct {
		name   string
		path   string
		bundle bool
		is     error
		want   string
	}{
		{name: "missing", path: filepath.Join(dir, "nope"), is: ErrNotFound},
		{name: "empty", path: empty, is: errEmpty},
		{name: "directory without bundle", path: dir, want: "not a regular file"},
		{name: "bundle missing dir", path: filepath.Join(dir, "nodir"), bundle: true, is: ErrNotFound},
		{name: "bundle of a file", path: empty, bundle: true, want: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := openFileSource(t, tt.path, tt.bundle)
			_, err := src.Get(context.Background())
			if err == nil {
				t.Fatal("Get succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Get error %v, want %v", err, tt.is)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Get error %q, want %q", err, tt.want)
			}
		})
	}
}

func TestFileWatchCancel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.conf")
	writeFile(t, p, "v1")
	src := openFileSource(t, p, false)
	v1 := mustGet(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	ch := watchAsync(ctx, src, v1.Version)
	assertPending(t, ch)
	cancel()
	r := waitResult(t, ch)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Watch after cancel: %v", r.err)
	}
}

func TestFileDirectoryRecreated(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "cfg")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "app.conf")
	writeFile(t, p, "v1")
	src := openFileSource(t, p, false)
	v1 := mustGet(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ch := watchAsync(ctx, src, v1.Version)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, ch); !errors.Is(r.err, ErrDeleted) {
		t.Fatalf("Watch after rm -r: %v", r.err)
	}
	ch = watchAsync(ctx, src, v1.Version)
	assertPending(t, ch) // the watcher now polls for the directory
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, "v2")
	r := waitResult(t, ch)
	if r.err != nil || string(r.cfg.Data) != "v2" {
		t.Fatalf("Watch after recreate = %q, %v", r.cfg.Data, r.err)
	}
	// And events work again on the re-established watch.
	ch = watchAsync(ctx, src, r.cfg.Version)
	assertPending(t, ch)
	writeFile(t, p, "v3")
	if r := waitResult(t, ch); r.err != nil || string(r.cfg.Data) != "v3" {
		t.Fatalf("Watch after second write = %q, %v", r.cfg.Data, r.err)
	}
}

// kubeVolume reproduces the kubelet's AtomicWriter layout on disk:
// timestamped data directories, a "..data" symlink to the current one that
// is replaced by renaming "..data_tmp" over it, and "key -> ..data/key"
// links for every key.
type kubeVolume struct {
	t   *testing.T
	dir string
	gen int
	cur string // current timestamped directory name
}

func (k *kubeVolume) update(files map[string]string) {
	t := k.t
	k.gen++
	ts := fmt.Sprintf("..2026_11_26_12_%02d_%02d.%09d", k.gen/60, k.gen%60, 100000+k.gen)
	if err := os.Mkdir(filepath.Join(k.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFile(t, filepath.Join(k.dir, ts, name), content)
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(k.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
	if k.cur != "" {
		if err := os.RemoveAll(filepath.Join(k.dir, k.cur)); err != nil {
			t.Fatal(err)
		}
	}
	k.cur = ts
}

func TestFileKubernetesConfigMapSwap(t *testing.T) {
	for _, bundle := range []bool{false, true} {
		t.Run(fmt.Sprintf("bundle=%v", bundle), func(t *testing.T) {
			dir := t.TempDir()
			kv := &kubeVolume{t: t, dir: dir}
			kv.update(map[string]string{"app.conf": "one", "extra.ini": "[a]"})
			if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "app.conf")
			if bundle {
				p = dir
			}
			src := openFileSource(t, p, bundle)
			src.poll = time.Hour // events alone must suffice
			v1 := mustGet(t, src)
			if bundle {
				if len(v1.Files) != 2 || string(v1.Files["app.conf"]) != "one" || string(v1.Files["extra.ini"]) != "[a]" || v1.Data != nil {
					t.Fatalf("bundle Get = %v", v1.Files)
				}
			} else if string(v1.Data) != "one" {
				t.Fatalf("Get = %q", v1.Data)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ch := watchAsync(ctx, src, v1.Version)
			assertPending(t, ch)
			kv.update(map[string]string{"app.conf": "two", "extra.ini": "[a]"})
			r := waitResult(t, ch)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if bundle {
				if string(r.cfg.Files["app.conf"]) != "two" || len(r.cfg.Files) != 2 {
					t.Fatalf("bundle Watch = %v", r.cfg.Files)
				}
			} else if string(r.cfg.Data) != "two" {
				t.Fatalf("Watch = %q", r.cfg.Data)
			}
			// A swap with identical content is not a new version.
			ch = watchAsync(ctx, src, r.cfg.Version)
			kv.update(map[string]string{"app.conf": "two", "extra.ini": "[a]"})
			assertPending(t, ch)
			cancel()
			waitResult(t, ch)
		})
	}
}

func TestFileBundleLimits(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i <= MaxBundleFiles; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%04d", i)), "x")
	}
	src := openFileSource(t, dir, true)
	if _, err := src.Get(context.Background()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Get of %d files: %v, want ErrTooLarge", MaxBundleFiles+1, err)
	}
	if err := os.Remove(filepath.Join(dir, "f0000")); err != nil {
		t.Fatal(err)
	}
	cfg := mustGet(t, src)
	if len(cfg.Files) != MaxBundleFiles {
		t.Fatalf("got %d files", len(cfg.Files))
	}
}

func TestFileBundleEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "..2026"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := openFileSource(t, dir, true)
	if _, err := src.Get(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of empty bundle dir: %v, want ErrNotFound", err)
	}
}

func TestFilePollingSafetyNet(t *testing.T) {
	for _, bundle := range []bool{false, true} {
		t.Run(fmt.Sprintf("bundle=%v", bundle), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "app.conf")
			writeFile(t, p, "v1")
			watched := p
			if bundle {
				watched = dir
			}
			src := openFileSource(t, watched, bundle)
			src.noEvents = true // as if inotify missed everything
			v1 := mustGet(t, src)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ch := watchAsync(ctx, src, v1.Version)
			assertPending(t, ch)
			// Same size, so only the mtime (or the periodic full read) tells.
			writeFile(t, p, "v2")
			r := waitResult(t, ch)
			if r.err != nil {
				t.Fatal(r.err)
			}
			got := string(r.cfg.Data)
			if bundle {
				got = string(r.cfg.Files["app.conf"])
			}
			if got != "v2" {
				t.Fatalf("Watch = %q", got)
			}
		})
	}
}

func TestFileSymlinkToOtherDirectory(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real.conf")
	writeFile(t, real, "v1")
	link := filepath.Join(t.TempDir(), "app.conf")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	src := openFileSource(t, link, false)
	src.poll = time.Hour // the target's directory must be watched too
	v1 := mustGet(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ch := watchAsync(ctx, src, v1.Version)
	assertPending(t, ch)
	writeFile(t, real, "v2 in place")
	if r := waitResult(t, ch); r.err != nil || string(r.cfg.Data) != "v2 in place" {
		t.Fatalf("Watch = %q, %v", r.cfg.Data, r.err)
	}
}

func TestIsTempName(t *testing.T) {
	for name, want := range map[string]bool{
		".app.json.tmp-123": true, ".app.json.swp": true, "app.json~": true, ".#app.json": true,
		"app.json": false, ".htaccess": false, "..data": false, "tmp.conf": false,
	} {
		if got := isTempName(name); got != want {
			t.Errorf("isTempName(%q) = %v, want %v", name, got, want)
		}
	}
}
