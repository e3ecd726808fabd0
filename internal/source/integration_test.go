package source_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/configapi"
	"github.com/outrigger-sidecar/outrigger/internal/source"
	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// TestConfigAPIIntegration runs the source against the real config API
// over a real bbolt store: get, long-poll watch, status report.
func TestConfigAPIIntegration(t *testing.T) {
	st, err := store.OpenBolt(t.TempDir(), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, stop, err := configapi.NewHandler(st, configapi.Config{}, configapi.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		stop()
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pushAs := func(name, contentType, body string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/v1/configs/"+name, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("push: %s: %s", resp.Status, b)
		}
	}
	push := func(body string) { t.Helper(); pushAs("app", "application/json", body) }

	src, err := source.Open(srv.URL+"/v1/configs/app", source.Options{Wait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Get(ctx); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Get before any push: %v", err)
	}
	push(`{"v":1}`)
	cfg, err := src.Get(ctx)
	if err != nil || cfg.Version != "1" || string(cfg.Data) != `{"v":1}` || !strings.HasPrefix(cfg.ContentType, "application/json") {
		t.Fatalf("Get = %+v, %v", cfg, err)
	}
	type result struct {
		cfg source.Config
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := src.Watch(ctx, "1")
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		t.Fatalf("Watch returned before a push: %+v, %v", r.cfg, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	push(`{"v":2}`)
	select {
	case r := <-ch:
		if r.err != nil || r.cfg.Version != "2" || string(r.cfg.Data) != `{"v":2}` {
			t.Fatalf("Watch = %+v, %v", r.cfg, r.err)
		}
	case <-ctx.Done():
		t.Fatal("Watch did not see the push")
	}

	rep, ok := src.(source.Reporter)
	if !ok {
		t.Fatal("the http source is not a Reporter")
	}
	if err := rep.Report(ctx, source.Status{Sidecar: "web-0", Version: "2", Outcome: "applied"}); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(srv.URL + "/v1/configs/app/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var status struct {
		Sidecars []struct {
			Sidecar string `json:"sidecar"`
			Version int64  `json:"version"`
			Outcome string `json:"outcome"`
		} `json:"sidecars"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(status.Sidecars); got != "[{web-0 2 applied}]" {
		t.Fatalf("status = %s", got)
	}

	// A tar bundle pushed to the API arrives unpacked.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"app.conf", "main"}, {"conf.d/x.ini", "[x]"}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	pushAs("bundle", "application/x-tar", buf.String())
	bsrc, err := source.Open(srv.URL+"/v1/configs/bundle", source.Options{Bundle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bsrc.Close()
	bcfg, err := bsrc.Watch(ctx, "")
	if err != nil || len(bcfg.Files) != 2 || string(bcfg.Files["app.conf"]) != "main" || string(bcfg.Files["conf.d/x.ini"]) != "[x]" {
		t.Fatalf("bundle Watch = %+v, %v", bcfg, err)
	}
}
