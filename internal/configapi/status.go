package configapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// StatusReport is GET /v1/configs/{name}/status: the latest version and
// what every sidecar last reported.
type StatusReport struct {
	Name     string                `json:"name"`
	Latest   int64                 `json:"latest"`
	Sidecars []store.SidecarStatus `json:"sidecars"`
}

// statusBody is a sidecar's report. Version is accepted as a number or a
// numeric string (the sync role's source.Status carries it as a string).
type statusBody struct {
	Version json.RawMessage `json:"version"`
	Outcome string          `json:"outcome"`
	Error   string          `json:"error"`
	Time    *time.Time      `json:"time"`
}

// maxStatusError bounds the stored error text of a report.
const maxStatusError = 4096

var outcomes = map[string]bool{"applied": true, "rejected": true, "rolled_back": true, "failed": true}

func parseStatusVersion(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, errors.New(`"version" is required`)
	}
	if s[0] == '"' {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return 0, err
		}
		s = str
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf(`"version" %s: want a version number`, raw)
	}
	return n, nil
}

func (a *api) statusPut(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	if _, e := a.authorize(r, RoleRead, name); e != nil {
		return e
	}
	sidecar := r.PathValue("sidecar")
	if err := ValidName(sidecar); err != nil {
		return errorf(http.StatusBadRequest, reasonBadRequest, "sidecar "+err.Error())
	}
	body, e := a.readBody(w, r, maxStatusBody, "status report")
	if e != nil {
		return e
	}
	var sb statusBody
	if err := decodeJSONBody(body, &sb); err != nil {
		return errorf(http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("status of config %q from %q: malformed JSON: %v", name, sidecar, err))
	}
	n, err := parseStatusVersion(sb.Version)
	if err != nil {
		return errorf(http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("status of config %q from %q: %v", name, sidecar, err))
	}
	if !outcomes[sb.Outcome] {
		return errorf(http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("status of config %q from %q: outcome %q: want applied, rejected, rolled_back or failed", name, sidecar, sb.Outcome))
	}
	st := store.SidecarStatus{
		Sidecar: sidecar,
		Version: n,
		Outcome: sb.Outcome,
		Error:   cleanHeaderText(sb.Error, maxStatusError),
		Time:    time.Now().UTC(),
	}
	if sb.Time != nil && !sb.Time.IsZero() {
		st.Time = sb.Time.UTC()
	}
	if err := a.st.SetStatus(r.Context(), name, st); err != nil {
		return storeError(name, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) statusGet(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	if _, e := a.authorize(r, RoleRead, name); e != nil {
		return e
	}
	ctx := r.Context()
	sts, err := a.st.Statuses(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeError(name, err)
	}
	rep := StatusReport{Name: name, Sidecars: sts}
	if rep.Sidecars == nil {
		rep.Sidecars = []store.SidecarStatus{}
	}
	v, err := a.st.Get(ctx, name, 0)
	switch {
	case err == nil:
		rep.Latest = v.Version
	case !errors.Is(err, store.ErrNotFound):
		return storeError(name, err)
	case len(rep.Sidecars) == 0:
		return storeError(name, err)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (a *api) schemaPut(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	if _, e := a.authorize(r, RoleAdmin, name); e != nil {
		return e
	}
	body, e := a.readBody(w, r, a.cfg.MaxSize, fmt.Sprintf("schema %q", name))
	if e != nil {
		return e
	}
	if _, err := compileSchema(name, body); err != nil {
		return errorf(http.StatusUnprocessableEntity, reasonSchema, err.Error())
	}
	if err := a.st.PutSchema(r.Context(), name, bytes.Clone(body)); err != nil {
		return storeError(name, err)
	}
	a.log.Info("schema registered", "config", name, "size", len(body), "token", infoFrom(r.Context()).token)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) schemaGet(w http.ResponseWriter, r *http.Request) *apiError {
	name := r.PathValue("name")
	if _, e := a.authorize(r, RoleRead, name); e != nil {
		return e
	}
	raw, err := a.st.GetSchema(r.Context(), name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &apiError{Code: http.StatusNotFound, Msg: fmt.Sprintf("schema %q: not found", name), Err: err}
		}
		return storeError(name, err)
	}
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	_, _ = w.Write(raw)
	return nil
}
