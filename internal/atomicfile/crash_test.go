package atomicfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects the helper mode of the re-executed test binary:
// "write:PATH" or "dir:LINK" writes versions in an endless loop until killed.
const helperEnv = "ATOMICFILE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperLoop(mode))
	}
	os.Exit(m.Run())
}

func helperLoop(mode string) int {
	kind, target := mode[:4], mode[5:]
	start, _ := strconv.Atoi(os.Getenv(helperEnv + "_START"))
	for v := start; ; v++ {
		var err error
		if kind == "dir:" || kind == "dir" {
			err = WriteDir(target, bundle(v), Options{Keep: 1, UID: -1, GID: -1})
		} else {
			err = Write(target, content(v), Options{Keep: 1, UID: -1, GID: -1})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
}

// TestCrashSafety re-executes the test binary as a writer that loops forever,
// kills it with SIGKILL at a random moment, and checks that the destination
// holds exactly one complete version and that writing still works afterwards.
func TestCrashSafety(t *testing.T) {
	tests := []struct {
		name string
		kind string
	}{
		{"single file", "writ"},
		{"bundle directory", "dir:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "app.conf")
			last := 0
			for round := range 3 {
				start := last + 1
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(),
					helperEnv+"="+tc.kind+":"+target,
					helperEnv+"_START="+strconv.Itoa(start))
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// Let it write a while (progress observed, not timed), then kill.
				deadline := time.Now().Add(20 * time.Second)
				for {
					v, err := readVersion(target, tc.kind)
					if err == nil && v >= start+20+round*7 {
						break
					}
					if time.Now().After(deadline) {
						_ = cmd.Process.Kill()
						_ = cmd.Wait()
						t.Fatalf("helper made no progress: %v", err)
					}
					time.Sleep(time.Millisecond)
				}
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				_ = cmd.Wait()
				v, err := readVersion(target, tc.kind)
				if err != nil {
					t.Fatalf("round %d: after kill -9: %v", round, err)
				}
				if v < start {
					t.Fatalf("round %d: version %d older than this round's start %d", round, v, start)
				}
				last = v
			}
			// A fresh writer recovers from whatever the killed one left.
			var err error
			if tc.kind == "dir:" {
				err = WriteDir(target, bundle(last+1), Options{UID: -1, GID: -1})
			} else {
				err = Write(target, content(last+1), Options{UID: -1, GID: -1})
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, err := readVersion(target, tc.kind); err != nil || v != last+1 {
				t.Fatalf("after recovery: v%d, %v", v, err)
			}
		})
	}
}

func readVersion(target, kind string) (int, error) {
	if kind != "dir:" {
		b, err := os.ReadFile(target)
		if err != nil {
			return 0, err
		}
		return checkContent(b)
	}
	resolved, err := filepath.EvalSymlinks(target)
	if err != nil {
		return 0, err
	}
	a, err := os.ReadFile(filepath.Join(resolved, "a.conf"))
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(resolved, "b.conf"))
	if err != nil {
		return 0, err
	}
	va, err := checkContent(a)
	if err != nil {
		return 0, err
	}
	vb, err := checkContent(b)
	if err != nil {
		return 0, err
	}
	if va != vb {
		return 0, fmt.Errorf("mixed bundle v%d/v%d", va, vb)
	}
	return va, nil
}
