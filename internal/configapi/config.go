package configapi

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// Defaults of the server's flags.
const (
	DefaultListen       = "127.0.0.1:7700"
	DefaultData         = "./outrigger-data"
	DefaultEtcdPrefix   = store.DefaultEtcdPrefix
	DefaultMaxSize      = 1 << 20
	DefaultMaxWait      = 300 * time.Second
	DefaultDrainTimeout = 10 * time.Second
)

// Config configures `outrigger config serve`. Flags bind into it with
// RegisterFlags; the lead's cli package layers OUTRIGGER_* env vars and YAML
// on top of the same FlagSet.
type Config struct {
	// Listen is the API's host:port (--listen). A non-loopback address
	// requires Tokens.
	Listen string
	// Data is the directory of the embedded bbolt store (--data). Ignored
	// when Etcd is set.
	Data string
	// Etcd is a comma separated list of etcd endpoints (--etcd); when set,
	// configs live in etcd and several servers can share them.
	Etcd string
	// EtcdPrefix is the key prefix in etcd (--etcd-prefix).
	EtcdPrefix string
	// EtcdCA, EtcdCert and EtcdKey configure TLS to etcd (--etcd-ca,
	// --etcd-cert, --etcd-key).
	EtcdCA, EtcdCert, EtcdKey string
	// Tokens is the YAML tokens file (--tokens); empty = no authentication.
	Tokens string
	// Cert and Key are PEM files for HTTPS (--cert, --key); both or neither.
	Cert, Key string
	// MaxSize is the largest accepted request body in bytes (--max-size).
	MaxSize int64
	// MaxWait caps a long-poll's ?wait= (--max-wait); longer waits are
	// shortened to it.
	MaxWait time.Duration
	// DrainTimeout bounds graceful shutdown (--drain-timeout).
	DrainTimeout time.Duration
}

// DefaultConfig returns a Config with every default applied.
func DefaultConfig() Config {
	return Config{
		Listen:       DefaultListen,
		Data:         DefaultData,
		EtcdPrefix:   DefaultEtcdPrefix,
		MaxSize:      DefaultMaxSize,
		MaxWait:      DefaultMaxWait,
		DrainTimeout: DefaultDrainTimeout,
	}
}

// RegisterFlags binds every field to fs with its default.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Listen, "listen", d.Listen, "config API `host:port`; a non-loopback address requires --tokens")
	fs.StringVar(&c.Data, "data", d.Data, "`directory` of the embedded bbolt store (created if missing; ignored with --etcd)")
	fs.StringVar(&c.Etcd, "etcd", "", "comma separated etcd endpoint `URLs` (e.g. http://10.0.0.1:2379); replaces --data so several servers share configs")
	fs.StringVar(&c.EtcdPrefix, "etcd-prefix", d.EtcdPrefix, "key `prefix` for configs in etcd")
	fs.StringVar(&c.EtcdCA, "etcd-ca", "", "PEM CA `file` to verify etcd's certificate (default: system roots for https endpoints)")
	fs.StringVar(&c.EtcdCert, "etcd-cert", "", "PEM client certificate `file` for etcd (with --etcd-key)")
	fs.StringVar(&c.EtcdKey, "etcd-key", "", "PEM client key `file` for etcd (with --etcd-cert)")
	fs.StringVar(&c.Tokens, "tokens", "", "YAML tokens `file` (tokens: [{name, token|sha256, role: read|write|admin, configs: [patterns]}]); empty = no auth, loopback only; read at start, not on SIGHUP")
	fs.StringVar(&c.Cert, "cert", "", "TLS certificate PEM `file` (with --key); empty = plain HTTP")
	fs.StringVar(&c.Key, "key", "", "TLS private key PEM `file` (with --cert)")
	c.MaxSize = d.MaxSize
	fs.Var((*byteSize)(&c.MaxSize), "max-size", "largest accepted config or schema body, in bytes or with a KiB/MiB suffix (default 1MiB)")
	fs.DurationVar(&c.MaxWait, "max-wait", d.MaxWait, "cap on a watch's ?wait= `duration`; longer waits are shortened")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", d.DrainTimeout, "how long shutdown waits for in-flight requests (`duration`)")
}

// Validate checks the configuration; errors name the flag.
func (c *Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: want host:port: %w", c.Listen, err))
	} else if c.Tokens == "" && !isLoopbackHost(host) {
		errs = append(errs, fmt.Errorf("--listen %q: not a loopback address and no --tokens: the config API would accept unauthenticated pushes from the network; give --tokens FILE or listen on 127.0.0.1", c.Listen))
	}
	if c.Etcd == "" && strings.TrimSpace(c.Data) == "" {
		errs = append(errs, errors.New("--data: empty; give a directory or --etcd"))
	}
	if c.Etcd != "" {
		for _, ep := range etcdEndpoints(c.Etcd) {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("--etcd %q: endpoint %q must be http(s)://host:port", c.Etcd, ep))
			}
		}
		if len(etcdEndpoints(c.Etcd)) == 0 {
			errs = append(errs, fmt.Errorf("--etcd %q: no endpoints", c.Etcd))
		}
	}
	if (c.EtcdCert == "") != (c.EtcdKey == "") {
		errs = append(errs, fmt.Errorf("--etcd-cert %q / --etcd-key %q: give both or neither", c.EtcdCert, c.EtcdKey))
	}
	if (c.Cert == "") != (c.Key == "") {
		errs = append(errs, fmt.Errorf("--cert %q / --key %q: give both or neither", c.Cert, c.Key))
	}
	if c.MaxSize <= 0 {
		errs = append(errs, fmt.Errorf("--max-size %d: must be positive", c.MaxSize))
	}
	if c.MaxWait <= 0 {
		errs = append(errs, fmt.Errorf("--max-wait %s: must be positive", c.MaxWait))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout %s: must not be negative", c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// etcdEndpoints splits the --etcd list, dropping blanks.
func etcdEndpoints(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// isLoopbackHost reports whether a listen host only accepts local
// connections. An empty host, 0.0.0.0 and :: listen everywhere; other host
// names are not trusted to resolve to loopback (except "localhost").
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// byteSize is a flag.Value for sizes: "1048576", "512KiB", "1MiB", "1M".
type byteSize int64

// String renders the size with the largest exact binary suffix.
func (b *byteSize) String() string {
	if b == nil {
		return ""
	}
	n := int64(*b)
	switch {
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n > 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

// Set parses "1048576", "512KiB", "1MiB" or "1M".
func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("size %q: want bytes or a number with KiB, MiB or GiB", s)
	}
	return n * mult, nil
}
