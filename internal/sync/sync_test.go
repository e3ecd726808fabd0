package sync

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// setup makes a source file and a dest file holding initial, and starts the
// legacy app on dest.
func setup(t *testing.T, initial []byte) (src, dest string, a *app) {
	t.Helper()
	dir := t.TempDir()
	src = filepath.Join(dir, "source", "app.json")
	if err := os.Mkdir(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	dest = filepath.Join(dir, "shared", "app.json")
	if err := os.Mkdir(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}
	writeSource(t, src, initial)
	if err := os.WriteFile(dest, initial, 0o644); err != nil {
		t.Fatal(err)
	}
	return src, dest, startApp(t, dest)
}

func TestNewVersionReachesApp(t *testing.T) {
	src, dest, a := setup(t, appJSON("v1", true))
	cfg := baseConfig(t, src, dest)
	cfg.PidFile = a.pidFile
	cfg.Health = a.url + "/healthz"
	cfg.Rollback = true
	h := startSyncer(t, cfg, Deps{})

	// The baseline equals the source: nothing is written, the app not reloaded.
	eventually(t, "baseline adopted", func() bool { return h.status().Version != "" })
	if err := h.s.Ready(); err != nil {
		t.Fatalf("Ready with a valid baseline: %v", err)
	}
	if n := a.reloads(t); n != 0 {
		t.Errorf("identical baseline caused %d reloads", n)
	}
	if _, err := os.Stat(dest + ".1"); err == nil {
		t.Error("identical baseline was rewritten (a backup exists)")
	}

	writeSource(t, src, appJSON("v2", true))
	eventually(t, "app greets v2", func() bool { return a.greeting(t) == "v2" })
	eventually(t, "applied recorded", func() bool { return h.outcomes(OutcomeApplied) == 1 })
	if got := readFile(t, dest); !bytes.Equal(got, appJSON("v2", true)) {
		t.Errorf("dest = %s", got)
	}
	if got := readFile(t, dest+".1"); !bytes.Equal(got, appJSON("v1", true)) {
		t.Errorf("backup = %s", got)
	}
	st := h.status()
	if st.LastOutcome != OutcomeApplied || st.Reloads != 1 || st.Baseline {
		t.Errorf("status %+v", st)
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
		t.Errorf("dest mode %o", fi.Mode().Perm())
	}
	if n := gatherCount(h.reg, "outrigger_sync_applied_version_info"); n != 1 {
		t.Errorf("%d version info series", n)
	}
	if v := metricValue(h.s.m.lastSuccess); v <= 0 {
		t.Errorf("last success metric = %v", v)
	}
}

func TestInvalidVersionsNeverReachFile(t *testing.T) {
	tests := []struct {
		name    string
		check   string
		content []byte
		want    string // in the recorded error
		recover bool   // a later good version passes the same check
	}{
		{"invalid JSON", "", []byte(`{"greeting": "broken`), "json", true},
		{"wrong JSON type", "", []byte(`["not", "an", "object"`), "json", true},
		{"check fails", `grep -q '"approved"' {}`, appJSON("not approved", true), "exit status 1", true},
		{"check cannot run", "/nonexistent/validator {}", appJSON("v2", true), "not found", false},
		{"check times out", "sleep 30", appJSON("v2", true), "timed out", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dest, a := setup(t, appJSON("v1", true))
			cfg := baseConfig(t, src, dest)
			cfg.PidFile = a.pidFile
			cfg.Check = tc.check
			cfg.CheckTimeout = 300 * time.Millisecond
			h := startSyncer(t, cfg, Deps{})
			eventually(t, "baseline adopted", func() bool { return h.status().Version != "" })

			writeSource(t, src, tc.content)
			eventually(t, "rejected", func() bool { return h.outcomes(OutcomeRejected) == 1 })
			st := h.status()
			if !strings.Contains(st.LastError, tc.want) || st.LastOutcome != OutcomeRejected {
				t.Errorf("status error %q outcome %q, want error containing %q", st.LastError, st.LastOutcome, tc.want)
			}
			if got := readFile(t, dest); !bytes.Equal(got, appJSON("v1", true)) {
				t.Errorf("dest changed to %q", got)
			}
			if n := a.reloads(t); n != 0 {
				t.Errorf("app reloaded %d times", n)
			}
			assertNoCandidates(t, filepath.Dir(dest))
			// A rejected version is not retried by a resync...
			h.s.Resync()
			time.Sleep(100 * time.Millisecond)
			if n := h.outcomes(OutcomeRejected); n != 1 {
				t.Errorf("rejected version retried: %d rejections", n)
			}
			if !tc.recover {
				return
			}
			// ...but a newer, good one goes through.
			good := appJSON("v3", true)
			good = append(good[:len(good)-1], []byte(`,"approved":true}`)...)
			writeSource(t, src, good)
			eventually(t, "app greets v3", func() bool { return a.greeting(t) == "v3" })
			if err := h.s.Ready(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestEmptyContentRejected(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.json")
	if err := os.WriteFile(dest, appJSON("v1", true), 0o644); err != nil {
		t.Fatal(err)
	}
	src := newChanSource()
	cfg := baseConfig(t, "unused", dest)
	cfg.Source = "chan://test"
	h := startSyncer(t, cfg, Deps{Source: src})
	src.set(nil)
	eventually(t, "rejected", func() bool { return h.outcomes(OutcomeRejected) == 1 })
	if st := h.status(); !strings.Contains(st.LastError, "empty config rejected") {
		t.Errorf("last error %q", st.LastError)
	}
	if got := readFile(t, dest); !bytes.Equal(got, appJSON("v1", true)) {
		t.Errorf("dest = %q", got)
	}
}

func TestCheckSeesCandidate(t *testing.T) {
	src, dest, _ := setup(t, appJSON("v1", true))
	cfg := baseConfig(t, src, dest)
	seen := filepath.Join(t.TempDir(), "seen")
	// The candidate is a complete file beside dest with dest's extension.
	cfg.Check = `case {} in *.json) ;; *) exit 9;; esac; test "$(dirname {})" = ` + shellQuote(filepath.Dir(dest)) +
		` && grep -q v2 {} && test "$OUTRIGGER_CANDIDATE" = {} && cp {} ` + shellQuote(seen)
	h := startSyncer(t, cfg, Deps{})
	writeSource(t, src, appJSON("v2", true))
	eventually(t, "applied", func() bool { return h.outcomes(OutcomeApplied) == 1 })
	if got := readFile(t, seen); !bytes.Equal(got, appJSON("v2", true)) {
		t.Errorf("check saw %q", got)
	}
	assertNoCandidates(t, filepath.Dir(dest))
}

func TestUnhealthyVersionRolledBack(t *testing.T) {
	src, dest, a := setup(t, appJSON("v1", true))
	cfg := baseConfig(t, src, dest)
	cfg.PidFile = a.pidFile
	cfg.Health = a.url + "/healthz"
	cfg.HealthTimeout = 500 * time.Millisecond
	cfg.Rollback = true
	h := startSyncer(t, cfg, Deps{})
	eventually(t, "baseline adopted", func() bool { return h.status().Version != "" })
	baseline := h.status().Version

	writeSource(t, src, appJSON("bad", false))
	eventually(t, "rolled back", func() bool { return h.outcomes(OutcomeRolledBack) == 1 })
	if g := a.greeting(t); g != "v1" {
		t.Errorf("app greets %q after rollback, want v1", g)
	}
	if code, _ := a.get(t, "/healthz"); code != 200 {
		t.Errorf("app health %d after rollback", code)
	}
	if got := readFile(t, dest); !bytes.Equal(got, appJSON("v1", true)) {
		t.Errorf("dest after rollback = %q", got)
	}
	st := h.status()
	if st.Version != baseline || st.LastOutcome != OutcomeRolledBack || !strings.Contains(st.LastError, "503") {
		t.Errorf("status %+v", st)
	}
	if n := a.reloads(t); n != 2 {
		t.Errorf("%d reloads, want 2 (new version, then the rollback)", n)
	}
	// Never retried: a resync sees the same bad version and does nothing.
	h.s.Resync()
	time.Sleep(150 * time.Millisecond)
	if n := a.reloads(t); n != 2 {
		t.Errorf("rolled-back version retried: %d reloads", n)
	}
	// A newer version is applied normally.
	writeSource(t, src, appJSON("v3", true))
	eventually(t, "app greets v3", func() bool { return a.greeting(t) == "v3" })
}

func TestHealthFailureWithoutRollbackKeepsVersion(t *testing.T) {
	src, dest, a := setup(t, appJSON("v1", true))
	cfg := baseConfig(t, src, dest)
	cfg.PidFile = a.pidFile
	cfg.Health = a.url + "/healthz"
	cfg.HealthTimeout = 300 * time.Millisecond
	h := startSyncer(t, cfg, Deps{})
	writeSource(t, src, appJSON("bad", false))
	eventually(t, "failed", func() bool { return h.outcomes(OutcomeFailed) == 1 })
	if got := readFile(t, dest); !bytes.Equal(got, appJSON("bad", false)) {
		t.Errorf("dest = %q", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := h.outcomes(OutcomeFailed); n != 1 {
		t.Errorf("failed version re-applied: %d failures", n)
	}
}

func TestReloadFailureRollsBack(t *testing.T) {
	src, dest, _ := setup(t, appJSON("v1", true))
	cfg := baseConfig(t, src, dest)
	cfg.ReloadCmd = "echo app refused >&2; exit 1"
	cfg.ReloadRetries = 1
	cfg.Rollback = true
	h := startSyncer(t, cfg, Deps{})
	writeSource(t, src, appJSON("v2", true))
	eventually(t, "rolled back", func() bool { return h.outcomes(OutcomeRolledBack) == 1 })
	if got := readFile(t, dest); !bytes.Equal(got, appJSON("v1", true)) {
		t.Errorf("dest = %q", got)
	}
	if st := h.status(); !strings.Contains(st.LastError, "app refused") || !strings.Contains(st.LastError, "after 2 attempts") {
		t.Errorf("last error %q", st.LastError)
	}
}

func assertNoCandidates(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".candidate-") || strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestOnceAndDryRun(t *testing.T) {
	tests := []struct {
		name     string
		once     bool
		content  []byte
		wantErr  string
		wantDest []byte // nil = dest must not exist
	}{
		{"once applies", true, appJSON("v1", true), "", appJSON("v1", true)},
		{"once rejects invalid", true, []byte("{"), "json", nil},
		{"dry run valid writes nothing", false, appJSON("v1", true), "", nil},
		{"dry run invalid", false, []byte("{"), "json", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dest := filepath.Join(dir, "src.json"), filepath.Join(dir, "dest.json")
			writeSource(t, src, tc.content)
			cfg := baseConfig(t, src, dest)
			cfg.Once, cfg.DryRun = tc.once, !tc.once
			s, err := New(cfg, Deps{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = s.Run(ctx)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run = %v, want error containing %q", err, tc.wantErr)
			}
			got, rerr := os.ReadFile(dest)
			if tc.wantDest == nil && rerr == nil {
				t.Errorf("dest written: %q", got)
			}
			if tc.wantDest != nil && !bytes.Equal(got, tc.wantDest) {
				t.Errorf("dest = %q, %v", got, rerr)
			}
		})
	}
	t.Run("once with missing source fails", func(t *testing.T) {
		dir := t.TempDir()
		cfg := baseConfig(t, filepath.Join(dir, "missing.json"), filepath.Join(dir, "dest.json"))
		cfg.Once = true
		s, err := New(cfg, Deps{Source: failingSource{}})
		if err != nil {
			t.Fatal(err)
		}
		s.retryMin = time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("Run = %v", err)
		}
	})
}

type failingSource struct{}

func (failingSource) Get(context.Context) (configT, error) {
	return configT{}, errUnreachable
}
func (failingSource) Watch(ctx context.Context, _ string) (configT, error) {
	return configT{}, errUnreachable
}
func (failingSource) String() string { return "failing://" }
