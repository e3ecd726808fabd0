package configapi

// The read-only web dashboard at /ui/: four embedded static files (HTML,
// CSS, JS; no build step, no templates) that call the JSON API of
// docs/api.md from the browser. The server only serves the files; every
// data request the page makes carries the user's bearer token and goes
// through the same authorization as any other client, so /ui/ itself needs
// no authentication and reveals nothing. Listing, history, content, the
// line diff between two versions and the rollout table are all computed in
// the browser (ui/app.js, ui/diff.js); the server side never renders or diffs a config.
// docs/ui.md describes the page.

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"time"
)

//go:embed ui/index.html ui/app.css ui/app.js ui/diff.js
var uiFiles embed.FS

// uiCSP allows only same-origin scripts, styles, images and fetches: no
// inline script or style, no eval, no framing, no <base> or form targets.
const uiCSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"

// uiAsset is one embedded file with its precomputed headers.
type uiAsset struct {
	contentType string
	etag        string
	data        []byte
}

// uiContentTypes lists the files served under /ui/ and their types; any
// other path under /ui/ is a 404.
var uiContentTypes = map[string]string{
	"index.html": "text/html; charset=utf-8",
	"app.css":    "text/css; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
	"diff.js":    "text/javascript; charset=utf-8",
}

// loadUIAssets reads the embedded files once. It fails only if the binary
// was built without them, which the tests catch.
func loadUIAssets() (map[string]uiAsset, error) {
	assets := make(map[string]uiAsset, len(uiContentTypes))
	for name, ct := range uiContentTypes {
		b, err := fs.ReadFile(uiFiles, "ui/"+name)
		if err != nil {
			return nil, fmt.Errorf("configapi: embedded ui asset %q: %w", name, err)
		}
		sum := sha256.Sum256(b)
		assets[name] = uiAsset{contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, data: b}
	}
	return assets, nil
}

// mountUI registers GET (and HEAD) /ui and /ui/{file} on mux. /ui
// redirects to /ui/ so the page's relative asset URLs resolve.
func mountUI(mux *http.ServeMux) error {
	assets, err := loadUIAssets()
	if err != nil {
		return err
	}
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		setUIHeaders(w.Header())
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /ui/{file...}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if name == "" {
			name = "index.html"
		}
		h := w.Header()
		setUIHeaders(h)
		a, ok := assets[name]
		if !ok {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			_, _ = fmt.Fprintf(w, "ui: no such file %q\n", name)
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		// Revalidate every time: the ETag makes that a cheap 304, and an
		// upgraded server never runs with a stale app.js.
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.data))
	})
	return nil
}

// setUIHeaders sets the security headers of every /ui response.
func setUIHeaders(h http.Header) {
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}
