package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Upstream schemes accepted by [ParseUpstream].
const (
	SchemeHTTP = "http" // HTTP/1.1 over TCP
	SchemeH2C  = "h2c"  // HTTP/2 with prior knowledge over plain TCP
	SchemeUnix = "unix" // HTTP/1.1 over a unix domain socket
)

// Upstream is the parsed address of the application the proxy forwards to.
type Upstream struct {
	// Scheme is one of "http", "h2c" or "unix".
	Scheme string
	// Addr is host:port for http and h2c, or the absolute socket path for unix.
	Addr string
	// Raw is the string the upstream was parsed from, for logs.
	Raw string
}

// String returns the upstream as given, for logs.
func (u Upstream) String() string { return u.Raw }

// ParseUpstream parses the --upstream flag value. Accepted forms:
//
//	http://127.0.0.1:8080    http://[::1]:8080    http://localhost  (port defaults to 80)
//	h2c://127.0.0.1:8080
//	unix:/run/app.sock       unix:///run/app.sock
//
// Paths, queries, fragments and user info are rejected: the proxy forwards the
// client's path unchanged and has no use for them. Errors name the flag.
func ParseUpstream(s string) (Upstream, error) {
	u, err := parseUpstream(s)
	if err != nil {
		return Upstream{}, fmt.Errorf("--upstream %q: %w", s, err)
	}
	return u, nil
}

func parseUpstream(s string) (Upstream, error) {
	if s == "" {
		return Upstream{}, errors.New("must not be empty")
	}
	if strings.TrimSpace(s) != s {
		return Upstream{}, errors.New("must not contain leading or trailing spaces")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x7f {
			return Upstream{}, fmt.Errorf("contains control or space character at byte %d", i)
		}
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Upstream{}, errors.New("missing scheme: want http://HOST:PORT, h2c://HOST:PORT or unix:/PATH")
	}
	switch strings.ToLower(scheme) {
	case SchemeUnix:
		return parseUnix(s, rest)
	case SchemeHTTP, SchemeH2C:
		u, err := parseHostPort(rest)
		if err != nil {
			return Upstream{}, err
		}
		u.Scheme = strings.ToLower(scheme)
		u.Raw = s
		return u, nil
	default:
		return Upstream{}, errors.New("scheme must be http, h2c or unix")
	}
}

func parseUnix(raw, rest string) (Upstream, error) {
	path := rest
	if strings.HasPrefix(rest, "//") {
		// unix:///run/app.sock: an empty authority, then the absolute path.
		path = rest[2:]
		if !strings.HasPrefix(path, "/") {
			return Upstream{}, errors.New("unix socket URL must have an empty host: unix:///PATH")
		}
	}
	if !strings.HasPrefix(path, "/") {
		return Upstream{}, errors.New("unix socket path must be absolute: unix:/PATH")
	}
	if strings.ContainsAny(path, "?#") {
		return Upstream{}, errors.New("unix socket path must not contain a query or fragment")
	}
	if len(path) > 107 {
		// sun_path is 108 bytes on Linux including the terminating NUL.
		return Upstream{}, fmt.Errorf("unix socket path is %d bytes, longer than the 107 the kernel accepts", len(path))
	}
	return Upstream{Scheme: SchemeUnix, Addr: path, Raw: raw}, nil
}

func parseHostPort(rest string) (Upstream, error) {
	if !strings.HasPrefix(rest, "//") {
		return Upstream{}, errors.New("want SCHEME://HOST:PORT")
	}
	hostport := rest[2:]
	if i := strings.IndexAny(hostport, "/?#"); i >= 0 {
		if tail := hostport[i:]; tail != "/" {
			return Upstream{}, fmt.Errorf("must not have a path, query or fragment (got %q): the client's path is forwarded as is", tail)
		}
		hostport = hostport[:i]
	}
	if strings.Contains(hostport, "@") {
		return Upstream{}, errors.New("must not contain user info")
	}
	if hostport == "" {
		return Upstream{}, errors.New("missing host")
	}
	host, port := hostport, "80"
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	} else if strings.Contains(hostport, ":") {
		return Upstream{}, fmt.Errorf("bad host:port %q (IPv6 addresses need brackets: [::1]:8080)", hostport)
	}
	if host == "" {
		return Upstream{}, errors.New("missing host")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '+' {
		return Upstream{}, fmt.Errorf("port %q must be a number from 1 to 65535", port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return Upstream{}, errors.New("IPv6 zones are not supported")
		}
		host = a.String()
	} else if !validHostname(host) {
		return Upstream{}, fmt.Errorf("host %q is neither an IP address nor a valid host name", host)
	}
	return Upstream{Addr: net.JoinHostPort(host, strconv.FormatUint(n, 10))}, nil
}

// validHostname reports whether h is a plausible DNS name: letters, digits,
// '-', '_' and '.' only, labels of 1..63 bytes, 253 bytes in all.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// IsLoopback reports whether traffic to u stays inside the host (pod): unix
// sockets, 127.0.0.0/8, ::1 (also IPv4-mapped) and the name "localhost" count.
// Other host names (also *.localhost, which not every resolver keeps local) are
// not resolved and do not count.
func (u Upstream) IsLoopback() bool {
	if u.Scheme == SchemeUnix {
		return true
	}
	host, _, err := net.SplitHostPort(u.Addr)
	if err != nil {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback()
	}
	return strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}
