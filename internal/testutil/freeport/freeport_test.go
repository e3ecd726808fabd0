package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrIsFreshAndBindable(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		a := Addr(t)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
	l, err := net.Listen("tcp", Addr(t))
	if err != nil {
		t.Fatalf("a fresh address cannot be bound: %v", err)
	}
	l.Close()
}

func TestAddrAvoidsEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	for range 50 {
		_, p, _ := net.SplitHostPort(Addr(t))
		port, _ := strconv.Atoi(p)
		if port < rangeLow || port > rangeHigh || (low > 0 && port >= low) {
			t.Fatalf("port %d outside %d–%d or inside the ephemeral range from %d", port, rangeLow, rangeHigh, low)
		}
	}
}
