package atomicfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// dirHashLen is how many hex digits of the bundle's SHA-256 name its directory.
const dirHashLen = 16

// ValidateName reports whether name is acceptable as a bundle file name: one
// path element, not empty, not "." or "..", no separators, NUL or control
// characters, and not starting with ".." (reserved, as in Kubernetes).
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case name == "." || name == "..", strings.HasPrefix(name, ".."):
		return fmt.Errorf("file name %q: must not be or start with \"..\"", name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("file name %q: must not contain a path separator", name)
	case len(name) > 255:
		return fmt.Errorf("file name %q: longer than 255 bytes", name[:32]+"…")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("file name %q: contains a control character", name)
		}
	}
	return nil
}

// BundleHash returns the hex SHA-256 over the sorted names and contents of
// files; equal hashes mean equal bundles.
func BundleHash(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		// Length-prefix both parts so that no two different bundles hash alike.
		fmt.Fprintf(h, "%d:%s:%d:", len(n), n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WriteDir atomically replaces the bundle at link with files. link is a
// symlink (created if missing) to a hidden sibling directory
// ".<base>-<hash>-<random>" holding the files; the new directory is written
// and fsynced completely before the symlink is swapped with a rename, so a
// reader that resolves link once (filepath.EvalSymlinks, or by opening the
// files through the resolved directory) always sees one complete version.
// Reading link/a and then link/b separately can straddle a swap.
//
// If link already points at a directory with the same content hash, nothing
// is written. Older directories beyond opts.Keep are removed (newest kept).
func WriteDir(link string, files map[string][]byte, opts Options) error {
	if opts.Keep < 0 {
		return fmt.Errorf("atomicfile: write dir %q: negative Keep %d", link, opts.Keep)
	}
	if len(files) == 0 {
		return fmt.Errorf("atomicfile: write dir %q: no files", link)
	}
	for n := range files {
		if err := ValidateName(n); err != nil {
			return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
		}
	}
	parent, base := filepath.Split(filepath.Clean(link))
	if parent == "" {
		parent = "."
	}
	current := ""
	if fi, err := os.Lstat(link); err == nil {
		if fi.Mode().Type() != fs.ModeSymlink {
			return fmt.Errorf("atomicfile: write dir %q: exists and is not a symlink (%s)", link, fi.Mode().Type())
		}
		if current, err = os.Readlink(link); err != nil {
			return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
	}
	removeStaleTemps(parent, "."+base+".tmp-link-")
	prefix := "." + base + "-"
	hash := BundleHash(files)[:dirHashLen]
	if strings.HasPrefix(filepath.Base(current), prefix+hash+"-") {
		if _, err := os.Stat(link); err == nil {
			return nil // same content already live
		}
	}
	mode := opts.Mode
	if mode == 0 {
		mode = DefaultMode
	}
	newDir, err := os.MkdirTemp(parent, prefix+hash+"-*")
	if err != nil {
		return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.RemoveAll(newDir)
		}
	}()
	for name, data := range files {
		if err := writeNew(filepath.Join(newDir, name), data, mode, opts); err != nil {
			return fmt.Errorf("atomicfile: write dir %q: file %q: %w", link, name, err)
		}
	}
	if err := os.Chmod(newDir, dirMode(mode)); err != nil {
		return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
	}
	if err := chown(newDir, opts); err != nil {
		return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
	}
	if err := syncDir(newDir); err != nil {
		return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
	}
	tmpLink := filepath.Join(parent, "."+base+".tmp-link-"+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmpLink)
	// A relative target keeps the bundle valid when the volume is mounted
	// elsewhere (another container sees the same tree under another path).
	if err := os.Symlink(filepath.Base(newDir), tmpLink); err != nil {
		return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
	}
	if err := os.Rename(tmpLink, link); err != nil {
		_ = os.Remove(tmpLink)
		return fmt.Errorf("atomicfile: write dir %q: swap symlink: %w", link, err)
	}
	committed = true
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("atomicfile: write dir %q: %w", link, err)
	}
	if err := prune(parent, prefix, filepath.Base(newDir), filepath.Base(current), opts.Keep); err != nil {
		return fmt.Errorf("atomicfile: write dir %q: remove old versions: %w", link, err)
	}
	return nil
}

// dirMode adds search permission wherever mode grants read permission.
func dirMode(mode fs.FileMode) fs.FileMode {
	m := mode.Perm() | 0o700
	if m&0o040 != 0 {
		m |= 0o010
	}
	if m&0o004 != 0 {
		m |= 0o001
	}
	return m
}

// writeNew creates path (which must not exist), writes and fsyncs data.
func writeNew(path string, data []byte, mode fs.FileMode, opts Options) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode.Perm()); err != nil { // the umask may have narrowed it
		return fail(err)
	}
	if err := chownFile(f, opts); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	return f.Close()
}

// isVersionDir reports whether name looks like a directory WriteDir made
// for the given prefix: prefix, dirHashLen hex digits, "-", random suffix.
func isVersionDir(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || len(rest) < dirHashLen+2 || rest[dirHashLen] != '-' {
		return false
	}
	for _, c := range rest[:dirHashLen] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// prune removes version directories other than live, keeping the keep newest;
// prev (the version live before this write) counts as the newest.
func prune(parent, prefix, live, prev string, keep int) error {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return err
	}
	type old struct {
		name string
		mod  int64
	}
	var olds []old
	for _, e := range entries {
		if !e.IsDir() || e.Name() == live || !isVersionDir(e.Name(), prefix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		mod := fi.ModTime().UnixNano()
		if e.Name() == prev {
			mod = math.MaxInt64
		}
		olds = append(olds, old{e.Name(), mod})
	}
	slices.SortFunc(olds, func(a, b old) int {
		switch {
		case a.mod > b.mod:
			return -1
		case a.mod < b.mod:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	var errs []error
	for i, o := range olds {
		if i < keep {
			continue
		}
		if err := os.RemoveAll(filepath.Join(parent, o.name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
