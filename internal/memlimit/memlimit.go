// Package memlimit gives the Go runtime a soft memory limit that matches the
// container's: 90% of the cgroup memory limit, so that the garbage collector
// works harder before the kernel's OOM killer steps in (the failure mode of
// sidecars that idle at 20–30 MiB limits).
//
// It reads cgroup v2 memory.max, or cgroup v1 memory.limit_in_bytes, of the
// process's own cgroup (found through /proc/self/cgroup and
// /proc/self/mountinfo), taking the smallest limit among the cgroup and its
// ancestors. It does nothing when GOMEMLIMIT is set (the operator decided)
// or when no limit is found. It does not watch for later changes of the
// limit, and it never sets GOMAXPROCS.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// noLimit is the threshold above which a cgroup limit means "unlimited":
// cgroup v1 reports 9223372036854771712 (PAGE_COUNTER_MAX pages), and no
// container has an exabyte.
const noLimit = 1 << 60

// Source values returned by Apply.
const (
	SourceEnv  = "GOMEMLIMIT"
	SourceNone = "none"
)

// Apply sets the runtime's soft memory limit to 90% of the cgroup memory
// limit and logs what it did. It returns the soft limit now in effect
// (bytes; 0 when Apply set none) and where it came from: SourceEnv when
// GOMEMLIMIT is set (Apply then leaves the limit alone and returns the
// runtime's current one), the cgroup file it read, or SourceNone.
func Apply(logger *slog.Logger) (limit int64, source string) {
	return apply(logger, system{
		root:   "/",
		getenv: os.Getenv,
		set:    debug.SetMemoryLimit,
	})
}

// system is what apply touches, injectable for tests.
type system struct {
	root   string                  // prefix for every /proc and /sys path
	getenv func(string) string     // os.Getenv
	set    func(limit int64) int64 // debug.SetMemoryLimit
}

func apply(logger *slog.Logger, sys system) (int64, string) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if v := sys.getenv("GOMEMLIMIT"); v != "" {
		cur := sys.set(-1) // -1 reads without changing
		logger.Info("memory limit from GOMEMLIMIT", "gomemlimit", v, "limit_bytes", cur)
		return cur, SourceEnv
	}
	cgLimit, file, err := cgroupLimit(sys.root)
	if err != nil {
		logger.Warn("memory limit: cannot read the cgroup limit, leaving the runtime's unset", "err", err)
		return 0, SourceNone
	}
	if cgLimit <= 0 {
		logger.Info("memory limit: no cgroup memory limit, leaving the runtime's unset")
		return 0, SourceNone
	}
	soft := cgLimit / 10 * 9
	sys.set(soft)
	logger.Info("memory limit set from cgroup", "limit_bytes", soft, "cgroup_limit_bytes", cgLimit, "source", file)
	return soft, file
}

// cgroupLimit returns the memory limit of this process's cgroup (0 when
// unlimited) and the file that set it. cgroup v2 is tried first; on hybrid
// hosts, where the v2 hierarchy has no memory controller, v1 answers.
func cgroupLimit(root string) (int64, string, error) {
	cgData, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, "", nil // not Linux, or no /proc: no limit to follow
		}
		return 0, "", fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	v2Path, v1Path, err := parseCgroup(cgData)
	if err != nil {
		return 0, "", err
	}
	mounts := parseMountinfo(readOrNil(filepath.Join(root, "proc/self/mountinfo")))

	if v2Path != "" {
		m, ok := mounts.v2, mounts.hasV2
		if !ok {
			m = mount{root: "/", point: "/sys/fs/cgroup"}
		}
		limit, file, found, err := minAlongPath(root, m, v2Path, "memory.max")
		if err != nil || found {
			return limit, file, err
		}
	}
	if v1Path != "" {
		m, ok := mounts.v1, mounts.hasV1
		if !ok {
			m = mount{root: "/", point: "/sys/fs/cgroup/memory"}
		}
		limit, file, _, err := minAlongPath(root, m, v1Path, "memory.limit_in_bytes")
		return limit, file, err
	}
	return 0, "", nil
}

// parseCgroup reads /proc/self/cgroup: "0::/path" is the v2 cgroup, a line
// whose controller list holds "memory" the v1 memory cgroup.
func parseCgroup(data []byte) (v2, v1 string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return "", "", fmt.Errorf("/proc/self/cgroup line %q: want id:controllers:path", line)
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case hasController(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("/proc/self/cgroup: %w", err)
	}
	return v2, v1, nil
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// mount is a cgroup file system mount: the cgroup path mounted (root) and
// where (point).
type mount struct{ root, point string }

type mounts struct {
	v2, v1       mount
	hasV2, hasV1 bool
}

// parseMountinfo finds the cgroup2 mount and the cgroup v1 mount holding
// the memory controller in /proc/self/mountinfo:
//
//	36 35 0:32 / /sys/fs/cgroup/memory rw,relatime shared:1 - cgroup cgroup rw,memory
//
// Malformed lines are skipped: the defaults still apply.
func parseMountinfo(data []byte) mounts {
	var ms mounts
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		// Before "-": id, parent, major:minor, root, mount point, options
		// (and optional fields); after it: type, source, super options.
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		m := mount{root: unescape(fields[3]), point: unescape(fields[4])}
		switch fstype := fields[sep+1]; {
		case fstype == "cgroup2" && !ms.hasV2:
			ms.v2, ms.hasV2 = m, true
		case fstype == "cgroup" && !ms.hasV1 && hasController(fields[sep+3], "memory"):
			ms.v1, ms.hasV1 = m, true
		}
	}
	return ms
}

// unescape decodes the octal escapes (\040 for space) of mountinfo paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// minAlongPath reads file in the cgroup directory of cgPath and in each
// ancestor up to the mount point, and returns the smallest limit (0 when
// all are unlimited), the file that set it, and whether any file existed.
func minAlongPath(root string, m mount, cgPath, file string) (int64, string, bool, error) {
	rel := cgPath
	if m.root != "/" {
		if r, ok := strings.CutPrefix(cgPath, m.root); ok && (r == "" || r[0] == '/') {
			rel = r
		} else {
			// The cgroup is outside the mounted subtree (a cgroup
			// namespace shows "/"): only the mount point's own file helps.
			rel = "/"
		}
	}
	rel = path.Clean("/" + rel)
	var (
		best     int64
		bestFile string
		found    bool
	)
	for dir := rel; ; dir = path.Dir(dir) {
		shown := path.Join(m.point, dir, file)
		data, err := os.ReadFile(filepath.Join(root, shown))
		switch {
		case err == nil:
			found = true
			limit, err := parseLimit(data)
			if err != nil {
				return 0, "", true, fmt.Errorf("%s: %w", shown, err)
			}
			if limit > 0 && (best == 0 || limit < best) {
				best, bestFile = limit, shown
			}
		case errors.Is(err, fs.ErrNotExist):
			// Not every level has the file (the root cgroup has no
			// memory.max); keep climbing.
		default:
			return 0, "", found, fmt.Errorf("%s: %w", shown, err)
		}
		if dir == "/" {
			break
		}
	}
	return best, bestFile, found, nil
}

// parseLimit reads a limit file: "max" or a huge number means unlimited
// (0); otherwise the byte count.
func parseLimit(data []byte) (int64, error) {
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("limit %q: not a number or \"max\"", s)
	}
	if n >= noLimit {
		return 0, nil
	}
	return int64(n), nil
}

// readOrNil returns the file's content, or nil when it cannot be read.
func readOrNil(name string) []byte {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil
	}
	return data
}
