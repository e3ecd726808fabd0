package source

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// tarOverhead is the slack allowed for tar headers and padding on top of
// MaxBytes of content (512-byte header + up to 511 bytes padding per entry,
// plus PAX records and the end blocks).
const tarOverhead = MaxBundleFiles*2048 + 4096

// untarBundle unpacks a tar stream into relative name -> content. Only
// regular files are accepted (directories are skipped); absolute names,
// ".." components, links, devices, duplicates, more than MaxBundleFiles
// entries and more than MaxBytes of content are rejected. An empty bundle
// is an error: a source never returns an empty config.
//
// An uncompressed tar never holds more content than its own size, except
// for sparse-file holes; content beyond len(archive) is therefore refused,
// which defuses a small archive of huge sparse files.
func untarBundle(archive []byte) (map[string][]byte, error) {
	budget := int64(MaxBytes)
	if int64(len(archive)) < budget {
		budget = int64(len(archive))
	}
	tr := tar.NewReader(bytes.NewReader(archive))
	files := make(map[string][]byte)
	var total int64
	entries := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		entries++
		if entries > MaxBundleFiles {
			return nil, fmt.Errorf("tar: more than %d entries: %w", MaxBundleFiles, ErrTooLarge)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if _, err := bundleName(hdr.Name); err != nil && hdr.Name != "./" && hdr.Name != "." {
				return nil, fmt.Errorf("tar: directory %q: %w", hdr.Name, err)
			}
			continue
		case tar.TypeReg: // tar.Reader reports old-style TypeRegA entries as TypeReg
		case tar.TypeSymlink, tar.TypeLink:
			return nil, fmt.Errorf("tar: %q: links are not allowed in a bundle", hdr.Name)
		default:
			return nil, fmt.Errorf("tar: %q: entry type %q is not a regular file", hdr.Name, hdr.Typeflag)
		}
		name, err := bundleName(hdr.Name)
		if err != nil {
			return nil, fmt.Errorf("tar: %q: %w", hdr.Name, err)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("tar: %q appears twice", name)
		}
		if hdr.Size < 0 || hdr.Size > budget-total {
			if hdr.Size > MaxBytes-total {
				return nil, fmt.Errorf("tar: %q: content over %d bytes in total: %w", name, MaxBytes, ErrTooLarge)
			}
			return nil, fmt.Errorf("tar: %q: %d bytes of content do not fit in a %d-byte archive (sparse file?)", name, hdr.Size, len(archive))
		}
		// Grow with the data actually present: a header claiming 64 MiB on a
		// tiny archive must not allocate 64 MiB.
		data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return nil, fmt.Errorf("tar: %q: %w", name, err)
		}
		if int64(len(data)) != hdr.Size {
			return nil, fmt.Errorf("tar: %q: %w", name, io.ErrUnexpectedEOF)
		}
		total += hdr.Size
		files[name] = data
	}
	if len(files) == 0 {
		return nil, errors.New("tar: no regular files (an empty bundle is never a valid config)")
	}
	if err := checkBundleConflicts(files); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	return files, nil
}

// bundleName validates a relative bundle file name and returns it cleaned
// ("./a//b" -> "a/b"). It rejects absolute names, ".." anywhere, NUL,
// backslashes (a Windows-made traversal) and empty names.
func bundleName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if strings.ContainsRune(name, 0) {
		return "", errors.New("name contains NUL")
	}
	if strings.ContainsRune(name, '\\') {
		return "", errors.New("name contains a backslash")
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute name")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errors.New("name contains '..'")
		}
	}
	clean := path.Clean(name)
	if clean == "." || clean == "" {
		return "", errors.New("empty name")
	}
	if len(clean) > 4096 {
		return "", errors.New("name longer than 4096 bytes")
	}
	return clean, nil
}

// checkBundleConflicts rejects a bundle where one name is both a file and
// a directory ("a" and "a/b"), which no writer could lay out on disk.
func checkBundleConflicts(files map[string][]byte) error {
	for name := range files {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := files[dir]; ok {
				return fmt.Errorf("%q is both a file and the directory of %q", dir, name)
			}
		}
	}
	return nil
}

// bundleVersion is the first 16 hex digits of the SHA-256 of the sorted
// (name, length, content) list: equal bundles have equal versions and no
// two different bundles share an encoding.
func bundleVersion(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	var lenbuf [8]byte
	for _, n := range names {
		binary.BigEndian.PutUint64(lenbuf[:], uint64(len(n)))
		h.Write(lenbuf[:])
		h.Write([]byte(n))
		binary.BigEndian.PutUint64(lenbuf[:], uint64(len(files[n])))
		h.Write(lenbuf[:])
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// dataVersion is the first 16 hex digits of the SHA-256 of data.
func dataVersion(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
