package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func bundle(v int) map[string][]byte {
	return map[string][]byte{
		"a.conf": content(v),
		"b.conf": content(v),
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"app.conf", true},
		{".hidden", true},
		{"with space", true},
		{"", false},
		{".", false},
		{"..", false},
		{"..data", false},
		{"a/b", false},
		{"/etc/passwd", false},
		{`a\b`, false},
		{"a\x00b", false},
		{"new\nline", false},
		{strings.Repeat("x", 256), false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.name), func(t *testing.T) {
			err := ValidateName(tc.name)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
		})
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"app.conf", "..data", "../x", "a/b", "", ".", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		// An accepted name stays one element inside its directory.
		if filepath.Base(name) != name || filepath.Join("/d", name) != "/d/"+name || !filepath.IsLocal(name) {
			t.Fatalf("ValidateName accepted %q", name)
		}
	})
}

func TestWriteDirErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		link  string
		files map[string][]byte
		opts  Options
		want  string
	}{
		{"no files", filepath.Join(dir, "b"), nil, Options{}, "no files"},
		{"traversal", filepath.Join(dir, "b"), map[string][]byte{"../evil": nil}, Options{}, "must not"},
		{"absolute", filepath.Join(dir, "b"), map[string][]byte{"/etc/x": nil}, Options{}, "separator"},
		{"link is a real directory", plain, map[string][]byte{"a": nil}, Options{}, "not a symlink"},
		{"negative keep", filepath.Join(dir, "b"), map[string][]byte{"a": nil}, Options{Keep: -2}, "negative Keep"},
		{"parent missing", filepath.Join(dir, "nope", "b"), map[string][]byte{"a": nil}, Options{}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteDir(tc.link, tc.files, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed writes created the link: %v", err)
	}
}

func TestWriteDirKeepAndSameContent(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "bundle")
	opts := Options{Keep: 2, Mode: 0o640, UID: -1, GID: -1}
	for v := 1; v <= 5; v++ {
		if err := WriteDir(link, bundle(v), opts); err != nil {
			t.Fatal(err)
		}
	}
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.IsAbs(target) {
		t.Errorf("symlink target %q is absolute", target)
	}
	if b, _ := os.ReadFile(filepath.Join(link, "a.conf")); string(b) != string(content(5)) {
		t.Errorf("a.conf is not version 5")
	}
	fi, err := os.Stat(filepath.Join(link, "b.conf"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("b.conf mode %v, %v", fi.Mode().Perm(), err)
	}
	if n := countVersionDirs(t, dir, "bundle"); n != 3 {
		t.Errorf("%d version directories, want live + 2 kept", n)
	}
	// Same content again: nothing changes.
	if err := WriteDir(link, bundle(5), opts); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(link); again != target {
		t.Errorf("identical bundle swapped the link: %q -> %q", target, again)
	}
	// Keep 0 removes every old directory.
	if err := WriteDir(link, bundle(6), Options{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	if n := countVersionDirs(t, dir, "bundle"); n != 1 {
		t.Errorf("%d version directories with Keep 0", n)
	}
	for _, e := range mustReadDir(t, dir) {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary left behind: %s", e.Name())
		}
	}
}

// TestWriteDirNeverMixed: a reader resolving the link once always reads both
// files from the same version during 1,000 rapid bundle writes.
func TestWriteDirNeverMixed(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "bundle")
	opts := Options{Keep: 1, UID: -1, GID: -1}
	if err := WriteDir(link, bundle(0), opts); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var consistent atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			resolved, err := filepath.EvalSymlinks(link)
			if errors.Is(err, fs.ErrNotExist) {
				continue // resolved to a version pruned a moment later
			}
			if err != nil {
				errc <- fmt.Errorf("resolve: %w", err)
				return
			}
			a, errA := os.ReadFile(filepath.Join(resolved, "a.conf"))
			b, errB := os.ReadFile(filepath.Join(resolved, "b.conf"))
			if errors.Is(errA, fs.ErrNotExist) || errors.Is(errB, fs.ErrNotExist) {
				continue // pruned after we resolved it: never a mixed read
			}
			if errA != nil || errB != nil {
				errc <- errors.Join(errA, errB)
				return
			}
			va, errA := checkContent(a)
			vb, errB := checkContent(b)
			if errA != nil || errB != nil {
				errc <- errors.Join(errA, errB)
				return
			}
			if va != vb {
				errc <- fmt.Errorf("mixed bundle: a.conf v%d, b.conf v%d", va, vb)
				return
			}
			// Yield now and then: on a loaded machine a reader spinning flat
			// out starves the writer it is meant to race.
			if consistent.Add(1)%32 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	for v := 1; v <= 1000; v++ {
		if err := WriteDir(link, bundle(v), opts); err != nil {
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
	t.Logf("%d consistent bundle reads", consistent.Load())
	if n := countVersionDirs(t, dir, "bundle"); n != 2 {
		t.Errorf("%d version directories, want 2", n)
	}
}

func countVersionDirs(t *testing.T, dir, base string) int {
	t.Helper()
	n := 0
	for _, e := range mustReadDir(t, dir) {
		if e.IsDir() && isVersionDir(e.Name(), "."+base+"-") {
			n++
		}
	}
	return n
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func BenchmarkWriteDir(b *testing.B) {
	link := filepath.Join(b.TempDir(), "bundle")
	for i := 0; b.Loop(); i++ {
		if err := WriteDir(link, bundle(i), Options{Keep: 1, UID: -1, GID: -1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	p := filepath.Join(b.TempDir(), "app.conf")
	for i := 0; b.Loop(); i++ {
		if err := Write(p, content(i), Options{Keep: 1, UID: -1, GID: -1}); err != nil {
			b.Fatal(err)
		}
	}
}
