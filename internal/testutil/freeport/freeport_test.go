package freeport

import (
	"net"
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
