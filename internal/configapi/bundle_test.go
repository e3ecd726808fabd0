package configapi

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/source"
)

type tarEntry struct {
	name     string
	typeflag byte
	body     string
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.body))}
		if e.typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if e.typeflag == tar.TypeSymlink {
			hdr.Linkname = "/etc/passwd"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestValidateBundle(t *testing.T) {
	reg := func(name, body string) tarEntry { return tarEntry{name, tar.TypeReg, body} }
	dir := func(name string) tarEntry { return tarEntry{name, tar.TypeDir, ""} }
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"two files and a dir", makeTar(t, dir("conf.d/"), reg("app.conf", "a"), reg("conf.d/x.conf", "b")), ""},
		{"dot dir", makeTar(t, dir("./"), reg("./a", "a")), ""},
		{"empty archive", makeTar(t), "no regular files"},
		{"only dirs", makeTar(t, dir("a/")), "no regular files"},
		{"dotdot", makeTar(t, reg("../evil", "x")), "'..'"},
		{"absolute", makeTar(t, reg("/etc/passwd", "x")), "absolute"},
		{"backslash", makeTar(t, reg(`a\..\b`, "x")), "backslash"},
		{"symlink", makeTar(t, tarEntry{"l", tar.TypeSymlink, ""}), "links"},
		{"fifo", makeTar(t, tarEntry{"f", tar.TypeFifo, ""}), "not a regular file"},
		{"duplicate", makeTar(t, reg("a", "1"), reg("./a", "2")), "twice"},
		{"file and dir", makeTar(t, reg("a", "1"), reg("a/b", "2")), "both a file"},
		{"not tar", []byte(strings.Repeat("garbage!", 100)), "entry 1"},
		{"size beyond archive", makeTar(t, reg("a", strings.Repeat("x", 2000)))[:1024], "do not fit"},
		{"truncated", makeTar(t, reg("a", strings.Repeat("x", 2000)))[:2000], "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateBundle(tc.data)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("validateBundle: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("validateBundle = %v, want %q", err, tc.wantErr)
			}
		})
	}
	t.Run("too many entries", func(t *testing.T) {
		var es []tarEntry
		for i := 0; i <= maxBundleFiles; i++ {
			es = append(es, reg(strings.Repeat("f", 1+i%50)+"/"+string(rune('a'+i%26))+"x"+strings.Repeat("y", i/26), ""))
		}
		if err := validateBundle(makeTar(t, es...)); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Fatalf("validateBundle = %v", err)
		}
	})
}

func FuzzValidateBundle(f *testing.F) {
	f.Add(makeTar(f, tarEntry{"a", tar.TypeReg, "x"}))
	f.Add(makeTar(f, tarEntry{"../a", tar.TypeReg, "x"}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if validateBundle(data) != nil {
			return
		}
		// Accepted archives hold only safe, regular entries.
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			hdr, err := tr.Next()
			if err != nil {
				return
			}
			if hdr.Typeflag == tar.TypeReg {
				if _, err := bundleName(hdr.Name); err != nil {
					t.Fatalf("accepted unsafe name %q", hdr.Name)
				}
			}
		}
	})
}

// TestSyncSourceInterop drives the sync role's real HTTP source (package
// source) against this server: get, long-poll watch, a tar bundle, status
// report.
func TestSyncSourceInterop(t *testing.T) {
	dir := t.TempDir()
	tokens := writeFile(t, dir, "tokens.yaml", tokensYAML())
	ts := startServer(t, func(c *Config) { c.Tokens = tokens })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := NewClient(ts.url, adminTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Push(ctx, "app", []byte(`{"v":1}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	src, err := source.Open(ts.url+"/v1/configs/app", source.Options{Token: readTok, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c, err := src.Get(ctx)
	if err != nil || c.Version != "1" || string(c.Data) != `{"v":1}` {
		t.Fatalf("source Get = %+v, %v", c, err)
	}
	got := make(chan source.Config, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := src.Watch(ctx, "1")
		if err != nil {
			errc <- err
			return
		}
		got <- c
	}()
	waitWatchers(t, ts, 1)
	if _, err := admin.Push(ctx, "app", []byte(`{"v":2}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.Version != "2" || string(c.Data) != `{"v":2}` {
			t.Fatalf("source Watch = %+v", c)
		}
	case err := <-errc:
		t.Fatalf("source Watch: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("source Watch not woken")
	}
	rep, ok := src.(source.Reporter)
	if !ok {
		t.Fatal("HTTP source is not a Reporter")
	}
	if err := rep.Report(ctx, source.Status{Sidecar: "pod-1", Version: "2", Outcome: "applied", Time: time.Now()}); err != nil {
		t.Fatalf("Report: %v", err)
	}
	st, err := admin.Status(ctx, "app")
	if err != nil || len(st.Sidecars) != 1 || st.Sidecars[0].Version != 2 || st.Sidecars[0].Outcome != "applied" {
		t.Fatalf("status after report = %+v, %v", st, err)
	}

	bundle := makeTar(t, tarEntry{"app.conf", tar.TypeReg, "a=1\n"}, tarEntry{"conf.d/", tar.TypeDir, ""}, tarEntry{"conf.d/b.conf", tar.TypeReg, "b=2\n"})
	v, err := admin.Push(ctx, "bundle", bundle, "application/x-tar", nil)
	if err != nil || v.ContentType != "application/x-tar" {
		t.Fatalf("push bundle: %+v %v", v, err)
	}
	bsrc, err := source.Open(ts.url+"/v1/configs/bundle", source.Options{Token: readTok, Bundle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bsrc.Close()
	bc, err := bsrc.Get(ctx)
	if err != nil || string(bc.Files["app.conf"]) != "a=1\n" || string(bc.Files["conf.d/b.conf"]) != "b=2\n" {
		t.Fatalf("bundle via source = %+v, %v", bc, err)
	}
	if _, err := admin.Push(ctx, "bundle", makeTar(t, tarEntry{"../x", tar.TypeReg, "x"}), "application/x-tar", nil); !IsStatus(err, 422) {
		t.Fatalf("unsafe bundle push: %v, want 422", err)
	}
}
