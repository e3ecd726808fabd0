package source

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Errors the sources return (wrapped with %w and the source's name).
var (
	// ErrNotFound: the config, etcd key or file does not exist (yet).
	ErrNotFound = errors.New("not found")
	// ErrDeleted: a watched config was deleted. The caller keeps the last
	// good config; the next Watch waits for it to come back.
	ErrDeleted = errors.New("deleted")
	// ErrTooLarge: a config or bundle exceeds the limits below.
	ErrTooLarge = errors.New("too large")
)

// Limits that bound everything a source reads, so a hostile or broken
// source cannot exhaust the sidecar's memory.
const (
	// MaxBundleFiles is the most files a bundle (tar, directory, etcd prefix) may hold.
	MaxBundleFiles = 1000
	// MaxBytes is the most content bytes one config or one bundle may hold.
	MaxBytes = 64 << 20
)

// DefaultWait is the long-poll wait per config API request when Options.Wait is 0.
const DefaultWait = 60 * time.Second

// maxWait is the config API's own cap on ?wait.
const maxWait = 300 * time.Second

// Options configure Open. The zero value is usable for file and plain
// http/etcd sources.
type Options struct {
	// Token is the bearer token for the config API.
	Token string
	// TokenFile holds the bearer token; it is re-read on every request so a
	// rotated token (a re-mounted Secret) is picked up without a restart.
	TokenFile string
	// CAFile holds PEM roots for https:// and etcds:// sources (default: the
	// system roots).
	CAFile string
	// ClientCert and ClientKey are an optional PEM client certificate for
	// mTLS to the config API or etcd. Both or neither. They are re-read on
	// every TLS handshake, so rotation needs no restart.
	ClientCert, ClientKey string
	// Wait is the long-poll wait per config API request (default 60s, the
	// server caps it at 300s).
	Wait time.Duration
	// Bundle treats the source as several files (a directory, a tar from the
	// config API, an etcd key prefix): Config.Files instead of Config.Data.
	Bundle bool
	// Logger receives diagnostics (default: discard).
	Logger *slog.Logger
	// HTTPClient overrides the client for http(s) sources (tests). Its
	// transport timeouts are then the caller's business; each request still
	// carries a deadline of Wait+30s.
	HTTPClient *http.Client
}

// Open returns the Source rawURL names:
//
//	http://host[:port]/v1/configs/NAME      the Outrigger config API (long-poll)
//	https://host[:port]/v1/configs/NAME     the same over TLS
//	etcd://host:port[,host:port]/KEY        an etcd key (etcds:// for TLS)
//	file:///path                             a file (or a directory with Bundle)
//
// Open validates everything it can without touching the network: it never
// dials; connections are made lazily by Get and Watch. Errors name --source.
func Open(rawURL string, opts Options) (Source, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Wait < 0 {
		return nil, fmt.Errorf("--source %q: wait %v must not be negative", redactURL(rawURL), opts.Wait)
	}
	if opts.Wait == 0 {
		opts.Wait = DefaultWait
	}
	if opts.Wait > maxWait {
		opts.Wait = maxWait
	}
	if opts.Token != "" && opts.TokenFile != "" {
		return nil, errors.New("--token and --token-file are mutually exclusive")
	}
	if (opts.ClientCert == "") != (opts.ClientKey == "") {
		return nil, errors.New("--client-cert and --client-key must be given together")
	}
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("--source %q: not a URL: want http(s)://HOST/v1/configs/NAME, etcd://HOST:PORT/KEY or file:///PATH", redactURL(rawURL))
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		return openHTTP(rawURL, opts)
	case "etcd", "etcds":
		return openEtcd(rawURL, opts)
	case "file":
		return openFile(rawURL, opts)
	default:
		return nil, fmt.Errorf("--source %q: scheme %q must be http, https, etcd, etcds or file", redactURL(rawURL), scheme)
	}
}

// validName reports whether s is 1 to max bytes of [A-Za-z0-9._-] not
// starting with '.'. It is a loop rather than the equivalent regexp
// `^[A-Za-z0-9_-][A-Za-z0-9._-]{0,max-1}$` because a compiled bounded
// repetition is a program of max steps: built at package init, the two below
// cost every role (the proxy included) 5,000 allocations and 340 KB.
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validConfigName is the config API's name rule (docs/api.md).
func validConfigName(s string) bool { return validName(s, 128) }

// validSidecarName bounds the sidecar identity used in status report paths.
func validSidecarName(s string) bool { return validName(s, 253) }

// parsedHTTP is a validated config API source URL.
type parsedHTTP struct {
	base  *url.URL // scheme://host/prefix/v1/configs/NAME, no userinfo/query
	name  string
	token string // from userinfo, when present
}

func parseHTTPURL(rawURL string) (parsedHTTP, error) {
	red := redactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		return parsedHTTP{}, fmt.Errorf("--source %q: %w", red, stripURLErr(err))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Host == "" || u.Hostname() == "" {
		return parsedHTTP{}, fmt.Errorf("--source %q: missing host", red)
	}
	if err := checkPort(u.Port()); err != nil {
		return parsedHTTP{}, fmt.Errorf("--source %q: %w", red, err)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return parsedHTTP{}, fmt.Errorf("--source %q: query parameters are not supported (the source adds ?wait itself)", red)
	}
	if u.Fragment != "" {
		return parsedHTTP{}, fmt.Errorf("--source %q: fragment is not supported", red)
	}
	p := u.EscapedPath()
	i := strings.LastIndex(p, "/v1/configs/")
	if i < 0 {
		return parsedHTTP{}, fmt.Errorf("--source %q: path must end in /v1/configs/NAME", red)
	}
	name := p[i+len("/v1/configs/"):]
	if name == "" {
		return parsedHTTP{}, fmt.Errorf("--source %q: missing config name after /v1/configs/", red)
	}
	if !validConfigName(name) {
		return parsedHTTP{}, fmt.Errorf("--source %q: config name %q must be 1-128 of [A-Za-z0-9._-], not starting with '.'", red, name)
	}
	var token string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			token = pw
		} else {
			token = u.User.Username()
		}
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return parsedHTTP{base: base, name: name, token: token}, nil
}

// etcdTarget is a validated etcd source URL.
type etcdTarget struct {
	tls       bool
	endpoints []string // scheme://host:port
	key       string
	user      string
	password  string
}

// parseEtcdURL parses etcd://[user:pass@]host[:port][,host[:port]]/KEY.
// The key is the path after the first slash, percent-decoded: etcd://h/app
// is key "app", etcd://h//app/config is key "/app/config". A missing port
// is 2379.
func parseEtcdURL(rawURL string) (etcdTarget, error) {
	red := redactURL(rawURL)
	scheme, rest, _ := strings.Cut(rawURL, "://")
	t := etcdTarget{tls: strings.EqualFold(scheme, "etcds")}
	if strings.ContainsAny(rest, "?#") {
		return t, fmt.Errorf("--source %q: query and fragment are not supported", red)
	}
	authority, rawKey, ok := strings.Cut(rest, "/")
	if !ok || rawKey == "" {
		return t, fmt.Errorf("--source %q: missing key: want etcd://HOST:PORT/KEY", red)
	}
	key, err := url.PathUnescape(rawKey)
	if err != nil {
		return t, fmt.Errorf("--source %q: key: %w", red, stripURLErr(err))
	}
	if strings.ContainsRune(key, 0) {
		return t, fmt.Errorf("--source %q: key contains NUL", red)
	}
	t.key = key
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		ui := authority[:at]
		authority = authority[at+1:]
		user, pass, _ := strings.Cut(ui, ":")
		if t.user, err = url.PathUnescape(user); err != nil {
			return t, fmt.Errorf("--source %q: user: %w", red, stripURLErr(err))
		}
		if t.password, err = url.PathUnescape(pass); err != nil {
			return t, fmt.Errorf("--source %q: password: %w", red, stripURLErr(err))
		}
		if t.user == "" {
			return t, fmt.Errorf("--source %q: empty user name before '@'", red)
		}
	}
	if authority == "" {
		return t, fmt.Errorf("--source %q: missing host", red)
	}
	ep := "http://"
	if t.tls {
		ep = "https://"
	}
	for _, hp := range strings.Split(authority, ",") {
		host, port, err := splitHostPortDefault(hp, "2379")
		if err != nil {
			return t, fmt.Errorf("--source %q: host %q: %w", red, hp, err)
		}
		t.endpoints = append(t.endpoints, ep+net.JoinHostPort(host, port))
	}
	return t, nil
}

// splitHostPortDefault splits "host[:port]" / "[v6][:port]" and checks both.
func splitHostPortDefault(hp, defPort string) (host, port string, err error) {
	if hp == "" {
		return "", "", errors.New("empty host")
	}
	host, port = hp, defPort
	if strings.HasPrefix(hp, "[") || strings.Count(hp, ":") == 1 {
		if h, p, e := net.SplitHostPort(hp); e == nil {
			host, port = h, p
		} else if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
			host = hp[1 : len(hp)-1]
		} else {
			return "", "", fmt.Errorf("want HOST:PORT: %w", e)
		}
	} else if strings.Contains(hp, ":") {
		return "", "", errors.New("IPv6 addresses need brackets: [::1]:2379")
	}
	if host == "" {
		return "", "", errors.New("empty host")
	}
	if strings.Contains(host, ":") {
		if net.ParseIP(host) == nil {
			return "", "", errors.New("not a valid IPv6 address")
		}
	} else if !validHostname(host) {
		return "", "", errors.New("not a valid host name or IPv4 address")
	}
	if err := checkPort(port); err != nil {
		return "", "", err
	}
	return host, port, nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func checkPort(p string) error {
	if p == "" {
		return nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q must be 1-65535", p)
	}
	return nil
}

// parseFileURL returns the absolute, cleaned path of file:///PATH
// (file://localhost/PATH is accepted too).
func parseFileURL(rawURL string) (string, error) {
	red := redactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("--source %q: %w", red, stripURLErr(err))
	}
	if u.Host != "" && !strings.EqualFold(u.Host, "localhost") {
		return "", fmt.Errorf("--source %q: file URLs name a local path: file:///PATH (three slashes), not host %q", red, u.Host)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("--source %q: file URLs take no user, query or fragment", red)
	}
	if u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("--source %q: path must be absolute: file:///PATH", red)
	}
	if strings.ContainsRune(u.Path, 0) {
		return "", fmt.Errorf("--source %q: path contains NUL", red)
	}
	p := path.Clean(u.Path)
	if p == "/" {
		return "", fmt.Errorf("--source %q: path must name a file or directory below /", red)
	}
	return p, nil
}

// redactURL removes userinfo and the query from rawURL for messages. It
// works on strings that do not parse, too.
func redactURL(rawURL string) string {
	s := rawURL
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, p, hasPath := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		authority = authority[at+1:]
	}
	if hasPath {
		return scheme + "://" + authority + "/" + p
	}
	return scheme + "://" + authority
}

// stripURLErr drops url.Error's Op and URL (which would repeat the raw URL,
// userinfo included) and keeps the reason.
func stripURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
