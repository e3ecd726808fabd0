package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/etcdtest"
)

// forwarder is a TCP proxy on 127.0.0.1 between the source and etcd that
// can cut every connection and refuse new ones, then accept again on the
// same address.
type forwarder struct {
	t      *testing.T
	addr   string
	target string
	tls    *tls.Config // terminate TLS (etcds:// tests) when set
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startForwarder(t *testing.T, target string, tlsCfg *tls.Config) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{t: t, addr: ln.Addr().String(), target: target, tls: tlsCfg, conns: map[net.Conn]struct{}{}}
	f.serve(ln)
	t.Cleanup(func() {
		f.cut()
		f.wg.Wait()
	})
	return f
}

func (f *forwarder) serve(ln net.Listener) {
	if f.tls != nil {
		ln = tls.NewListener(ln, f.tls)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns[c], f.conns[up] = struct{}{}, struct{}{}
			f.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer f.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			f.wg.Add(2)
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
}

// cut closes the listener (new connections are refused) and every
// forwarded connection.
func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}

// restore listens again on the same address.
func (f *forwarder) restore() {
	f.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("re-listen on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

type etcdEnv struct {
	cli *clientv3.Client
	fwd *forwarder
}

func startEtcd(t *testing.T) *etcdEnv {
	t.Helper()
	eps := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	target := strings.TrimPrefix(eps[0], "http://")
	return &etcdEnv{cli: cli, fwd: startForwarder(t, target, nil)}
}

func (e *etcdEnv) put(t *testing.T, key, val string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := e.cli.Put(ctx, key, val)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(resp.Header.Revision, 10)
}

func (e *etcdEnv) del(t *testing.T, key string, opts ...clientv3.OpOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := e.cli.Delete(ctx, key, opts...); err != nil {
		t.Fatal(err)
	}
}

func (e *etcdEnv) open(t *testing.T, path string, bundle bool) *etcdSource {
	t.Helper()
	src, err := Open("etcd://"+e.fwd.addr+"/"+path, Options{Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	es := src.(*etcdSource)
	es.progress = 200 * time.Millisecond
	es.timeout = 3 * time.Second
	t.Cleanup(func() { es.Close() })
	return es
}

func TestEtcdGetAndWatch(t *testing.T) {
	e := startEtcd(t)
	src := e.open(t, "app", false)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := src.Get(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	r1 := e.put(t, "app", "one")
	e.put(t, "other", "noise")
	cfg := mustGet(t, src)
	if cfg.Version != r1 || string(cfg.Data) != "one" {
		t.Fatalf("Get = %+v, want version %s", cfg, r1)
	}
	ch := watchAsync(ctx, src, r1)
	assertPending(t, ch)
	e.put(t, "other", "more noise")
	r2 := e.put(t, "app", "two")
	r := waitResult(t, ch)
	if r.err != nil || r.cfg.Version != r2 || string(r.cfg.Data) != "two" {
		t.Fatalf("Watch = %+v, %v; want version %s", r.cfg, r.err, r2)
	}
	// A version from the future (etcd restored from an older backup) does
	// not make Watch wait for revisions to catch up.
	if cfg, err := src.Watch(ctx, "1000000"); err != nil || cfg.Version != r2 {
		t.Fatalf("Watch(1000000) = %+v, %v; want %s", cfg, err, r2)
	}
	// A watch from an old version returns the next one, in order.
	if cfg, err := src.Watch(ctx, "0"); err != nil || cfg.Version != r1 {
		t.Fatalf("Watch(0) = %+v, %v; want %s", cfg, err, r1)
	}
	if cfg, err := src.Watch(ctx, ""); err != nil || cfg.Version != r2 {
		t.Fatalf("Watch(\"\") = %+v, %v; want %s", cfg, err, r2)
	}
	// An empty value is never a config.
	e.put(t, "app", "")
	if _, err := src.Watch(ctx, r2); err == nil || !strings.Contains(err.Error(), "empty value") {
		t.Fatalf("Watch of an empty value: %v", err)
	}
	// Reported once: the next Watch waits past it for a real value.
	ch = watchAsync(ctx, src, r2)
	assertPending(t, ch)
	r4 := e.put(t, "app", "four")
	if r := waitResult(t, ch); r.err != nil || r.cfg.Version != r4 {
		t.Fatalf("Watch after an empty value = %+v, %v; want %s", r.cfg, r.err, r4)
	}
}

func TestEtcdDeleteThenRecreate(t *testing.T) {
	e := startEtcd(t)
	src := e.open(t, "app", false)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r1 := e.put(t, "app", "one")
	ch := watchAsync(ctx, src, r1)
	e.del(t, "app")
	r := waitResult(t, ch)
	if !errors.Is(r.err, ErrDeleted) || !strings.Contains(r.err.Error(), "deleted") {
		t.Fatalf("Watch after delete: %v, want ErrDeleted", r.err)
	}
	ch = watchAsync(ctx, src, r1)
	assertPending(t, ch)
	r3 := e.put(t, "app", "back")
	r = waitResult(t, ch)
	if r.err != nil || r.cfg.Version != r3 || string(r.cfg.Data) != "back" {
		t.Fatalf("Watch after recreate = %+v, %v; want %s", r.cfg, r.err, r3)
	}
}

func TestEtcdCompactionFallback(t *testing.T) {
	e := startEtcd(t)
	src := e.open(t, "app", false)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r1 := e.put(t, "app", "one")
	e.put(t, "app", "two")
	r3 := e.put(t, "app", "three")
	if _, err := e.cli.Compact(ctx, mustInt(t, r3)); err != nil {
		t.Fatal(err)
	}
	cfg, err := src.Watch(ctx, r1)
	if err != nil || cfg.Version != r3 || string(cfg.Data) != "three" {
		t.Fatalf("Watch from a compacted revision = %+v, %v; want %s", cfg, err, r3)
	}
	// Compacted but unchanged: keep waiting, then see the next put.
	noise := e.put(t, "other", "x")
	if _, err := e.cli.Compact(ctx, mustInt(t, noise)); err != nil {
		t.Fatal(err)
	}
	src.resume = etcdResume{}
	ch := watchAsync(ctx, src, r3)
	assertPending(t, ch)
	r5 := e.put(t, "app", "five")
	if r := waitResult(t, ch); r.err != nil || r.cfg.Version != r5 {
		t.Fatalf("Watch after compaction = %+v, %v; want %s", r.cfg, r.err, r5)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEtcdConnectionCutAndRestored runs a sync-like loop (Watch, and on
// error retry with the same version) while the connection is cut: puts
// made during the cut are all seen afterwards, in order, none replayed.
func TestEtcdConnectionCutAndRestored(t *testing.T) {
	e := startEtcd(t)
	src := e.open(t, "app", false)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r1 := e.put(t, "app", "v1")
	got := make(chan Config, 16)
	errs := make(chan error, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		after := r1
		for ctx.Err() == nil {
			cfg, err := src.Watch(ctx, after)
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				time.Sleep(50 * time.Millisecond) // the sync role's backoff
				continue
			}
			got <- cfg
			after = cfg.Version
		}
	}()
	recv := func(wantVer, wantData string) {
		t.Helper()
		select {
		case cfg := <-got:
			if cfg.Version != wantVer || string(cfg.Data) != wantData {
				t.Fatalf("got version %s %q, want %s %q", cfg.Version, cfg.Data, wantVer, wantData)
			}
		case <-time.After(testTimeout):
			t.Fatalf("version %s %q not seen", wantVer, wantData)
		}
	}
	recv(e.put(t, "app", "a"), "a")

	e.fwd.cut()
	rb := e.put(t, "app", "b")
	rc := e.put(t, "app", "c")
	// Stay cut for a second and until the source reported the cut (the
	// watch must not hang silently).
	cutUntil := time.Now().Add(time.Second)
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "no answer from etcd") {
			t.Fatalf("error during the cut: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the cut was never reported as an error")
	}
	time.Sleep(time.Until(cutUntil))
	e.fwd.restore()
	recv(rb, "b")
	recv(rc, "c")
	recv(e.put(t, "app", "d"), "d")
	select {
	case cfg := <-got:
		t.Fatalf("replayed or unexpected version %s %q", cfg.Version, cfg.Data)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	<-done
	close(errs)
	for err := range errs {
		if errors.Is(err, ErrDeleted) {
			t.Fatalf("unexpected error during the cut: %v", err)
		}
	}
}

func TestEtcdUnreachableIsAnError(t *testing.T) {
	e := startEtcd(t)
	src := e.open(t, "app", false)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r1 := e.put(t, "app", "v1")
	ch := watchAsync(ctx, src, r1)
	assertPending(t, ch)
	e.fwd.cut() // and never restored
	r := waitResult(t, ch)
	if r.err == nil || ctx.Err() != nil || !strings.Contains(r.err.Error(), "no answer from etcd") {
		t.Fatalf("Watch with etcd gone: %+v, %v (ctx %v)", r.cfg, r.err, ctx.Err())
	}
}

func TestEtcdWatchCancel(t *testing.T) {
	e := startEtcd(t)
	src := e.open(t, "app", false)
	r1 := e.put(t, "app", "v1")
	ctx, cancel := context.WithCancel(context.Background())
	ch := watchAsync(ctx, src, r1)
	assertPending(t, ch)
	cancel()
	if r := waitResult(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Watch after cancel: %v", r.err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestEtcdBundlePrefix(t *testing.T) {
	e := startEtcd(t)
	src := e.open(t, "app", true)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := src.Get(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an empty prefix: %v", err)
	}
	e.put(t, "app/main.conf", "main")
	e.put(t, "app/conf.d/a.ini", "[a]")
	e.put(t, "app2/not-mine", "x") // shares the string prefix, not the directory
	v1 := mustGet(t, src)
	if len(v1.Files) != 2 || string(v1.Files["main.conf"]) != "main" || string(v1.Files["conf.d/a.ini"]) != "[a]" || v1.Data != nil {
		t.Fatalf("bundle Get = %v", v1.Files)
	}
	if v1.Version != bundleVersion(v1.Files) {
		t.Fatalf("bundle version %s is not the content hash", v1.Version)
	}

	steps := []struct {
		name    string
		change  func()
		want    map[string]string // nil = not a new version
		deleted bool
	}{
		{"delete one key", func() { e.del(t, "app/conf.d/a.ini") }, map[string]string{"main.conf": "main"}, false},
		{"identical put", func() { e.put(t, "app/main.conf", "main") }, nil, false},
		{"unrelated key", func() { e.put(t, "app2/not-mine", "y") }, nil, false},
		{"add key", func() { e.put(t, "app/b", "bee") }, map[string]string{"main.conf": "main", "b": "bee"}, false},
		{"delete all", func() { e.del(t, "app/", clientv3.WithPrefix()) }, nil, true},
		{"come back", func() { e.put(t, "app/main.conf", "new") }, map[string]string{"main.conf": "new"}, false},
	}
	after := v1.Version
	for _, st := range steps {
		ch := watchAsync(ctx, src, after)
		st.change()
		switch {
		case st.deleted:
			r := waitResult(t, ch)
			if !errors.Is(r.err, ErrDeleted) {
				t.Fatalf("%s: Watch = %v, want ErrDeleted", st.name, r.err)
			}
			// The next Watch waits for the keys to come back.
			assertPending(t, watchAsync(ctx, src, after))
		case st.want == nil:
			assertPending(t, ch)
			// The pending Watch sees the next step's change; keep it simple
			// by cancelling it through a fresh context below.
			continue
		default:
			r := waitResult(t, ch)
			if r.err != nil {
				t.Fatalf("%s: Watch: %v", st.name, r.err)
			}
			if len(r.cfg.Files) != len(st.want) {
				t.Fatalf("%s: Files = %v, want %v", st.name, r.cfg.Files, st.want)
			}
			for k, v := range st.want {
				if string(r.cfg.Files[k]) != v {
					t.Fatalf("%s: Files = %v, want %v", st.name, r.cfg.Files, st.want)
				}
			}
			after = r.cfg.Version
		}
	}
}

func TestEtcdBundleHostileKeys(t *testing.T) {
	e := startEtcd(t)
	src := e.open(t, "app", true)
	e.put(t, "app/../../etc/passwd", "x")
	if _, err := src.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "'..'") {
		t.Fatalf("Get with a traversal key: %v", err)
	}
}

// TestEtcdTLS reaches etcd over etcds:// with the CA file and a client
// certificate, through a TLS-terminating forwarder that requires one.
func TestEtcdTLS(t *testing.T) {
	e := startEtcd(t)
	ca := newTestCA(t)
	scert, skey := ca.issue(t, "etcd", true)
	pair, err := tls.X509KeyPair(scert, skey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	fwd := startForwarder(t, strings.TrimPrefix(e.fwd.target, "http://"), &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"h2"}, // gRPC insists on ALPN h2
	})
	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writeFile(t, caFile, string(ca.PEM))
	c, k := ca.issue(t, "sidecar", false)
	writeFile(t, certFile, string(c))
	writeFile(t, keyFile, string(k))
	rev := e.put(t, "app", "over tls")

	src, err := Open("etcds://"+fwd.addr+"/app", Options{CAFile: caFile, ClientCert: certFile, ClientKey: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := mustGet(t, src)
	if cfg.Version != rev || string(cfg.Data) != "over tls" {
		t.Fatalf("Get over TLS = %+v, want version %s", cfg, rev)
	}
	// Without the CA the server is not trusted: an error, not a hang.
	untrusting, err := Open("etcds://"+fwd.addr+"/app", Options{ClientCert: certFile, ClientKey: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close()
	untrusting.(*etcdSource).timeout = time.Second
	if _, err := untrusting.Get(context.Background()); err == nil {
		t.Fatal("Get without the CA succeeded")
	}
}
