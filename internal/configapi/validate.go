package configapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/outrigger-sidecar/outrigger/internal/format"
)

// schemaURL is the resource name a pushed schema is compiled under; it is
// never fetched.
const schemaURL = "outrigger:///schema.json"

// compileSchema parses and compiles a JSON Schema (draft 2020-12 unless
// the schema says otherwise). References to anything but the schema itself
// and the built-in meta-schemas are refused: a schema must never make the
// server read files or fetch URLs.
func compileSchema(name string, data []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("schema for %q: not JSON: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("schema for %q: %w", name, err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("schema for %q: %w", name, err)
	}
	return sch, nil
}

// refuseLoader refuses every external schema reference.
type refuseLoader struct{}

// Load implements jsonschema.URLLoader by refusing.
func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external reference %q not allowed (schemas must be self-contained)", url)
}

// unsupportedTypeError wraps format.FromContentType failures (415).
type unsupportedTypeError struct{ err error }

func (e *unsupportedTypeError) Error() string { return e.err.Error() }
func (e *unsupportedTypeError) Unwrap() error { return e.err }

// checkContent validates data against its declared content type and
// returns the media type to store: the format's canonical type, or for raw
// content the type as given (text/plain stays text/plain).
func checkContent(contentType string, data []byte) (string, format.Format, error) {
	if isBundleType(contentType) {
		if err := validateBundle(data); err != nil {
			return "", format.Raw, err
		}
		return bundleContentType, formatBundle, nil
	}
	f, err := format.FromContentType(contentType)
	if err != nil {
		return "", "", &unsupportedTypeError{err}
	}
	stored := f.ContentType()
	if f == format.Raw {
		stored = rawMediaType(contentType)
	}
	if err := format.Validate(f, data); err != nil {
		return "", f, err
	}
	return stored, f, nil
}

// formatBundle marks a tar bundle in schemaInstance (not a format.Format
// the format package knows).
const formatBundle format.Format = "tar"

// rawMediaType returns the lower-case media type without parameters except
// charset.
func rawMediaType(ct string) string {
	mt, rest, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt != "text/plain" {
		return "application/octet-stream"
	}
	for _, p := range strings.Split(rest, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "charset") {
			v = strings.Trim(strings.TrimSpace(v), `"`)
			if v != "" && !strings.ContainsAny(v, "\r\n;,\" ") {
				return "text/plain; charset=" + strings.ToLower(v)
			}
		}
	}
	return "text/plain"
}

// schemaInstance decodes a validated document of format f into the
// generic value JSON Schema validation works on.
func schemaInstance(f format.Format, data []byte) (any, error) {
	switch f {
	case format.JSON:
		return jsonschema.UnmarshalJSON(bytes.NewReader(data))
	case format.YAML:
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("yaml: %w", err)
		}
		return toJSONValue(v)
	case format.TOML:
		var v map[string]any
		if err := toml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("toml: %w", err)
		}
		return toJSONValue(v)
	}
	return nil, fmt.Errorf("content of format %s cannot be checked against a JSON Schema (push JSON, YAML or TOML, or remove the schema)", f)
}

// toJSONValue converts decoded YAML/TOML values into JSON's data model:
// string-keyed objects, arrays, numbers, strings, booleans and null.
// Timestamps become RFC 3339 strings, binary becomes base64.
func toJSONValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, int, int64, uint64, int32, uint32, int8, int16, uint8, uint16, uint:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("number %v has no JSON equivalent", x)
		}
		return x, nil
	case float32:
		return toJSONValue(float64(x))
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = c
		}
		return out, nil
	case fmt.Stringer: // toml.LocalDate, LocalTime, LocalDateTime
		return x.String(), nil
	}
	return nil, fmt.Errorf("value of type %T has no JSON equivalent", v)
}
