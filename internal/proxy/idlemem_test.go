package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/proxy/h1fast"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

// Environment of the child process that holds the idle connections.
const (
	idleChildAddr = "OUTRIGGER_TEST_IDLE_CHILD_ADDR"
	idleChildN    = "OUTRIGGER_TEST_IDLE_CHILD_N"
)

// BenchmarkIdleConnMemory reports what one idle keep-alive HTTP/1.1 TLS
// connection costs the proxy after one request: Go heap (live objects after
// a GC) and goroutine stacks, per connection. A child process (this test
// binary, TestIdleConnChild) holds the connections so that the client's
// own memory is not counted. ns/op is not meaningful; the metrics are:
//
//	heap-B/conn   live heap objects per connection (crypto/tls, net/http, h1guard)
//	stack-B/conn  goroutine stack bytes per connection
//	total-B/conn  both
//
// Run: go test -run '^$' -bench IdleConnMemory -benchtime 3x ./internal/proxy
//
// What the bytes are: IDLE_HEAP_PROFILE=/tmp/heap.out go test -run '^$'
// -bench IdleConnMemory -benchtime 1x -memprofilerate 1 -o /tmp/proxy.test
// ./internal/proxy, then go tool pprof -sample_index=inuse_space -top
// /tmp/proxy.test /tmp/heap.out (a heap profile taken when it measures).
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 500
	e := newEnv(b, nil)
	e.waitReady()
	var heap, stack float64
	iters := 0
	for b.Loop() {
		h, s := measureIdleConns(b, e, n)
		heap += h
		stack += s
		iters++
	}
	b.ReportMetric(heap/float64(iters), "heap-B/conn")
	b.ReportMetric(stack/float64(iters), "stack-B/conn")
	b.ReportMetric((heap+stack)/float64(iters), "total-B/conn")
}

// measureIdleConns opens n idle connections from a child process and
// returns the proxy's heap and stack growth per connection.
func measureIdleConns(b *testing.B, e *env, n int) (heapPerConn, stackPerConn float64) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	poll.Until(b, 10*time.Second, "no open connections", func() bool { return e.p.open.Load() == 0 })
	heap0, stack0 := heapAndStacks()

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleConnChild$", "-test.v")
	cmd.Env = append(os.Environ(), idleChildAddr+"="+e.addr(), idleChildN+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // the child exits, closing its connections
		_ = cmd.Wait()
	}()
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); line == "ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, out)
				return
			} else if strings.HasPrefix(line, "error: ") {
				ready <- fmt.Errorf("child: %s", line)
				return
			}
		}
		ready <- fmt.Errorf("child exited before it was ready: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		b.Fatal("child did not open its connections within 60s")
	}
	poll.Until(b, 10*time.Second, "all connections open", func() bool { return e.p.open.Load() == int64(n) })
	// Idle means idle for longer than --http1-fast connections take to
	// park (h1fast.Server.ParkAfter).
	time.Sleep(3 * h1fast.DefaultParkAfter)
	heap1, stack1 := heapAndStacks()
	if f := os.Getenv("IDLE_HEAP_PROFILE"); f != "" {
		fh, err := os.Create(f)
		if err == nil {
			err = pprof.WriteHeapProfile(fh)
			_ = fh.Close()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	// Signed: stacks of goroutines that exited (the handshakes') can leave
	// less stack memory than before.
	return float64(int64(heap1)-int64(heap0)) / float64(n), float64(int64(stack1)-int64(stack0)) / float64(n)
}

// heapAndStacks returns live heap object bytes and goroutine stack bytes
// after two GCs (the second frees what the first's finalizers released and
// shrinks stacks again).
func heapAndStacks() (heap, stacks uint64) {
	runtime.GC()
	runtime.GC()
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// TestIdleConnChild is the child process of BenchmarkIdleConnMemory; it
// does nothing in a normal test run. It opens N HTTP/1.1 TLS connections
// to the proxy, sends one GET on each and reads the response, prints
// "ready", and holds them until stdin is closed.
func TestIdleConnChild(t *testing.T) {
	addr := os.Getenv(idleChildAddr)
	if addr == "" {
		t.Skip("child process of BenchmarkIdleConnMemory")
	}
	n, err := strconv.Atoi(os.Getenv(idleChildN))
	if err != nil || n < 1 {
		fmt.Printf("error: %s=%q\n", idleChildN, os.Getenv(idleChildN))
		return
	}
	// The server is the parent's throwaway test certificate; what is
	// measured is the server's memory, not the client's trust.
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	conns := make([]*tls.Conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := tls.Dial("tcp", addr, tc)
			if err != nil {
				errs <- err
				return
			}
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(c, "GET /idle HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
				errs <- err
				return
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil {
				errs <- err
				return
			}
			_ = c.SetDeadline(time.Time{})
			conns[i] = c
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fmt.Printf("error: %v\n", err)
		return
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
}
