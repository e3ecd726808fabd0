package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
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

// statusPage is parsed on the first /status request, not at package init:
// every role links this package, and few ever serve the page.
var statusPage = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("status").Parse(statusHTML))
})

const statusHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Outrigger status{{with .Host}} · {{.}}{{end}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.v{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.ok{color:#17702e;font-weight:bold}.bad{color:#b3261e;font-weight:bold}
</style></head><body>
<h1>Outrigger {{if .Ready}}<span class="ok">ready</span>{{else}}<span class="bad">not ready</span>{{end}}</h1>
{{with .Checks}}<table><tr><th>check</th><th>state</th></tr>
{{range .}}<tr><td>{{.Name}}</td>{{if .OK}}<td class="ok">ok</td>{{else}}<td class="bad">{{.Error}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{with .Error}}<p class="bad">status: {{.}}</p>{{end}}
{{with .Rows}}<table><tr><th>key</th><th>value</th></tr>
{{range .}}<tr><td>{{.Key}}</td><td class="v">{{.Value}}</td></tr>
{{end}}</table>{{end}}
<p><small>{{.Time.Format "2006-01-02T15:04:05Z07:00"}} · <a href="?format=json">JSON</a> · <a href="/readyz?verbose">/readyz</a> · <a href="/metrics">/metrics</a></small></p>
</body></html>
`

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
		data := struct {
			statusDoc
			Host string
			Rows []row
		}{statusDoc: doc, Host: host, Rows: flatten(raw)}
		var b bytes.Buffer
		if err := statusPage().Execute(&b, data); err != nil {
			log.Error("admin: status page", "err", err)
			http.Error(w, "status page failed", http.StatusInternalServerError)
			return
		}
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
