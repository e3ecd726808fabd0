package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// headerSlack is how much longer than the long-poll wait the client waits
// for response headers before it declares the server dead. Without it a
// server that vanished without a FIN leaves the watch hanging forever.
const headerSlack = 15 * time.Second

// requestSlack bounds a whole request (headers and body) beyond the wait.
const requestSlack = 30 * time.Second

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// httpSource reads one config from the Outrigger config API.
type httpSource struct {
	base      string // scheme://host/…/v1/configs/NAME, no userinfo/query
	name      string
	token     string
	tokenFile string
	wait      time.Duration
	bundle    bool
	client    *http.Client
	log       *slog.Logger
	// minPoll paces requests when the server answers long-polls at once
	// (an old server or proxy that ignores ?wait), so Watch never spins.
	minPoll time.Duration
}

func openHTTP(rawURL string, opts Options) (*httpSource, error) {
	p, err := parseHTTPURL(rawURL)
	if err != nil {
		return nil, err
	}
	s := &httpSource{
		base:      p.base.String(),
		name:      p.name,
		token:     opts.Token,
		tokenFile: opts.TokenFile,
		wait:      opts.Wait,
		bundle:    opts.Bundle,
		client:    opts.HTTPClient,
		log:       opts.Logger,
		minPoll:   time.Second,
	}
	if s.token == "" && s.tokenFile == "" {
		s.token = p.token
	}
	if s.client == nil {
		tr, err := newTransport(opts, p.base.Scheme == "https")
		if err != nil {
			return nil, fmt.Errorf("--source %q: %w", s.base, err)
		}
		s.client = &http.Client{Transport: tr}
	}
	if p.base.Scheme == "http" && (s.token != "" || s.tokenFile != "") && !isLoopbackHost(p.base.Hostname()) {
		s.log.Warn("bearer token sent over plaintext http to a non-loopback host; use https", "source", s.base)
	}
	return s, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// newTransport builds the transport with TLS settings from opts and a
// response-header timeout longer than the long-poll wait.
func newTransport(opts Options, https bool) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = opts.Wait + headerSlack
	tr.MaxIdleConnsPerHost = 2
	if https || opts.CAFile != "" || opts.ClientCert != "" {
		tc, err := tlsConfig(opts)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return tr, nil
}

// tlsConfig builds a client TLS config: roots from CAFile (system roots if
// empty) and an optional client certificate re-read at every handshake.
func tlsConfig(opts Options) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file %q: %w", opts.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %q: no PEM certificates found", opts.CAFile)
		}
		tc.RootCAs = pool
	}
	if opts.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.ClientCert, opts.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("--client-cert %q / --client-key %q: %w", opts.ClientCert, opts.ClientKey, err)
		}
		var mu sync.Mutex
		last := &cert
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			// Re-read so a rotated certificate is used; keep the last good
			// one when the files are mid-rotation.
			if c, err := tls.LoadX509KeyPair(opts.ClientCert, opts.ClientKey); err == nil {
				last = &c
			}
			return last, nil
		}
	}
	return tc, nil
}

// String names the source without userinfo or query.
func (s *httpSource) String() string { return s.base }

// Close releases idle connections.
func (s *httpSource) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Get fetches the latest version.
func (s *httpSource) Get(ctx context.Context) (Config, error) {
	cfg, notModified, err := s.fetch(ctx, "", 0)
	if err != nil {
		return Config{}, err
	}
	if notModified {
		return Config{}, fmt.Errorf("source %s: GET: unexpected 304 Not Modified", s.base)
	}
	return cfg, nil
}

// Watch long-polls until the server holds a version other than after.
func (s *httpSource) Watch(ctx context.Context, after string) (Config, error) {
	cond := after
	if n, err := strconv.ParseInt(after, 10, 64); err != nil || n < 0 {
		cond = "" // not one of ours: whatever the server holds is different
	}
	for {
		start := time.Now()
		cfg, notModified, err := s.fetch(ctx, cond, s.wait)
		if err != nil {
			return Config{}, err
		}
		if !notModified && cfg.Version != after {
			return cfg, nil
		}
		// 304 (or a 200 of the same version): ask again. Pace requests if
		// the server did not actually hold the request open.
		if elapsed := time.Since(start); elapsed < s.minPoll {
			t := time.NewTimer(s.minPoll - elapsed)
			select {
			case <-ctx.Done():
				t.Stop()
				return Config{}, ctx.Err()
			case <-t.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return Config{}, err
		}
	}
}

// fetch does one GET; with after != "" it sends If-None-Match and, with
// wait > 0, ?wait. It reports 304 as notModified.
func (s *httpSource) fetch(ctx context.Context, after string, wait time.Duration) (Config, bool, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.wait+requestSlack)
	defer cancel()
	u := s.base
	if after != "" && wait > 0 {
		u += "?wait=" + formatWait(wait)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Config{}, false, fmt.Errorf("source %s: %w", s.base, err)
	}
	if after != "" {
		req.Header.Set("If-None-Match", `"`+after+`"`)
	}
	if err := s.authorize(req); err != nil {
		return Config{}, false, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if perr := parent.Err(); perr != nil {
			// The caller gave up: say so plainly, not in the transport's words.
			return Config{}, false, perr
		}
		return Config{}, false, fmt.Errorf("source %s: GET: %w", s.base, stripURLErr(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return Config{}, true, nil
	case http.StatusOK:
	default:
		return Config{}, false, s.statusError("GET", resp)
	}
	version, err := responseVersion(resp)
	if err != nil {
		return Config{}, false, fmt.Errorf("source %s: %w", s.base, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+tarOverhead+1))
	if err != nil {
		return Config{}, false, fmt.Errorf("source %s: version %s: reading body: %w", s.base, version, err)
	}
	if len(body) > MaxBytes+tarOverhead {
		return Config{}, false, fmt.Errorf("source %s: version %s: body over %d bytes: %w", s.base, version, MaxBytes, ErrTooLarge)
	}
	if want := resp.Header.Get("X-Outrigger-Sha256"); want != "" {
		sum := sha256.Sum256(body)
		if !strings.EqualFold(hex.EncodeToString(sum[:]), want) {
			return Config{}, false, fmt.Errorf("source %s: version %s: body SHA-256 does not match X-Outrigger-Sha256 %s (truncated?)", s.base, version, want)
		}
	}
	cfg := Config{Version: version, ContentType: resp.Header.Get("Content-Type"), Fetched: time.Now()}
	mt, _, _ := mime.ParseMediaType(cfg.ContentType)
	if s.bundle || mt == "application/x-tar" || mt == "application/tar" {
		files, err := untarBundle(body)
		if err != nil {
			return Config{}, false, fmt.Errorf("source %s: version %s: bundle: %w", s.base, version, err)
		}
		cfg.Files = files
	} else {
		if len(body) == 0 {
			// Never hand an empty file to a legacy app (the consul-template
			// failure); an empty push is a mistake to surface, not apply.
			return Config{}, false, fmt.Errorf("source %s: version %s: empty config (never applied)", s.base, version)
		}
		if len(body) > MaxBytes {
			return Config{}, false, fmt.Errorf("source %s: version %s: body over %d bytes: %w", s.base, version, MaxBytes, ErrTooLarge)
		}
		cfg.Data = body
	}
	return cfg, false, nil
}

// authorize adds the bearer token, re-reading TokenFile each time.
func (s *httpSource) authorize(req *http.Request) error {
	tok := s.token
	if s.tokenFile != "" {
		b, err := os.ReadFile(s.tokenFile)
		if err != nil {
			return fmt.Errorf("source %s: --token-file %q: %w", s.base, s.tokenFile, err)
		}
		tok = strings.TrimSpace(string(b))
		if tok == "" {
			return fmt.Errorf("source %s: --token-file %q is empty", s.base, s.tokenFile)
		}
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

// responseVersion reads the decimal version from X-Outrigger-Version or the
// ETag.
func responseVersion(resp *http.Response) (string, error) {
	v := strings.TrimSpace(resp.Header.Get("X-Outrigger-Version"))
	if v == "" {
		v = strings.TrimPrefix(strings.TrimSpace(resp.Header.Get("ETag")), "W/")
		v = strings.Trim(v, `"`)
	}
	if v == "" {
		return "", errors.New("response has neither X-Outrigger-Version nor ETag")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return "", fmt.Errorf("response version %q is not a positive integer", v)
	}
	return strconv.FormatInt(n, 10), nil
}

// formatWait renders d the way the config API's ?wait parses it.
func formatWait(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// statusError turns a non-success response into an error carrying the
// server's JSON message.
func (s *httpSource) statusError(method string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(b))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	err := &StatusError{Code: resp.StatusCode, Msg: msg}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("source %s: %s: %w: %w", s.base, method, err, ErrNotFound)
	}
	return fmt.Errorf("source %s: %s: %w", s.base, method, err)
}

// StatusError is a non-success answer from the config API.
type StatusError struct {
	Code int    // HTTP status
	Msg  string // the server's {"error": …} message, or the raw body
}

// Error renders "CODE Status: message".
func (e *StatusError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Msg)
}

// Report sends st to PUT …/v1/configs/NAME/status/SIDECAR.
func (s *httpSource) Report(ctx context.Context, st Status) error {
	if !validSidecarName(st.Sidecar) {
		return fmt.Errorf("source %s: report: sidecar name %q must be 1-253 of [A-Za-z0-9._-], not starting with '.'", s.base, st.Sidecar)
	}
	n, err := strconv.ParseInt(st.Version, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("source %s: report: version %q is not a config API version number", s.base, st.Version)
	}
	t := st.Time
	if t.IsZero() {
		t = time.Now()
	}
	body, err := json.Marshal(struct {
		Version int64     `json:"version"`
		Outcome string    `json:"outcome"`
		Error   string    `json:"error,omitempty"`
		Time    time.Time `json:"time"`
	}{n, st.Outcome, st.Error, t.UTC()})
	if err != nil {
		return fmt.Errorf("source %s: report: %w", s.base, err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestSlack)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/status/"+st.Sidecar, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("source %s: report: %w", s.base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := s.authorize(req); err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("source %s: report version %d: %w", s.base, n, stripURLErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return s.statusError("report version "+st.Version, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}
