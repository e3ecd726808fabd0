package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// content returns a self-identifying payload for version v: a header with
// the version and line count, then that many identical lines. Sizes vary
// with v so that a torn read shows up as a count or line mismatch.
func content(v int) []byte {
	n := 20 + v%97
	var b bytes.Buffer
	fmt.Fprintf(&b, "version %d lines %d\n", v, n)
	for range n {
		fmt.Fprintf(&b, "line of version %08d\n", v)
	}
	return b.Bytes()
}

// checkContent returns the version of a payload made by content, or an
// error if it is partial or mixed.
func checkContent(b []byte) (int, error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var v, n int
	if _, err := fmt.Sscanf(lines[0], "version %d lines %d", &v, &n); err != nil {
		return 0, fmt.Errorf("bad header %q: %w", lines[0], err)
	}
	if len(lines)-1 != n {
		return v, fmt.Errorf("version %d: %d lines, header says %d", v, len(lines)-1, n)
	}
	want := fmt.Sprintf("line of version %08d", v)
	for i, l := range lines[1:] {
		if l != want {
			return v, fmt.Errorf("version %d: line %d is %q", v, i+1, l)
		}
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		return v, fmt.Errorf("version %d: no final newline", v)
	}
	return v, nil
}

func TestWriteModes(t *testing.T) {
	tests := []struct {
		name     string
		existing fs.FileMode // 0 = no existing file
		opt      fs.FileMode
		want     fs.FileMode
	}{
		{"new file default mode", 0, 0, DefaultMode},
		{"new file explicit mode", 0, 0o600, 0o600},
		{"existing mode kept", 0o640, 0, 0o640},
		{"explicit mode wins over existing", 0o640, 0o604, 0o604},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.conf")
			if tc.existing != 0 {
				if err := os.WriteFile(p, []byte("old"), tc.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(p, []byte("new"), Options{Mode: tc.opt, UID: -1, GID: -1}); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.want {
				t.Errorf("mode = %o, want %o", got, tc.want)
			}
			if b, _ := os.ReadFile(p); string(b) != "new" {
				t.Errorf("content = %q", b)
			}
			assertNoTemps(t, filepath.Dir(p))
		})
	}
}

func TestWriteOwnerSelf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	// Chown to our own ids is always permitted and exercises the chown path.
	if err := Write(p, []byte("x"), Options{UID: os.Getuid(), GID: os.Getgid()}); err != nil {
		t.Fatal(err)
	}
}

func TestWriteOwnerAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := Write(p, []byte("x"), Options{UID: 65534, GID: 65534, Keep: 1}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("owner %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
	// Restore applies the owner to the restored file too.
	if err := Write(p, []byte("y"), Options{UID: -1, GID: -1, Keep: 1}); err != nil {
		t.Fatal(err)
	}
	if err := Restore(p, Options{UID: 65534, GID: 0}); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 0 {
		t.Errorf("restored owner %d:%d", st.Uid, st.Gid)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		opts       Options
		want       string
	}{
		{"destination is a directory", sub, Options{}, "not a regular file"},
		{"destination is a symlink", filepath.Join(dir, "link"), Options{}, "not a regular file"},
		{"parent missing", filepath.Join(dir, "nope", "f"), Options{}, "no such file"},
		{"trailing slash", dir + "/", Options{}, "names a directory"},
		{"negative keep", filepath.Join(dir, "f"), Options{Keep: -1}, "negative Keep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(tc.path, []byte("x"), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestKeepBackupsAndRestore(t *testing.T) {
	tests := []struct {
		name   string
		keep   int
		writes int
		want   []string // path, path.1, path.2 … expected contents
	}{
		{"no backups", 0, 3, []string{"v3"}},
		{"one backup", 1, 3, []string{"v3", "v2"}},
		{"three backups, five writes", 3, 5, []string{"v5", "v4", "v3", "v2"}},
		{"more keep than writes", 5, 2, []string{"v2", "v1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.conf")
			for i := 1; i <= tc.writes; i++ {
				if err := Write(p, []byte("v"+strconv.Itoa(i)), Options{Keep: tc.keep, UID: -1, GID: -1}); err != nil {
					t.Fatal(err)
				}
			}
			for i, want := range tc.want {
				name := p
				if i > 0 {
					name = BackupPath(p, i)
				}
				if b, err := os.ReadFile(name); err != nil || string(b) != want {
					t.Errorf("%s = %q, %v; want %q", name, b, err, want)
				}
			}
			if _, err := os.Stat(BackupPath(p, len(tc.want))); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("backup %d exists beyond the expected ones: %v", len(tc.want), err)
			}
			assertNoTemps(t, filepath.Dir(p))
		})
	}

	t.Run("previous and restore", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "app.conf")
		for i := 1; i <= 3; i++ {
			if err := Write(p, []byte("v"+strconv.Itoa(i)), Options{Keep: 3, Mode: 0o640, UID: -1, GID: -1}); err != nil {
				t.Fatal(err)
			}
		}
		if b, err := Previous(p); err != nil || string(b) != "v2" {
			t.Fatalf("Previous = %q, %v", b, err)
		}
		if err := Restore(p, Options{Mode: 0o600, UID: -1, GID: -1}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "v2" {
			t.Fatalf("after restore = %q", b)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("restored mode %o", fi.Mode().Perm())
		}
		if b, err := Previous(p); err != nil || string(b) != "v1" {
			t.Fatalf("Previous after restore = %q, %v", b, err)
		}
		if err := Restore(p, Options{}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "v1" {
			t.Fatalf("after second restore = %q", b)
		}
		if err := Restore(p, Options{}); err == nil || !strings.Contains(err.Error(), "no backup") {
			t.Fatalf("restore without backup: %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "v1" {
			t.Fatalf("failed restore changed the file: %q", b)
		}
	})
}

func TestPreviousMissing(t *testing.T) {
	if _, err := Previous(filepath.Join(t.TempDir(), "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

// TestWriteNeverTorn hammers the destination with reads during 1,000 rapid
// writes: every read must be one complete version, never older than one
// already seen, and the file must never be missing.
func TestWriteNeverTorn(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.conf")
	if err := Write(p, content(0), Options{Keep: 2, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	errc := make(chan error, 1)
	for range 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for !stop.Load() {
				b, err := os.ReadFile(p)
				if err != nil {
					errc <- fmt.Errorf("read: %w", err)
					return
				}
				v, err := checkContent(b)
				if err != nil {
					errc <- err
					return
				}
				if v < last {
					errc <- fmt.Errorf("went back from version %d to %d", last, v)
					return
				}
				last = v
				if reads.Add(1)%32 == 0 {
					time.Sleep(50 * time.Microsecond) // let the writer run on a loaded machine
				}
			}
		}()
	}
	for v := 1; v <= 1000; v++ {
		if err := Write(p, content(v), Options{Keep: 2, UID: -1, GID: -1}); err != nil {
			t.Fatal(err)
		}
		if len(errc) > 0 {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	b, _ := os.ReadFile(p)
	if v, err := checkContent(b); err != nil || v != 1000 {
		t.Fatalf("final version %d, %v", v, err)
	}
	t.Logf("%d consistent reads", reads.Load())
	assertNoTemps(t, filepath.Dir(p))
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
