// Package atomicfile replaces files so that a reader never sees a partial or
// mixed version, even if the writer is killed mid-write: the new content goes
// to a temporary file in the same directory, is fsynced, given its mode and
// owner, renamed over the destination, and the directory is fsynced. Previous
// versions can be kept as numbered backups (path.1 newest … path.N) and put
// back with Restore.
//
// WriteDir does the same for a set of files (a bundle): it writes a fresh
// hidden directory and atomically swaps a symlink to it, the way Kubernetes
// updates ConfigMap volumes through "..data".
//
// The package does not lock: callers must not write the same path from
// several goroutines or processes at once (the sync role serializes its
// applies). It does not parse or validate content.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultMode is used when Options.Mode is zero and the destination does not
// exist yet.
const DefaultMode fs.FileMode = 0o644

// staleTempAge is how old a leftover temporary file (from a writer that was
// killed) must be before Write removes it.
const staleTempAge = 10 * time.Minute

// Options control Write, Restore and WriteDir.
type Options struct {
	// Mode is the permission of the written file(s). Zero keeps the mode of
	// the existing destination, or DefaultMode for a new one.
	Mode fs.FileMode
	// UID and GID set the owner with chown; a negative value leaves that id
	// as the writing process creates it. Zero is root: only a process that
	// may chown (root or CAP_CHOWN) can ask for it, so zero is also treated
	// as "unchanged" when it is the writer's own id.
	UID, GID int
	// Keep is how many previous versions to keep: path.1 (newest) … path.N
	// for Write; older bundle directories for WriteDir. Zero keeps none.
	Keep int
}

// Write atomically replaces path with data. See the package documentation
// for the guarantees. The parent directory must exist.
func Write(path string, data []byte, opts Options) error {
	if opts.Keep < 0 {
		return fmt.Errorf("atomicfile: write %q: negative Keep %d", path, opts.Keep)
	}
	dir, base := filepath.Split(path)
	if base == "" {
		return fmt.Errorf("atomicfile: write %q: path names a directory", path)
	}
	if dir == "" {
		dir = "."
	}
	mode := opts.Mode
	existing, statErr := os.Lstat(path)
	switch {
	case statErr == nil && !existing.Mode().IsRegular():
		return fmt.Errorf("atomicfile: write %q: destination exists and is not a regular file (%s)", path, existing.Mode().Type())
	case statErr == nil && mode == 0:
		mode = existing.Mode().Perm()
	case statErr != nil && !errors.Is(statErr, fs.ErrNotExist):
		return fmt.Errorf("atomicfile: write %q: %w", path, statErr)
	}
	if mode == 0 {
		mode = DefaultMode
	}
	removeStaleTemps(dir, "."+base+".tmp-")

	tmp, err := writeTemp(dir, "."+base+".tmp-*", data, mode, opts)
	if err != nil {
		return fmt.Errorf("atomicfile: write %q: %w", path, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.Remove(tmp)
		}
	}()
	if statErr == nil && opts.Keep > 0 {
		if err := rotate(path, opts.Keep); err != nil {
			return fmt.Errorf("atomicfile: write %q: keep backups: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: write %q: %w", path, err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: write %q: %w", path, err)
	}
	return nil
}

// BackupPath returns the name of backup n (1 = newest) of path.
func BackupPath(path string, n int) string {
	return path + "." + strconv.Itoa(n)
}

// Previous returns the content of the newest backup (path.1).
func Previous(path string) ([]byte, error) {
	b, err := os.ReadFile(BackupPath(path, 1))
	if err != nil {
		return nil, fmt.Errorf("atomicfile: previous of %q: %w", path, err)
	}
	return b, nil
}

// Restore atomically puts the newest backup (path.1) back in place of path,
// discarding the current content, and shifts the older backups down
// (path.2 becomes path.1, …). opts.Mode and the owner are applied to the
// restored file; opts.Keep is not used.
func Restore(path string, opts Options) error {
	backup := BackupPath(path, 1)
	fi, err := os.Lstat(backup)
	if err != nil {
		return fmt.Errorf("atomicfile: restore %q: no backup: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("atomicfile: restore %q: backup %q is not a regular file", path, backup)
	}
	if opts.Mode != 0 && fi.Mode().Perm() != opts.Mode.Perm() {
		if err := os.Chmod(backup, opts.Mode.Perm()); err != nil {
			return fmt.Errorf("atomicfile: restore %q: %w", path, err)
		}
	}
	if err := chown(backup, opts); err != nil {
		return fmt.Errorf("atomicfile: restore %q: %w", path, err)
	}
	if err := os.Rename(backup, path); err != nil {
		return fmt.Errorf("atomicfile: restore %q: %w", path, err)
	}
	for n := 2; ; n++ {
		err := os.Rename(BackupPath(path, n), BackupPath(path, n-1))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("atomicfile: restore %q: shift backups: %w", path, err)
		}
	}
	dir := filepath.Dir(path)
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: restore %q: %w", path, err)
	}
	return nil
}

// rotate shifts path.1…path.(keep-1) up by one and makes path.1 a hard link
// to (or, where links are unsupported, a copy of) the current path. The
// current path stays in place throughout, so readers always find a file.
func rotate(path string, keep int) error {
	for n := keep - 1; n >= 1; n-- {
		err := os.Rename(BackupPath(path, n), BackupPath(path, n+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp := filepath.Join(dir, "."+base+".tmp-link-"+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return rerr
		}
		fi, serr := os.Stat(path)
		if serr != nil {
			return serr
		}
		name, werr := writeTemp(dir, "."+base+".tmp-*", data, fi.Mode().Perm(), Options{UID: -1, GID: -1})
		if werr != nil {
			return werr
		}
		tmp = name
	}
	if err := os.Rename(tmp, BackupPath(path, 1)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// writeTemp creates a temporary file in dir with the pattern, writes data,
// applies mode and owner, fsyncs and closes it, and returns its name.
func writeTemp(dir, pattern string, data []byte, mode fs.FileMode, opts Options) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		_ = f.Close()
		_ = os.Remove(name)
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode.Perm()); err != nil {
		return fail(err)
	}
	if err := chownFile(f, opts); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// ids returns the uid and gid to pass to chown (-1 = unchanged) and whether
// any change is wanted.
func ids(opts Options) (uid, gid int, want bool) {
	uid, gid = opts.UID, opts.GID
	if uid < 0 || (uid == 0 && os.Geteuid() != 0) {
		uid = -1
	}
	if gid < 0 || (gid == 0 && os.Geteuid() != 0) {
		gid = -1
	}
	return uid, gid, uid >= 0 || gid >= 0
}

func chownFile(f *os.File, opts Options) error {
	uid, gid, want := ids(opts)
	if !want {
		return nil
	}
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	return nil
}

func chown(path string, opts Options) error {
	uid, gid, want := ids(opts)
	if !want {
		return nil
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename in it survives a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("fsync dir %q: %w", dir, err)
	}
	return nil
}

// removeStaleTemps deletes temporary files with the prefix left behind by a
// writer that was killed. Only old ones are touched, so a concurrent
// (misbehaving) writer's fresh temp file is not pulled from under it.
func removeStaleTemps(dir, prefix string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || e.IsDir() {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTempAge {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
