package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

func TestSubscriptionCoalesces(t *testing.T) {
	s := newSubscription()
	stop := make(chan struct{})
	defer close(stop)
	// Published before anyone reads: must not block.
	in := []Change{{"a", 1}, {"b", 1}, {"a", 2}, {"c", 5}, {"a", 3}, {"c", 4}, {"b", 2}}
	for _, c := range in {
		s.publish(c)
	}
	go s.forward(stop)
	want := []Change{{"a", 3}, {"b", 2}, {"c", 5}} // first-arrival order, newest version
	for i, w := range want {
		select {
		case got := <-s.out:
			if got != w {
				t.Fatalf("change %d = %+v, want %+v", i, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("change %d not delivered", i)
		}
	}
	s.publish(Change{"a", 9})
	select {
	case got := <-s.out:
		if got != (Change{"a", 9}) {
			t.Fatalf("late change = %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("late change not delivered")
	}
	s.stop()
	s.stop() // idempotent
	select {
	case _, ok := <-s.out:
		if ok {
			t.Fatalf("change delivered after stop")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("out not closed after stop")
	}
}

func TestCheckName(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"plain", "app", true},
		{"dots", "app.prod-1_x", true},
		{"unicode", "ünï", true},
		{"max length", strings.Repeat("x", MaxNameLen), true},
		{"empty", "", false},
		{"slash", "a/b", false},
		{"leading slash", "/a", false},
		{"nul", "a\x00", false},
		{"too long", strings.Repeat("x", MaxNameLen+1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkName("config", tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("checkName(%.30q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"app", "", "a/b", "\x00", "a\xff", strings.Repeat("n", MaxNameLen+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := checkName("config", name)
		bad := name == "" || len(name) > MaxNameLen || strings.ContainsAny(name, "/\x00")
		if (err != nil) != bad {
			t.Fatalf("checkName(%q) = %v, bad=%v", name, err, bad)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	good, _ := json.Marshal(newVersion("app", 3, []byte("x"), PutOptions{ContentType: "text/plain", Author: "me"}, time.Unix(1, 0)))
	for _, s := range []string{string(good), "", "{", "null", `{"version":-1}`, `{"version":1,"sha256":"short"}`, `[]`, `{"version":1e400}`, `{"created":"not a time"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeMeta("k", "name", b)
		if err != nil {
			if !strings.Contains(err.Error(), `"k"`) {
				t.Fatalf("error %q does not name the key", err)
			}
			return
		}
		if v.Version < 1 || len(v.SHA256) != 64 || v.Size < 0 || v.Name != "name" || v.Data != nil {
			t.Fatalf("accepted implausible record %+v", v)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		if _, err := decodeMeta("k", "name", again); err != nil {
			t.Fatalf("re-decode of accepted record: %v", err)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	for _, s := range []string{`{"sidecar":"x","version":2,"outcome":"applied","time":"2026-01-01T00:00:00Z"}`, "", "[]", `{"time":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeStatus("k", "side", b)
		if err == nil && st.Sidecar != "side" {
			t.Fatalf("sidecar = %q, want the key's", st.Sidecar)
		}
	})
}

// FuzzBoltPutGet drives a real bbolt file with arbitrary names and content:
// valid names round-trip exactly, invalid ones are rejected, nothing panics.
func FuzzBoltPutGet(f *testing.F) {
	s, err := OpenBolt(f.TempDir(), BoltOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	f.Add("app", []byte("a=1\n"), "text/plain")
	f.Add("a\xff", []byte{}, "")
	f.Add("a/b", []byte("x"), "x")
	f.Add("latest", []byte("\x00\x01"), "application/octet-stream")
	f.Fuzz(func(t *testing.T, name string, data []byte, ct string) {
		ctx := context.Background()
		v, created, err := s.Put(ctx, name, data, PutOptions{ContentType: ct})
		if checkName("config", name) != nil || !utf8.ValidString(ct) {
			if err == nil {
				t.Fatalf("Put accepted invalid name %q or content type %q", name, ct)
			}
			return
		}
		if err != nil {
			t.Fatalf("Put(%q): %v", name, err)
		}
		got, err := s.Get(ctx, name, v.Version)
		if err != nil || !bytes.Equal(got.Data, data) || got.Name != name || got.ContentType != ct {
			t.Fatalf("Get(%q, %d) = %+v, %v; put %q (created %v)", name, v.Version, got, err, data, created)
		}
		if _, again, err := s.Put(ctx, name, data, PutOptions{ContentType: ct}); err != nil || again {
			t.Fatalf("identical re-put created=%v err=%v", again, err)
		}
	})
}

func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	zl := zapToSlog(slog.New(slog.NewJSONHandler(&buf, nil))).With(zap.String("endpoint", "127.0.0.1:2379"))
	zl.Info("chatter")
	zl.Warn("retrying", zap.Int("attempt", 2), zap.Error(errors.New("boom")))
	zl.Error("failed")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2 (info dropped):\n%s", len(lines), buf.String())
	}
	var warn map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &warn); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	want := map[string]any{"level": "WARN", "msg": "retrying", "component": "etcd-client", "endpoint": "127.0.0.1:2379", "attempt": float64(2), "error": "boom"}
	for k, v := range want {
		if warn[k] != v {
			t.Errorf("warn[%q] = %v, want %v (line %s)", k, warn[k], v, lines[0])
		}
	}
	if !strings.Contains(lines[1], `"level":"ERROR"`) {
		t.Errorf("error line = %s", lines[1])
	}
}

// TestBoltDurabilitySettings guards the promise that every acknowledged write
// is fsynced: nobody may turn on bbolt's NoSync/NoGrowSync for speed.
func TestBoltDurabilitySettings(t *testing.T) {
	b, err := OpenBolt(t.TempDir(), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	if b.db.NoSync || b.db.NoGrowSync {
		t.Fatalf("bbolt opened with NoSync=%v NoGrowSync=%v", b.db.NoSync, b.db.NoGrowSync)
	}
}
