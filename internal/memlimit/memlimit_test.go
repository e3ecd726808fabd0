package memlimit

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

const (
	mi = 1 << 20
	// v1Unlimited is what cgroup v1 reports without a limit.
	v1Unlimited = "9223372036854771712"
)

const mountinfoV2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"

const mountinfoHybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestApply(t *testing.T) {
	tests := []struct {
		name       string
		env        string
		files      map[string]string // relative to the fake root
		wantLimit  int64             // soft limit returned and set
		wantSource string
		wantLog    string
	}{
		{
			name:       "GOMEMLIMIT wins",
			env:        "64MiB",
			files:      map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "104857600\n"},
			wantLimit:  12345, // what the fake runtime reports
			wantSource: SourceEnv,
			wantLog:    "memory limit from GOMEMLIMIT",
		},
		{
			name: "v2 container with cgroup namespace",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"proc/self/mountinfo":      mountinfoV2,
				"sys/fs/cgroup/memory.max": "104857600\n",
			},
			wantLimit:  100 * mi / 10 * 9,
			wantSource: "/sys/fs/cgroup/memory.max",
			wantLog:    "memory limit set from cgroup",
		},
		{
			name: "v2 without mountinfo uses the default mount",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"sys/fs/cgroup/memory.max": "52428800",
			},
			wantLimit:  50 * mi / 10 * 9,
			wantSource: "/sys/fs/cgroup/memory.max",
		},
		{
			name: "v2 max is no limit",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"proc/self/mountinfo":      mountinfoV2,
				"sys/fs/cgroup/memory.max": "max\n",
			},
			wantSource: SourceNone,
			wantLog:    "no cgroup memory limit",
		},
		{
			name: "v2 nested: smallest ancestor limit wins",
			files: map[string]string{
				"proc/self/cgroup":                           "0::/kubepods/pod1/ctr\n",
				"proc/self/mountinfo":                        mountinfoV2,
				"sys/fs/cgroup/kubepods/memory.max":          "1073741824",
				"sys/fs/cgroup/kubepods/pod1/memory.max":     "209715200",
				"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max",
			},
			wantLimit:  200 * mi / 10 * 9,
			wantSource: "/sys/fs/cgroup/kubepods/pod1/memory.max",
		},
		{
			name: "v2 nested: own limit smaller than parent's",
			files: map[string]string{
				"proc/self/cgroup":                           "0::/kubepods/pod1/ctr\n",
				"proc/self/mountinfo":                        mountinfoV2,
				"sys/fs/cgroup/kubepods/pod1/memory.max":     "209715200",
				"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "31457280",
			},
			wantLimit:  30 * mi / 10 * 9,
			wantSource: "/sys/fs/cgroup/kubepods/pod1/ctr/memory.max",
		},
		{
			name: "hybrid host: v2 has no memory controller, v1 answers",
			files: map[string]string{
				"proc/self/cgroup":                                           "4:memory:/process_api/abc\n1:cpu:/\n0::/\n",
				"proc/self/mountinfo":                                        mountinfoHybrid,
				"sys/fs/cgroup/unified/memory.pressure":                      "",
				"sys/fs/cgroup/memory/memory.limit_in_bytes":                 v1Unlimited,
				"sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "268435456\n",
			},
			wantLimit:  256 * mi / 10 * 9,
			wantSource: "/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes",
		},
		{
			name: "v1 unlimited",
			files: map[string]string{
				"proc/self/cgroup":                                      "9:memory,hugetlb:/docker/abc\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes":            v1Unlimited,
				"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": v1Unlimited,
			},
			wantSource: SourceNone,
		},
		{
			name: "v1 mount of a sub-tree (docker without cgroupns)",
			files: map[string]string{
				"proc/self/cgroup":                           "4:memory:/docker/abc\n",
				"proc/self/mountinfo":                        "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes": "33554432",
			},
			wantLimit:  32 * mi / 10 * 9,
			wantSource: "/sys/fs/cgroup/memory/memory.limit_in_bytes",
		},
		{
			name: "mount point with an escaped space",
			files: map[string]string{
				"proc/self/cgroup":                 "0::/\n",
				"proc/self/mountinfo":              `29 23 0:26 / /cg\040root rw - cgroup2 cgroup2 rw` + "\n",
				"cg root/memory.max":               "10485760",
				"sys/fs/cgroup/memory.max":         "999999999",
				"sys/fs/cgroup/ignored/memory.max": "1",
			},
			wantLimit:  10 * mi / 10 * 9,
			wantSource: "/cg root/memory.max",
		},
		{
			name:       "no /proc at all",
			files:      map[string]string{},
			wantSource: SourceNone,
		},
		{
			name:       "no limit file anywhere",
			files:      map[string]string{"proc/self/cgroup": "0::/\n"},
			wantSource: SourceNone,
		},
		{
			name: "garbage limit",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"sys/fs/cgroup/memory.max": "lots\n",
			},
			wantSource: SourceNone,
			wantLog:    `limit \"lots\": not a number`,
		},
		{
			name:       "garbage /proc/self/cgroup",
			files:      map[string]string{"proc/self/cgroup": "nonsense\n"},
			wantSource: SourceNone,
			wantLog:    "want id:controllers:path",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			var set []int64
			sys := system{
				root:   root,
				getenv: func(k string) string { return map[string]string{"GOMEMLIMIT": tt.env}[k] },
				set: func(n int64) int64 {
					set = append(set, n)
					return 12345
				},
			}
			limit, source := apply(slog.New(slog.NewJSONHandler(&logs, nil)), sys)
			if limit != tt.wantLimit || source != tt.wantSource {
				t.Fatalf("apply = %d, %q; want %d, %q\nlogs: %s", limit, source, tt.wantLimit, tt.wantSource, logs.String())
			}
			switch {
			case tt.env != "":
				if len(set) != 1 || set[0] != -1 {
					t.Fatalf("with GOMEMLIMIT set, SetMemoryLimit calls = %v, want only a read (-1)", set)
				}
			case tt.wantLimit > 0:
				if len(set) != 1 || set[0] != tt.wantLimit {
					t.Fatalf("SetMemoryLimit calls = %v, want [%d]", set, tt.wantLimit)
				}
			default:
				if len(set) != 0 {
					t.Fatalf("SetMemoryLimit called %v without a limit", set)
				}
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Fatalf("logs lack %q:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}

// TestApplyReal runs against this machine's real files; whatever it finds,
// it must not panic and must leave a consistent runtime limit.
func TestApplyReal(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	limit, source := Apply(slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
	t.Logf("limit %d from %q", limit, source)
	switch {
	case source == SourceNone:
		if limit != 0 || debug.SetMemoryLimit(-1) != prev {
			t.Fatalf("no limit found but limit %d returned or runtime limit changed", limit)
		}
	case source == SourceEnv:
	default:
		if limit <= 0 || limit == math.MaxInt64 || debug.SetMemoryLimit(-1) != limit {
			t.Fatalf("limit %d from %s not in effect", limit, source)
		}
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "bytes", in: "1048576\n", want: 1 << 20},
		{name: "max", in: "max\n", want: 0},
		{name: "v1 unlimited", in: v1Unlimited, want: 0},
		{name: "zero", in: "0", want: 0},
		{name: "negative", in: "-1", wantErr: true},
		{name: "overflow", in: "99999999999999999999999", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLimit([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseLimit(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("0::/\n4:memory:/a\n"), []byte(mountinfoHybrid), []byte("max"))
	f.Add([]byte("x"), []byte(`1 2 3 /a\04 /b\0 - cgroup2`), []byte("12"))
	// A cgroup v1 line cut after its source: no super options to read.
	f.Add([]byte("x"), []byte("1 2 3 / /sys/fs/cgroup/memory rw - cgroup cgroup"), []byte("1"))
	f.Fuzz(func(t *testing.T, cgroup, mountinfo, limit []byte) {
		_, _, _ = parseCgroup(cgroup)
		ms := parseMountinfo(mountinfo)
		if ms.hasV2 && ms.v2.point == "" && !bytes.Contains(mountinfo, []byte("cgroup2")) {
			t.Fatalf("v2 mount found in %q", mountinfo)
		}
		if n, err := parseLimit(limit); err == nil && n < 0 {
			t.Fatalf("negative limit %d", n)
		}
	})
}
