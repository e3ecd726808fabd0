package configapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/format"
	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// listResponse is GET /v1/configs.
type listResponse struct {
	Configs []store.Version `json:"configs"`
}

// historyResponse is GET /v1/configs/{name}/history.
type historyResponse struct {
	Name     string          `json:"name"`
	Versions []store.Version `json:"versions"`
}

func (a *api) list(w http.ResponseWriter, r *http.Request) *apiError {
	id, e := a.authorize(r, RoleRead, "")
	if e != nil {
		return e
	}
	all, err := a.st.List(r.Context())
	if err != nil {
		return storeError("*", err)
	}
	out := make([]store.Version, 0, len(all))
	for _, v := range all {
		if id.CanSee(v.Name) {
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, listResponse{Configs: out})
	return nil
}

func (a *api) get(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	if _, e := a.authorize(r, RoleRead, name); e != nil {
		return e
	}
	ctx := r.Context()
	q := r.URL.Query()
	if q.Has("wait") {
		infoFrom(ctx).longPoll = true
	}
	inm, hasINM, err := parseETags(r.Header.Get("If-None-Match"))
	if err != nil {
		return errorf(http.StatusBadRequest, reasonBadRequest, "If-None-Match: "+err.Error())
	}
	if vs := q.Get("version"); vs != "" {
		n, e := parseVersionParam("version", vs)
		if e != nil {
			return e
		}
		v, err := a.st.Get(ctx, name, n)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return &apiError{Code: http.StatusNotFound, Msg: fmt.Sprintf("config %q version %d: not found", name, n), Err: err}
			}
			return storeError(name, err)
		}
		if hasINM && inm.matches(v.Version) {
			notModified(w, v.Version)
			return nil
		}
		serveVersion(w, v)
		return nil
	}
	wait, e := a.parseWait(q.Get("wait"))
	if e != nil {
		return e
	}
	if hasINM && wait > 0 {
		if a.tryPark(w, r, name, inm.matches, wait) {
			return nil // answered from the hub, see park.go
		}
		res, err := a.hub.wait(ctx, name, inm.matches, wait)
		switch {
		case errors.Is(err, errNoConfig):
			return &apiError{Code: http.StatusNotFound, Msg: fmt.Sprintf("config %q: not found", name)}
		case err != nil && ctx.Err() != nil:
			infoFrom(ctx).clientGone = true
			return nil // nobody to answer
		case err != nil:
			return storeError(name, err)
		}
		if !res.Modified {
			notModified(w, res.Latest)
			return nil
		}
		serveRendered(w, res.V)
		// The hold only helps, and is only harmless, on an HTTP/1.x
		// keep-alive connection: there the client has the whole answer
		// (Content-Length) at the flush and its next request waits in the
		// socket. An HTTP/2 answer ends only when the handler returns, and
		// its re-arm is a new stream served concurrently anyway.
		if res.wave != nil && (a.hub.noHold || r.ProtoMajor != 1 || r.Close) {
			res.wave.leave()
			res.wave = nil
		}
		if res.wave != nil {
			// Deliver now, then keep this connection's next request (the
			// watcher's re-arm) unread until the rest of the wave is
			// answered: see wave.
			_ = http.NewResponseController(w).Flush()
		}
		if res.Woken && !res.Changed.IsZero() {
			a.m.wake.Observe(time.Since(res.Changed).Seconds())
		}
		if res.wave != nil {
			a.hub.hold(ctx, res.wave)
		}
		return nil
	}
	v, err := a.st.Get(ctx, name, 0)
	if errors.Is(err, store.ErrNotFound) && hasINM && inm.matches(0) {
		notModified(w, 0)
		return nil
	}
	if err != nil {
		return storeError(name, err)
	}
	if hasINM && inm.matches(v.Version) {
		notModified(w, v.Version)
		return nil
	}
	serveVersion(w, v)
	return nil
}

// rendered is a version ready to be served: its metadata headers are
// formatted once per version, not once per answer, and shared by every
// watcher woken by that version. It is immutable once built.
type rendered struct {
	v   store.Version
	hdr http.Header // canonical keys, each value a one-element slice
}

// render formats v's response headers.
func render(v store.Version) *rendered {
	// Each value slice has capacity 1, so that a later Header.Add on a
	// response's header map copies instead of writing into this shared
	// array.
	one := func(s string) []string { return []string{s}[:1:1] }
	h := http.Header{
		"Content-Type":           one(v.ContentType),
		"Etag":                   one(etag(v.Version)),
		"X-Outrigger-Version":    one(strconv.FormatInt(v.Version, 10)),
		"X-Outrigger-Sha256":     one(v.SHA256),
		"Cache-Control":          one("no-cache"),
		"X-Content-Type-Options": one("nosniff"),
		"Content-Length":         one(strconv.Itoa(len(v.Data))),
	}
	if v.Author != "" {
		h["X-Outrigger-Author"] = one(v.Author)
	}
	if !v.Created.IsZero() {
		h["Last-Modified"] = one(v.Created.UTC().Format(http.TimeFormat))
	}
	return &rendered{v: v, hdr: h}
}

// serveVersion writes a version's content with its metadata headers.
func serveVersion(w http.ResponseWriter, v store.Version) { serveRendered(w, render(v)) }

// serveRendered writes r. The shared header values are assigned, not
// copied: net/http copies the header map when it writes the header.
func serveRendered(w http.ResponseWriter, r *rendered) {
	h := w.Header()
	for k, vs := range r.hdr {
		h[k] = vs
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(r.v.Data)
}

func notModified(w http.ResponseWriter, latest int64) {
	if latest > 0 {
		w.Header().Set("ETag", etag(latest))
		w.Header().Set("X-Outrigger-Version", strconv.FormatInt(latest, 10))
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNotModified)
}

func (a *api) push(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	id, e := a.authorize(r, RoleWrite, name)
	if e != nil {
		return e
	}
	ctx := r.Context()
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return errorf(http.StatusUnsupportedMediaType, reasonUnsupportedType, "Content-Type required: application/json, application/yaml, application/toml, application/xml, text/x-ini, application/x-tar (a bundle), text/plain or application/octet-stream")
	}
	ifMatch, hasIfMatch, err := parseETags(r.Header.Get("If-Match"))
	if err != nil {
		return errorf(http.StatusBadRequest, reasonBadRequest, "If-Match: "+err.Error())
	}
	body, e := a.readBody(w, r, a.cfg.MaxSize, fmt.Sprintf("config %q", name))
	if e != nil {
		return e
	}
	stored, f, err := checkContent(ct, body)
	if err != nil {
		var ute *unsupportedTypeError
		if errors.As(err, &ute) {
			return &apiError{Code: http.StatusUnsupportedMediaType, Reason: reasonUnsupportedType, Msg: fmt.Sprintf("config %q: %v", name, err)}
		}
		return &apiError{Code: http.StatusUnprocessableEntity, Reason: reasonInvalid, Msg: fmt.Sprintf("config %q: %v", name, err)}
	}
	if e := a.checkSchema(ctx, name, f, body); e != nil {
		return e
	}
	author := cleanHeaderText(r.Header.Get("X-Outrigger-Author"), 200)
	if author == "" {
		author = id.Name
	}
	opts := store.PutOptions{ContentType: stored, Author: author}
	v, created, e := a.putCAS(ctx, name, body, opts, ifMatch, hasIfMatch)
	if e != nil {
		return e
	}
	a.answerPut(w, r, v, created, "config pushed")
	return nil
}

// checkSchema validates a push against name's registered JSON Schema, if
// any.
func (a *api) checkSchema(ctx context.Context, name string, f format.Format, body []byte) *apiError {
	raw, err := a.st.GetSchema(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeError(name, err)
	}
	sch, err := compileSchema(name, raw)
	if err != nil {
		return &apiError{Code: http.StatusInternalServerError, Msg: fmt.Sprintf("config %q: stored schema does not compile", name), Err: err}
	}
	inst, err := schemaInstance(f, body)
	if err != nil {
		return &apiError{Code: http.StatusUnprocessableEntity, Reason: reasonSchema, Msg: fmt.Sprintf("config %q: %v", name, err)}
	}
	if err := sch.Validate(inst); err != nil {
		return &apiError{Code: http.StatusUnprocessableEntity, Reason: reasonSchema, Msg: fmt.Sprintf("config %q: violates its JSON Schema: %v", name, err)}
	}
	return nil
}

// putCAS stores data honoring If-Match: one version is a compare-and-swap
// in the store; "*" or a list is checked against the latest and then
// swapped against it, retried a few times if another push slips in.
func (a *api) putCAS(ctx context.Context, name string, data []byte, opts store.PutOptions, im etagList, has bool) (store.Version, bool, *apiError) {
	if has && !im.any && len(im.versions) == 1 {
		n := im.versions[0]
		opts.IfMatch = &n
	}
	attempts := 1
	if has && opts.IfMatch == nil {
		attempts = 5
	}
	var latest int64
	for i := 0; i < attempts; i++ {
		if has && (im.any || len(im.versions) != 1) {
			cur, err := a.st.Get(ctx, name, 0)
			switch {
			case errors.Is(err, store.ErrNotFound):
				cur.Version = 0
			case err != nil:
				return store.Version{}, false, storeError(name, err)
			}
			if !im.matches(cur.Version) {
				return store.Version{}, false, conflict(name, im, cur.Version)
			}
			n := cur.Version
			opts.IfMatch = &n
		}
		v, created, err := a.st.Put(ctx, name, data, opts)
		if err == nil {
			return v, created, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return store.Version{}, false, storeError(name, err)
		}
	}
	cur, err := a.st.Get(ctx, name, 0)
	if err == nil {
		latest = cur.Version
	}
	return store.Version{}, false, conflict(name, im, latest)
}

func conflict(name string, im etagList, latest int64) *apiError {
	want := "*"
	if !im.any {
		want = ""
		for i, n := range im.versions {
			if i > 0 {
				want += ", "
			}
			want += etag(n)
		}
		if want == "" {
			want = "(no version)"
		}
	}
	return errorf(http.StatusPreconditionFailed, reasonConflict, fmt.Sprintf("config %q: If-Match %s but the latest version is %d", name, want, latest))
}

// answerPut writes the 201/200 answer of a push or rollback and wakes this
// process's watchers at once (the change stream will say it again).
func (a *api) answerPut(w http.ResponseWriter, r *http.Request, v store.Version, created bool, msg string) {
	a.hub.publish(v)
	code, result := http.StatusOK, "unchanged"
	if created {
		code, result = http.StatusCreated, "created"
		w.Header().Set("Location", "/v1/configs/"+url.PathEscape(v.Name))
	}
	a.m.pushes.WithLabelValues(result).Inc()
	a.log.Info(msg, "config", v.Name, "version", v.Version, "result", result, "author", v.Author,
		"sha256", v.SHA256, "size", v.Size, "token", infoFrom(r.Context()).token)
	w.Header().Set("ETag", etag(v.Version))
	writeJSON(w, code, v)
}

func (a *api) history(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	if _, e := a.authorize(r, RoleRead, name); e != nil {
		return e
	}
	vs, err := a.st.History(r.Context(), name)
	if err == nil && len(vs) == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return storeError(name, err)
	}
	writeJSON(w, http.StatusOK, historyResponse{Name: name, Versions: vs})
	return nil
}

func (a *api) rollback(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	id, e := a.authorize(r, RoleWrite, name)
	if e != nil {
		return e
	}
	ctx := r.Context()
	to, e := parseVersionParam("to", r.URL.Query().Get("to"))
	if e != nil {
		return e
	}
	ifMatch, hasIfMatch, err := parseETags(r.Header.Get("If-Match"))
	if err != nil {
		return errorf(http.StatusBadRequest, reasonBadRequest, "If-Match: "+err.Error())
	}
	old, err := a.st.Get(ctx, name, to)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &apiError{Code: http.StatusNotFound, Msg: fmt.Sprintf("config %q version %d: not found", name, to), Err: err}
		}
		return storeError(name, err)
	}
	author := cleanHeaderText(r.Header.Get("X-Outrigger-Author"), 200)
	if author == "" {
		author = id.Name
	}
	// The old content is not re-checked against a schema registered since:
	// a rollback is the emergency exit and must not be blocked.
	opts := store.PutOptions{ContentType: old.ContentType, Author: author}
	v, created, e := a.putCAS(ctx, name, old.Data, opts, ifMatch, hasIfMatch)
	if e != nil {
		return e
	}
	a.answerPut(w, r, v, created, fmt.Sprintf("config rolled back to version %d", to))
	return nil
}
