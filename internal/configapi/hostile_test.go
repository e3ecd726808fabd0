package configapi

import (
	"strings"
	"testing"
)

// TestHostileInput sends oversized, deeply nested and amplifying bodies;
// every one must be refused with a 4xx, quickly and without being stored.
func TestHostileInput(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxSize = 256 << 10 })
	if r := ts.do(t, put("/v1/schemas/bomb", "application/json", `{"type":"object"}`)); r.code != 204 {
		t.Fatalf("schema: %d %s", r.code, r.body)
	}
	yamlBomb := `a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
	tests := []struct {
		name string
		r    req
	}{
		{"deep JSON nesting", put("/v1/configs/deep", "application/json", strings.Repeat("[", 100000)+strings.Repeat("]", 100000))},
		{"deep XML nesting", put("/v1/configs/deep", "application/xml", strings.Repeat("<a>", 20000)+strings.Repeat("</a>", 20000))},
		{"YAML alias bomb with a schema", put("/v1/configs/bomb", "application/yaml", yamlBomb)},
		{"status body over 64KiB", put("/v1/configs/deep/status/pod", "application/json", `{"version":1,"outcome":"failed","error":"`+strings.Repeat("x", 70<<10)+`"}`)},
		{"schema over max size", put("/v1/schemas/big", "application/json", `{"description":"`+strings.Repeat("x", 300<<10)+`"}`)},
		{"config over max size", put("/v1/configs/big", "text/plain", strings.Repeat("x", 300<<10))},
		{"invalid UTF-8 JSON", put("/v1/configs/utf", "application/json", "{\"a\":\"\xff\"}")},
		{"content type with junk params", put("/v1/configs/ct", "application/json; ;;=", "x")},
		{"huge version param", get("/v1/configs/deep?version=99999999999999999999999")},
		{"huge wait", withHdr(get("/v1/configs/deep?wait=9999999999999h"), "If-None-Match", `"0"`)},
		{"If-Match garbage", withHdr(put("/v1/configs/ct", "text/plain", "x"), "If-Match", `"""`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.r)
			if r.code < 400 || r.code >= 500 {
				t.Fatalf("%d %.200s, want a 4xx", r.code, r.body)
			}
		})
	}
	r := ts.do(t, get("/v1/configs"))
	if r.body != "{\"configs\":[]}\n" {
		t.Fatalf("something was stored: %s", r.body)
	}
}
