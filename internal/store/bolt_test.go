package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/outrigger-sidecar/outrigger/internal/store"
	"github.com/outrigger-sidecar/outrigger/internal/store/storetest"
)

// helperEnv selects a helper mode when the test binary re-executes itself.
const (
	helperEnv    = "OUTRIGGER_STORE_TEST_HELPER"
	helperDirEnv = "OUTRIGGER_STORE_TEST_DIR"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "pusher":
		os.Exit(runPusher(os.Getenv(helperDirEnv)))
	case "holder":
		os.Exit(runHolder(os.Getenv(helperDirEnv)))
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// payload is the content of push number i; sizes vary so that commits touch
// different numbers of pages.
func payload(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("<push n=\"%d\"/>\n", i)), 1+(i%40)*90)
}

// runPusher writes versions forever, printing "version i" after each
// acknowledged Put, until it is killed.
func runPusher(dir string) int {
	s, err := store.OpenBolt(dir, store.BoltOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	for i := 1; ; i++ {
		v, _, err := s.Put(ctx, "crash", payload(i), store.PutOptions{ContentType: "application/xml"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// os.Stdout is unbuffered: once this line is out, the parent may
		// count the version as acknowledged.
		fmt.Printf("%d %d\n", v.Version, i)
	}
}

// runHolder keeps the database open until stdin closes.
func runHolder(dir string) int {
	s, err := store.OpenBolt(dir, store.BoltOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func helperCmd(t *testing.T, mode, dir string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("test executable: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	return cmd
}

func openBolt(t *testing.T, dir string) *store.Bolt {
	t.Helper()
	s, err := store.OpenBolt(dir, store.BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt(%q): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestBoltContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openBolt(t, t.TempDir()) })
}

func TestBoltReopen(t *testing.T) {
	dir := t.TempDir()
	storetest.RunReopen(t, openBolt(t, dir), func(t *testing.T) store.Store { return openBolt(t, dir) })
}

func TestBoltFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s := openBolt(t, dir)
	if s.Path() != filepath.Join(dir, store.BoltFile) {
		t.Fatalf("Path = %q", s.Path())
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, s.Path(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat %s: %v", path, err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

func TestBoltOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "regular-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, store.BoltFile), bytes.Repeat([]byte("not a bolt file "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		dir  string
	}{
		{"empty dir", ""},
		{"dir is a regular file", file},
		{"garbage database file", garbage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.OpenBolt(tc.dir, store.BoltOptions{LockTimeout: 100 * time.Millisecond})
			if err == nil {
				_ = s.Close()
				t.Fatalf("OpenBolt(%q) succeeded", tc.dir)
			}
			if !strings.Contains(err.Error(), "--data") {
				t.Errorf("error %q does not name --data", err)
			}
		})
	}
}

func TestBoltLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := helperCmd(t, "holder", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start holder: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}

	s, err := store.OpenBolt(dir, store.BoltOptions{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		_ = s.Close()
		t.Fatalf("OpenBolt succeeded while another process holds the lock")
	}
	if !errors.Is(err, bolterrors.ErrTimeout) || !strings.Contains(err.Error(), "--data") || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("error = %q, want a lock timeout naming --data", err)
	}

	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder exit: %v", err)
	}
	openBolt(t, dir) // the lock is released with the process
}

// TestBoltCrashSafety kills a writer process with SIGKILL mid-stream and
// checks that every version it acknowledged is present with its content.
func TestBoltCrashSafety(t *testing.T) {
	dir := t.TempDir()
	cmd := helperCmd(t, "pusher", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pusher: %v", err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	acked := map[int64]int{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			t.Fatalf("pusher printed %q", sc.Text())
		}
		v, err1 := strconv.ParseInt(f[0], 10, 64)
		i, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("pusher printed %q", sc.Text())
		}
		acked[v] = i
		if len(acked) == 25 && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill -9 pusher: %v", err)
			}
			killed = true
		}
	}
	// Lines printed before the kill are still in the pipe and count.
	err = cmd.Wait()
	if !killed {
		t.Fatalf("pusher exited on its own after %d versions: %v", len(acked), err)
	}
	if len(acked) < 25 {
		t.Fatalf("only %d versions acknowledged", len(acked))
	}

	s := openBolt(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), storetest.Timeout)
	defer cancel()
	for v, i := range acked {
		got, err := s.Get(ctx, "crash", v)
		if err != nil {
			t.Fatalf("acknowledged version %d lost: %v", v, err)
		}
		if !bytes.Equal(got.Data, payload(i)) {
			t.Fatalf("acknowledged version %d has wrong content (%d bytes)", v, len(got.Data))
		}
	}
	h, err := s.History(ctx, "crash")
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	for idx, v := range h {
		// An unacknowledged last version may exist (committed, then killed
		// before printing) but must be complete.
		got, err := s.Get(ctx, "crash", v.Version)
		if v.Version != int64(idx+1) || err != nil || !bytes.Equal(got.Data, payload(int(v.Version))) {
			t.Fatalf("history entry %d (version %d) damaged: %v", idx, v.Version, err)
		}
	}
	if len(h) > len(acked)+1 {
		t.Fatalf("%d versions stored, only %d acknowledged", len(h), len(acked))
	}
	if v, _, err := s.Put(ctx, "crash", []byte("after"), store.PutOptions{}); err != nil || v.Version != int64(len(h)+1) {
		t.Fatalf("Put after crash = %d, %v; want %d", v.Version, err, len(h)+1)
	}
}

func TestBoltCloseEndsChanges(t *testing.T) {
	s, err := store.OpenBolt(t.TempDir(), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Changes(context.Background())
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatalf("got a change after Close")
		}
	case <-time.After(storetest.Timeout):
		t.Fatalf("Changes channel not closed by Close")
	}
	if _, err := s.Changes(context.Background()); err == nil {
		t.Fatalf("Changes after Close succeeded")
	}
	if _, _, err := s.Put(context.Background(), "app", []byte("x"), store.PutOptions{}); err == nil {
		t.Fatalf("Put after Close succeeded")
	}
}

// TestBoltCorruptRecords edits the file behind the store's back and checks
// that damage surfaces as errors naming the record, never as a panic or a
// silently wrong version.
func TestBoltCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	s := openBolt(t, dir)
	ctx := context.Background()
	for _, n := range []string{"app", "other"} {
		if _, _, err := s.Put(ctx, n, []byte("x"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetStatus(ctx, "app", store.SidecarStatus{Sidecar: "p1", Outcome: "applied"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, store.BoltFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		app := tx.Bucket([]byte("configs")).Bucket([]byte("app"))
		if err := app.Put([]byte("latest"), []byte("{not json")); err != nil {
			return err
		}
		other := tx.Bucket([]byte("configs")).Bucket([]byte("other"))
		if err := other.Bucket([]byte("meta")).Put([]byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte(`{"version":0}`)); err != nil {
			return err
		}
		return tx.Bucket([]byte("status")).Bucket([]byte("app")).Put([]byte("p1"), []byte("[]"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = openBolt(t, dir)
	checks := []struct {
		name string
		call func() error
		want string
	}{
		{"get latest", func() error { _, err := s.Get(ctx, "app", 0); return err }, "configs/app/latest"},
		{"put over corrupt latest", func() error { _, _, err := s.Put(ctx, "app", []byte("y"), store.PutOptions{}); return err }, "configs/app/latest"},
		{"list", func() error { _, err := s.List(ctx); return err }, "configs/app/latest"},
		{"implausible version record", func() error { _, err := s.Get(ctx, "other", 1); return err }, "implausible"},
		{"history", func() error { _, err := s.History(ctx, "other"); return err }, "configs/other/meta"},
		{"status", func() error { _, err := s.Statuses(ctx, "app"); return err }, "status/app/p1"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
