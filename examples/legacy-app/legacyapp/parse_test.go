package legacyapp

import (
	"net"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.1.2.3:0", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{":8080", false},
		{"10.0.0.1:80", false},
		{"[::ffff:127.0.0.1]:80", true},
		{"127.0.0.1", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if err := checkLoopback(tt.addr); (err == nil) != tt.ok {
				t.Fatalf("checkLoopback(%q) = %v, want ok=%v", tt.addr, err, tt.ok)
			}
		})
	}
}

func FuzzCheckLoopback(f *testing.F) {
	for _, s := range []string{"127.0.0.1:1", "[::1]:2", "localhost:3", "0.0.0.0:4", "[fe80::1%lo]:5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if checkLoopback(addr) != nil {
			return
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("accepted %q that does not split: %v", addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("accepted non-loopback %q", addr)
		}
	})
}

func FuzzParams(f *testing.F) {
	for _, s := range []string{"d=1s&n=3&size=10", "d=-1h", "n=99999999999999999999", "size=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = query
		if d, err := durationParam(r, "d", time.Second, time.Minute); err == nil && (d < 0 || d > time.Minute) {
			t.Fatalf("duration %v out of bounds", d)
		}
		if n, err := intParam(r, "n", 5, 100); err == nil && (n < 0 || n > 100) {
			t.Fatalf("int %d out of bounds", n)
		}
	})
}
