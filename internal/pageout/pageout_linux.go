package pageout

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Linux madvise(2) advice values (stable ABI; not all are in package syscall).
const (
	madvDontneed = 4
	madvCold     = 20 // Linux 5.4+; EINVAL before: ignored
)

// Release drops the executable's clean read-only pages from this process
// (see the package doc) and returns how many bytes of the binary were
// resident before and after.
func Release() (before, after int64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	maps, err := exeMappings(exe)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range maps {
		before += m.rss
		if m.writable || m.anon > 0 {
			after += m.rss
			continue
		}
		_ = madvise(m.start, m.end-m.start, madvCold)
		if err := madvise(m.start, m.end-m.start, madvDontneed); err != nil {
			return before, 0, fmt.Errorf("pageout: madvise %x-%x: %w", m.start, m.end, err)
		}
	}
	if maps, err = exeMappings(exe); err == nil {
		after = 0
		for _, m := range maps {
			after += m.rss
		}
	}
	return before, after, nil
}

func madvise(addr, length uintptr, advice int) error {
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, addr, length, uintptr(advice)); e != 0 {
		return e
	}
	return nil
}

// mapping is one /proc/self/smaps entry of the executable.
type mapping struct {
	start, end uintptr
	writable   bool
	rss, anon  int64 // bytes
}

// exeMappings reads the executable's mappings from /proc/self/smaps.
func exeMappings(exe string) ([]mapping, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	return parseSmaps(b, exe), nil
}

// parseSmaps returns the mappings of path in an smaps text.
func parseSmaps(b []byte, path string) []mapping {
	var out []mapping
	var cur *mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping header: start-end perms offset dev inode [path]
			cur = nil
			if len(f) < 6 || strings.Join(f[5:], " ") != path || len(f[1]) < 2 {
				continue
			}
			lo, hi, ok := strings.Cut(f[0], "-")
			if !ok {
				continue
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				continue
			}
			out = append(out, mapping{start: uintptr(start), end: uintptr(end), writable: f[1][1] == 'w'})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil || len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Rss:":
			cur.rss = kb << 10
		case "Anonymous:":
			cur.anon = kb << 10
		}
	}
	return out
}
