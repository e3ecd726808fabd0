package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Timing defaults of the file source; each source copies them into fields
// so tests can shorten them.
const (
	// defaultDebounce is how long the directory must be quiet after an event
	// before the file is re-read: cp truncates then writes, kubelet swaps
	// several links, editors write a temp file then rename.
	defaultDebounce = 100 * time.Millisecond
	// maxDebounce caps the debounce under a constant event stream.
	maxDebounce = time.Second
	// defaultPoll is the safety-net re-read interval: inotify misses events
	// on some volume types (NFS, some FUSE, overlay corner cases).
	defaultPoll = 2 * time.Second
)

// fileSource reads a file, or all regular files of a directory (Bundle).
type fileSource struct {
	path     string
	bundle   bool
	log      *slog.Logger
	debounce time.Duration
	poll     time.Duration

	// noEvents disables fsnotify (tests of the polling safety net).
	noEvents bool

	mu sync.Mutex
	// missingReported: a Watch already returned the "missing" error for the
	// current absence; later Watch calls wait for the file to come back.
	missingReported bool
}

func openFile(rawURL string, opts Options) (*fileSource, error) {
	p, err := parseFileURL(rawURL)
	if err != nil {
		return nil, err
	}
	return &fileSource{
		path:     filepath.FromSlash(p),
		bundle:   opts.Bundle,
		log:      opts.Logger,
		debounce: defaultDebounce,
		poll:     defaultPoll,
	}, nil
}

// String names the source.
func (s *fileSource) String() string { return "file://" + filepath.ToSlash(s.path) }

// Close does nothing: watchers live only inside Watch.
func (s *fileSource) Close() error { return nil }

// Get reads the current content.
func (s *fileSource) Get(ctx context.Context) (Config, error) {
	if err := ctx.Err(); err != nil {
		return Config{}, err
	}
	cfg, err := s.read()
	if err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// errEmpty marks a zero-length single file: most likely a `cp` caught
// between truncate and write, never a config worth applying.
var errEmpty = errors.New("file is empty")

// read reads the file or the bundle directory.
func (s *fileSource) read() (Config, error) {
	if s.bundle {
		files, err := readBundleDir(s.path)
		if err != nil {
			return Config{}, err
		}
		return Config{Version: bundleVersion(files), Files: files, Fetched: time.Now()}, nil
	}
	data, err := readLimited(s.path)
	if err != nil {
		return Config{}, err
	}
	if len(data) == 0 {
		return Config{}, fmt.Errorf("source %s: %w", s.String(), errEmpty)
	}
	return Config{
		Version:     dataVersion(data),
		Data:        data,
		ContentType: contentTypeByExt(s.path),
		Fetched:     time.Now(),
	}, nil
}

// readLimited reads a regular file (following symlinks) of at most MaxBytes.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("source file://%s: %w", filepath.ToSlash(name), ErrNotFound)
		}
		return nil, fmt.Errorf("source file://%s: %w", filepath.ToSlash(name), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("source file://%s: %w", filepath.ToSlash(name), err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("source file://%s: not a regular file (%v); use a bundle for directories", filepath.ToSlash(name), st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("source file://%s: %w", filepath.ToSlash(name), err)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("source file://%s: over %d bytes: %w", filepath.ToSlash(name), MaxBytes, ErrTooLarge)
	}
	return data, nil
}

// readBundleDir reads every regular file directly in dir, following
// symlinks (the ConfigMap `key -> ..data/key` layout), skipping names that
// start with ".." (kubelet's timestamped directories and ..data) and
// subdirectories.
func readBundleDir(dir string) (map[string][]byte, error) {
	src := "file://" + filepath.ToSlash(dir)
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("source %s: %w", src, ErrNotFound)
		}
		return nil, fmt.Errorf("source %s: %w", src, err)
	}
	defer d.Close()
	// Read one more than the limit (plus kubelet's own entries) to detect
	// an oversized directory without listing a million entries.
	names, err := d.Readdirnames(MaxBundleFiles + 64)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("source %s: %w", src, err)
	}
	if more, _ := d.Readdirnames(1); len(more) > 0 {
		return nil, fmt.Errorf("source %s: more than %d entries: %w", src, MaxBundleFiles, ErrTooLarge)
	}
	files := make(map[string][]byte)
	var total int
	for _, n := range names {
		if strings.HasPrefix(n, "..") || isTempName(n) {
			continue
		}
		p := filepath.Join(dir, n)
		st, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // a dangling link, or removed while we list: skip
			}
			return nil, fmt.Errorf("source %s: %q: %w", src, n, err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		if len(files) == MaxBundleFiles {
			return nil, fmt.Errorf("source %s: more than %d files: %w", src, MaxBundleFiles, ErrTooLarge)
		}
		if st.Size() > int64(MaxBytes-total) {
			return nil, fmt.Errorf("source %s: content over %d bytes: %w", src, MaxBytes, ErrTooLarge)
		}
		data, err := readLimited(p)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		total += len(data)
		if total > MaxBytes {
			return nil, fmt.Errorf("source %s: content over %d bytes: %w", src, MaxBytes, ErrTooLarge)
		}
		files[n] = data
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("source %s: no regular files: %w", src, ErrNotFound)
	}
	return files, nil
}

// contentTypeByExt maps well-known config file extensions to the config
// API's content types ("" when unknown).
func contentTypeByExt(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return "application/json"
	case ".yaml", ".yml":
		return "application/yaml"
	case ".toml":
		return "application/toml"
	case ".xml":
		return "application/xml"
	case ".ini":
		return "text/x-ini"
	}
	return ""
}

// Watch waits until the file (or bundle) holds content whose version
// differs from after. It watches the directory with fsnotify (catching the
// kubelet's ..data swap, rename-over and truncate+write) plus, for a
// symlink to elsewhere, the target's directory; it debounces, and polls
// every poll interval as a safety net (a cheap stat fingerprint, and a full
// re-read every fullReadEvery polls). A deleted file makes Watch return an
// error wrapping ErrDeleted once; the next Watch waits for it to come back.
// A removed and re-created directory is watched again.
func (s *fileSource) Watch(ctx context.Context, after string) (Config, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return Config{}, fmt.Errorf("source %s: fsnotify: %w", s.String(), err)
	}
	defer w.Close()
	watched := map[string]bool{}

	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	var debounce *time.Timer
	var debounceC <-chan time.Time
	var firstEvent time.Time
	defer func() {
		if debounce != nil {
			debounce.Stop()
		}
	}()

	check := true // check once right away
	var lastFP string
	polls := 0
	for {
		if check {
			check = false
			// Watch first, then read: a change between the two is seen
			// either by the read or as an event.
			s.syncWatches(w, watched)
			lastFP = s.fingerprint()
			cfg, done, err := s.check(after)
			if done {
				return cfg, err
			}
		}
		select {
		case <-ctx.Done():
			return Config{}, ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return Config{}, fmt.Errorf("source %s: fsnotify watcher closed", s.String())
			}
			if watched[ev.Name] && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				delete(watched, ev.Name) // the directory itself went away
			}
			now := time.Now()
			if debounce == nil {
				firstEvent = now
				debounce = time.NewTimer(s.debounce)
				debounceC = debounce.C
			} else if now.Sub(firstEvent) < maxDebounce {
				debounce.Reset(s.debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return Config{}, fmt.Errorf("source %s: fsnotify watcher closed", s.String())
			}
			// Overflow or similar: we may have lost events; re-read now.
			s.log.Warn("file watch error; re-reading", "source", s.String(), "err", err)
			check = true
		case <-debounceC:
			debounce, debounceC = nil, nil
			check = true
		case <-poll.C:
			polls++
			check = polls%fullReadEvery == 0 || s.fingerprint() != lastFP || len(watched) == 0
		}
	}
}

// fullReadEvery: every this many polls the content is re-read even if the
// stat fingerprint did not change (coarse mtimes, same-size edits).
const fullReadEvery = 10

// watchDirs lists the directories whose events matter: the file's
// directory (the bundle directory itself), and for a single file that is a
// symlink to another directory, that directory too. Kubernetes' own links
// resolve below the watched directory and need nothing extra.
func (s *fileSource) watchDirs() []string {
	if s.bundle {
		return []string{s.path}
	}
	dir := filepath.Dir(s.path)
	dirs := []string{dir}
	if real, err := filepath.EvalSymlinks(s.path); err == nil {
		rd := filepath.Dir(real)
		if rel, err := filepath.Rel(dir, rd); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			dirs = append(dirs, rd)
		}
	}
	return dirs
}

// syncWatches makes the watcher's set equal watchDirs (those that exist).
func (s *fileSource) syncWatches(w *fsnotify.Watcher, watched map[string]bool) {
	if s.noEvents {
		return
	}
	want := map[string]bool{}
	for _, d := range s.watchDirs() {
		want[d] = true
	}
	for d := range watched {
		if !want[d] {
			_ = w.Remove(d)
			delete(watched, d)
		}
	}
	for d := range want {
		if watched[d] {
			continue
		}
		// Re-adding after the directory was re-created replaces the stale
		// watch; remove first so fsnotify does not keep the old one.
		_ = w.Remove(d)
		if err := w.Add(d); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("cannot watch directory; polling only", "source", s.String(), "dir", d, "err", err)
			}
			continue
		}
		watched[d] = true
	}
}

// fingerprint is a cheap summary of what a read would see: resolved paths,
// sizes and modification times. Equal fingerprints almost always mean equal
// content; Watch still re-reads every fullReadEvery polls.
func (s *fileSource) fingerprint() string {
	var b strings.Builder
	add := func(p string) {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", p)
			return
		}
		st, err := os.Stat(real)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", p)
			return
		}
		fmt.Fprintf(&b, "%s>%s:%d:%d:%v;", p, real, st.Size(), st.ModTime().UnixNano(), st.Mode())
	}
	if !s.bundle {
		add(s.path)
		return b.String()
	}
	d, err := os.Open(s.path)
	if err != nil {
		return "missing"
	}
	defer d.Close()
	names, _ := d.Readdirnames(MaxBundleFiles + 64)
	for _, n := range names {
		if !strings.HasPrefix(n, "..") {
			add(filepath.Join(s.path, n))
		}
	}
	return b.String()
}

// check reads the current content and decides whether Watch is done.
func (s *fileSource) check(after string) (Config, bool, error) {
	cfg, err := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, ErrNotFound):
		if s.missingReported {
			return Config{}, false, nil
		}
		s.missingReported = true
		return Config{}, true, fmt.Errorf("%w: %w", err, ErrDeleted)
	case errors.Is(err, errEmpty):
		// Most likely a writer between truncate and write: wait for it.
		s.log.Debug("file is empty; waiting for content", "source", s.String())
		return Config{}, false, nil
	case err != nil:
		return Config{}, true, err
	}
	s.missingReported = false
	if cfg.Version == after {
		return Config{}, false, nil
	}
	return cfg, true, nil
}

// isTempName reports names that editors and atomic writers use for files in
// progress (".app.json.tmp-123", ".app.json.swp", "app.json~", ".#app.json"):
// they are never part of a bundle, so a half-written file cannot leak into a
// version. Other dot-files (".htaccess") are kept.
func isTempName(n string) bool {
	switch {
	case strings.HasSuffix(n, "~"), strings.HasPrefix(n, ".#"):
		return true
	case strings.HasPrefix(n, "."):
		return strings.Contains(n, ".tmp") || strings.HasSuffix(n, ".swp") || strings.HasSuffix(n, ".swx")
	}
	return false
}
