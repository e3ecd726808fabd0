package configapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// Client speaks the config API (docs/api.md). It is safe for concurrent
// use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// APIError is a non-2xx answer: the HTTP status and the server's message.
type APIError struct {
	Op      string // e.g. `push "app"`
	Status  int
	Message string
}

// Error formats as `push "app": 422 Unprocessable Entity: <server message>`.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Message)
}

// IsStatus reports whether err is an *APIError with the given status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// maxClientResponse bounds what the client reads from a server.
const maxClientResponse = 64 << 20

// NewClient returns a client for server ("http://127.0.0.1:7700" or
// "https://…"); token "" sends no Authorization. httpClient nil = a client
// with no overall timeout (watches are long), relying on contexts.
func NewClient(server, token string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", server, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want http(s)://host:port", server)
	}
	if u.User != nil {
		return nil, fmt.Errorf("server %q: credentials in the URL are not supported; use a token", u.Redacted())
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, errors.New("token contains a line break")
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: u, token: token, hc: httpClient}, nil
}

func (c *Client) url(query url.Values, segs ...string) string {
	u := *c.base
	esc, raw := u.EscapedPath(), u.Path
	for _, s := range segs {
		esc += "/" + url.PathEscape(s)
		raw += "/" + s
	}
	u.Path, u.RawPath = raw, esc
	u.RawQuery = query.Encode()
	return u.String()
}

// do sends a request and returns the response for 2xx/304, an *APIError
// otherwise. The caller closes the body.
func (c *Client) do(ctx context.Context, op, method, target string, body []byte, hdr http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(raw))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return nil, &APIError{Op: op, Status: resp.StatusCode, Message: msg}
}

func (c *Client) doJSON(ctx context.Context, op, method, target string, body []byte, hdr http.Header, out any) error {
	resp, err := c.do(ctx, op, method, target, body, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxClientResponse)).Decode(out); err != nil {
		return fmt.Errorf("%s: decoding answer: %w", op, err)
	}
	return nil
}

// PushOptions are the optional parts of a push.
type PushOptions struct {
	// ContentType selects validation (default application/octet-stream).
	ContentType string
	// IfMatch, when non-nil, makes the push a compare-and-swap against
	// that version (0 = the config must not exist yet).
	IfMatch *int64
	// Author is recorded with the version (default: the token's name).
	Author string
}

// Push stores data as a new version of name; ifMatch nil = unconditional.
// Identical content returns the latest version unchanged.
func (c *Client) Push(ctx context.Context, name string, data []byte, contentType string, ifMatch *int64) (store.Version, error) {
	v, _, err := c.PushWith(ctx, name, data, PushOptions{ContentType: contentType, IfMatch: ifMatch})
	return v, err
}

// PushWith is Push with every option; created is false when the content
// equals the latest version.
func (c *Client) PushWith(ctx context.Context, name string, data []byte, opts PushOptions) (v store.Version, created bool, err error) {
	op := fmt.Sprintf("push %q", name)
	hdr := http.Header{}
	ct := opts.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	hdr.Set("Content-Type", ct)
	if opts.IfMatch != nil {
		hdr.Set("If-Match", etag(*opts.IfMatch))
	}
	if opts.Author != "" {
		hdr.Set("X-Outrigger-Author", opts.Author)
	}
	if data == nil {
		data = []byte{}
	}
	resp, err := c.do(ctx, op, http.MethodPut, c.url(nil, "v1", "configs", name), data, hdr)
	if err != nil {
		return store.Version{}, false, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
		return store.Version{}, false, fmt.Errorf("%s: decoding answer: %w", op, err)
	}
	return v, resp.StatusCode == http.StatusCreated, nil
}

// Get returns version n of name (0 = latest) with its content.
func (c *Client) Get(ctx context.Context, name string, n int64) (store.Version, error) {
	q := url.Values{}
	if n > 0 {
		q.Set("version", strconv.FormatInt(n, 10))
	}
	resp, err := c.do(ctx, fmt.Sprintf("get %q", name), http.MethodGet, c.url(q, "v1", "configs", name), nil, nil)
	if err != nil {
		return store.Version{}, err
	}
	defer resp.Body.Close()
	return readVersion(name, resp)
}

// readVersion builds a Version from a content response's headers and body.
func readVersion(name string, resp *http.Response) (store.Version, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxClientResponse))
	if err != nil {
		return store.Version{}, fmt.Errorf("get %q: reading content: %w", name, err)
	}
	n, _ := strconv.ParseInt(resp.Header.Get("X-Outrigger-Version"), 10, 64)
	v := store.Version{
		Name:        name,
		Version:     n,
		ContentType: resp.Header.Get("Content-Type"),
		SHA256:      resp.Header.Get("X-Outrigger-Sha256"),
		Size:        int64(len(data)),
		Author:      resp.Header.Get("X-Outrigger-Author"),
		Data:        data,
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		v.Created = t
	}
	return v, nil
}

// Watch long-polls name for a version other than after (0 = any existing
// version), waiting up to wait on the server. changed=false means the wait
// ended with after still the latest.
func (c *Client) Watch(ctx context.Context, name string, after int64, wait time.Duration) (v store.Version, changed bool, err error) {
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	hdr := http.Header{}
	hdr.Set("If-None-Match", etag(after))
	resp, err := c.do(ctx, fmt.Sprintf("watch %q", name), http.MethodGet, c.url(q, "v1", "configs", name), nil, hdr)
	if err != nil {
		return store.Version{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		_, _ = io.Copy(io.Discard, resp.Body)
		return store.Version{}, false, nil
	}
	v, err = readVersion(name, resp)
	return v, err == nil, err
}

// History lists every version of name, oldest first, without content.
func (c *Client) History(ctx context.Context, name string) ([]store.Version, error) {
	var out historyResponse
	err := c.doJSON(ctx, fmt.Sprintf("history %q", name), http.MethodGet, c.url(nil, "v1", "configs", name, "history"), nil, nil, &out)
	return out.Versions, err
}

// Rollback makes version to's content the newest version of name.
func (c *Client) Rollback(ctx context.Context, name string, to int64) (store.Version, error) {
	q := url.Values{"to": {strconv.FormatInt(to, 10)}}
	var v store.Version
	err := c.doJSON(ctx, fmt.Sprintf("rollback %q", name), http.MethodPost, c.url(q, "v1", "configs", name, "rollback"), nil, nil, &v)
	return v, err
}

// List returns the latest version of every config the token may see.
func (c *Client) List(ctx context.Context) ([]store.Version, error) {
	var out listResponse
	err := c.doJSON(ctx, "list", http.MethodGet, c.url(nil, "v1", "configs"), nil, nil, &out)
	return out.Configs, err
}

// Status returns what the sidecars reported for name.
func (c *Client) Status(ctx context.Context, name string) (StatusReport, error) {
	var out StatusReport
	err := c.doJSON(ctx, fmt.Sprintf("status %q", name), http.MethodGet, c.url(nil, "v1", "configs", name, "status"), nil, nil, &out)
	return out, err
}

// ReportStatus records a sidecar's outcome for name.
func (c *Client) ReportStatus(ctx context.Context, name string, st store.SidecarStatus) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	return c.doJSON(ctx, fmt.Sprintf("report status of %q", name), http.MethodPut, c.url(nil, "v1", "configs", name, "status", st.Sidecar), body, hdr, nil)
}

// PutSchema registers a JSON Schema every push of name must satisfy.
func (c *Client) PutSchema(ctx context.Context, name string, schema []byte) error {
	hdr := http.Header{"Content-Type": {"application/schema+json"}}
	return c.doJSON(ctx, fmt.Sprintf("schema %q", name), http.MethodPut, c.url(nil, "v1", "schemas", name), schema, hdr, nil)
}

// GetSchema returns name's JSON Schema.
func (c *Client) GetSchema(ctx context.Context, name string) ([]byte, error) {
	resp, err := c.do(ctx, fmt.Sprintf("get schema %q", name), http.MethodGet, c.url(nil, "v1", "schemas", name), nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxClientResponse))
}
