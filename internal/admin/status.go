package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

// statusDoc is the JSON form of /status.
type statusDoc struct {
	Ready  bool      `json:"ready"`
	Checks []result  `json:"checks"`
	Status any       `json:"status,omitempty"`
	Error  string    `json:"error,omitempty"`
	Time   time.Time `json:"time"`
}

// row is one line of the HTML status table.
type row struct{ Key, Value string }

// statusStyle is the status page's inline style sheet (the page's CSP allows
// inline styles only).
const statusStyle = `<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.v{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.ok{color:#17702e;font-weight:bold}.bad{color:#b3261e;font-weight:bold}
</style>`

// writeStatusHTML renders the status page; every value is text in an element,
// escaped with html.EscapeString. It is written out rather than an
// html/template on purpose: html/template, through text/template, calls
// reflect.Value.MethodByName, and a binary that can reach that call keeps
// every exported method of every type, because the linker cannot tell which
// ones a template might call. Without it (and with gRPC built with
// -tags grpcnotrace, which drops golang.org/x/net/trace, the other
// html/template user) the binary loses 3 MB of code and tables, and every
// role's resident memory about 2.5 MiB (docs/memory.md).
func writeStatusHTML(b *bytes.Buffer, doc statusDoc, host string, rows []row) {
	esc := html.EscapeString
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n" +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Outrigger status")
	if host != "" {
		b.WriteString(" · " + esc(host))
	}
	b.WriteString("</title>\n" + statusStyle + "</head><body>\n<h1>Outrigger ")
	if doc.Ready {
		b.WriteString(`<span class="ok">ready</span>`)
	} else {
		b.WriteString(`<span class="bad">not ready</span>`)
	}
	b.WriteString("</h1>\n")
	if len(doc.Checks) > 0 {
		b.WriteString("<table><tr><th>check</th><th>state</th></tr>\n")
		for _, c := range doc.Checks {
			b.WriteString("<tr><td>" + esc(c.Name) + "</td>")
			if c.OK {
				b.WriteString(`<td class="ok">ok</td>`)
			} else {
				b.WriteString(`<td class="bad">` + esc(c.Error) + "</td>")
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</table>")
	}
	b.WriteString("\n")
	if doc.Error != "" {
		b.WriteString(`<p class="bad">status: ` + esc(doc.Error) + "</p>")
	}
	b.WriteString("\n")
	if len(rows) > 0 {
		b.WriteString("<table><tr><th>key</th><th>value</th></tr>\n")
		for _, r := range rows {
			b.WriteString("<tr><td>" + esc(r.Key) + `</td><td class="v">` + esc(r.Value) + "</td></tr>\n")
		}
		b.WriteString("</table>")
	}
	b.WriteString("\n<p><small>" + esc(doc.Time.Format("2006-01-02T15:04:05Z07:00")) +
		` · <a href="?format=json">JSON</a> · <a href="/readyz?verbose">/readyz</a> · <a href="/metrics">/metrics</a></small></p>` +
		"\n</body></html>\n")
}

// status serves the status page: HTML for browsers, JSON on request.
func status(checks []Check, snapshot func() any, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		noCache(w)
		rs := runChecks(r.Context(), checks)
		doc := statusDoc{Ready: allOK(rs), Checks: rs, Time: time.Now().UTC()}
		var raw []byte
		if snapshot != nil {
			var err error
			raw, err = takeSnapshot(snapshot)
			if err != nil {
				log.Warn("admin: status snapshot", "err", err)
				doc.Error = err.Error()
			} else {
				doc.Status = json.RawMessage(raw)
			}
		}
		if wantsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(doc)
			return
		}
		host, _ := os.Hostname()
		var b bytes.Buffer
		writeStatusHTML(&b, doc, host, flatten(raw))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = w.Write(b.Bytes())
	}
}

// takeSnapshot calls the Status func and encodes its result, turning a
// panic into an error.
func takeSnapshot(snapshot func() any) (raw []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("status panicked: %v", p)
		}
	}()
	raw, err = json.Marshal(snapshot())
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return raw, nil
}

// wantsJSON picks JSON for ?format=json, or for an Accept header that
// names application/json (or a +json type) but not text/html.
func wantsJSON(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "json":
		return true
	case "html":
		return false
	}
	jsonOK, htmlOK := false, false
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch {
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			jsonOK = true
		case mt == "text/html":
			htmlOK = true
		}
	}
	return jsonOK && !htmlOK
}

// flatten turns a JSON document into sorted key/value rows: nested
// objects become dotted keys, arrays of scalars one comma-separated value,
// other arrays indexed keys. A scalar document is one row keyed "status".
func flatten(raw []byte) []row {
	if len(raw) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || v == nil {
		return nil
	}
	var rows []row
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				walk(join(prefix, k), c)
			}
		case []any:
			if scalars(t) {
				s := make([]string, len(t))
				for i, c := range t {
					s[i] = scalar(c)
				}
				rows = append(rows, row{prefix, strings.Join(s, ", ")})
				return
			}
			for i, c := range t {
				walk(fmt.Sprintf("%s[%d]", prefix, i), c)
			}
		default:
			if prefix == "" {
				prefix = "status"
			}
			rows = append(rows, row{prefix, scalar(t)})
		}
	}
	walk("", v)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func scalars(a []any) bool {
	for _, v := range a {
		switch v.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

func scalar(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(v)
}

// index lists the endpoints on the admin listener's root.
func index(pprof bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		noCache(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		var b strings.Builder
		b.WriteString(`<!doctype html><title>Outrigger admin</title><ul>`)
		for _, p := range []string{"/healthz", "/readyz?verbose", "/metrics", "/status"} {
			fmt.Fprintf(&b, `<li><a href="%s">%s</a></li>`, p, p)
		}
		if pprof {
			b.WriteString(`<li><a href="/debug/pprof/">/debug/pprof/</a></li>`)
		}
		b.WriteString("</ul>\n")
		_, _ = w.Write([]byte(b.String()))
	}
}
