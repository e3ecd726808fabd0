// Package freeport hands out free 127.0.0.1 TCP addresses to tests that
// start child processes, which must bind the port themselves.
//
// Ports come from 15000–28999, below Linux's ephemeral range (32768+ by
// default, checked at run time): a port taken from the ephemeral range and
// released can be grabbed at once as the source port of some outgoing
// connection — load tests open thousands — and the child then fails with
// "address already in use". The range also avoids the benchmark harness's
// ports (29000+) and Outrigger's defaults. An address is never handed out
// twice in one test binary. The package does not reserve the port: another
// program may still take it before the child binds.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const (
	rangeLow  = 15000
	rangeHigh = 28999
)

var (
	mu        sync.Mutex
	handedOut = map[int]bool{}
)

// Addr returns a "127.0.0.1:N" address that was free a moment ago.
func Addr(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	high := rangeHigh
	if low := ephemeralLow(); low > rangeLow && low-1 < high {
		high = low - 1
	}
	for range 1000 {
		port := rangeLow + rand.IntN(high-rangeLow+1)
		if handedOut[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		l.Close()
		handedOut[port] = true
		return addr
	}
	t.Fatal("freeport: no free loopback port in range after 1000 tries")
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (0 if unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var low, high int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &low, &high); err != nil {
		return 0
	}
	return low
}
