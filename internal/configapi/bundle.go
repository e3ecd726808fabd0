package configapi

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
)

// Bundles: a config may be a tar archive of several files pushed as
// application/x-tar (an addition to docs/api.md's list); the sync role's
// HTTP source unpacks it into a directory. The server checks that the
// archive is one the source will accept, so a bad bundle is refused at push
// time and never reaches a sidecar.

// bundleContentType is the stored media type of a bundle.
const bundleContentType = "application/x-tar"

// maxBundleFiles matches the sync role's limit on entries.
const maxBundleFiles = 1000

// isBundleType reports whether a Content-Type names a tar bundle.
func isBundleType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt == "application/x-tar" || mt == "application/tar"
}

// bundleError is a refused bundle (422).
type bundleError struct{ msg string }

func (e *bundleError) Error() string { return "tar bundle: " + e.msg }

func badBundle(format string, args ...any) error {
	return &bundleError{msg: fmt.Sprintf(format, args...)}
}

// validateBundle checks a tar archive: only regular files and directories,
// relative names without "..", NUL or backslashes, no duplicates, no name
// that is both a file and a directory, at most maxBundleFiles entries, at
// least one file, and no content beyond the archive's own size (sparse
// files).
func validateBundle(data []byte) error {
	tr := tar.NewReader(bytes.NewReader(data))
	files := map[string]bool{}
	var total int64
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return badBundle("entry %d: %v", entries+1, err)
		}
		if entries >= maxBundleFiles {
			return badBundle("more than %d entries", maxBundleFiles)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if hdr.Name == "./" || hdr.Name == "." {
				continue
			}
			if _, err := bundleName(hdr.Name); err != nil {
				return badBundle("directory %q: %v", hdr.Name, err)
			}
			continue
		case tar.TypeReg: // tar.Reader reports old-style TypeRegA entries as TypeReg
		case tar.TypeSymlink, tar.TypeLink:
			return badBundle("%q: links are not allowed", hdr.Name)
		default:
			return badBundle("%q: entry type %q is not a regular file", hdr.Name, hdr.Typeflag)
		}
		name, err := bundleName(hdr.Name)
		if err != nil {
			return badBundle("%q: %v", hdr.Name, err)
		}
		if files[name] {
			return badBundle("%q appears twice", name)
		}
		if hdr.Size < 0 || hdr.Size > int64(len(data))-total {
			return badBundle("%q: %d bytes of content do not fit in a %d-byte archive", name, hdr.Size, len(data))
		}
		n, err := io.Copy(io.Discard, io.LimitReader(tr, hdr.Size))
		if err != nil || n != hdr.Size {
			return badBundle("%q: truncated content", name)
		}
		total += n
		files[name] = true
	}
	if len(files) == 0 {
		return badBundle("no regular files")
	}
	for name := range files {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if files[dir] {
				return badBundle("%q is both a file and the directory of %q", dir, name)
			}
		}
	}
	return nil
}

// bundleName validates and cleans a relative file name inside a bundle.
func bundleName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case strings.ContainsRune(name, 0):
		return "", errors.New("name contains NUL")
	case strings.ContainsRune(name, '\\'):
		return "", errors.New("name contains a backslash")
	case strings.HasPrefix(name, "/"):
		return "", errors.New("absolute name")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errors.New("name contains '..'")
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", errors.New("empty name")
	}
	if len(clean) > 4096 {
		return "", errors.New("name longer than 4096 bytes")
	}
	return clean, nil
}
