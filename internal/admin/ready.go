package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// result is the outcome of one readiness check.
type result struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// runChecks runs every check concurrently and waits up to checkTimeout (or
// until ctx ends). A check that has not answered by then is reported as
// failing; its goroutine is left to finish on its own, writing into a
// buffered channel, so it never blocks.
func runChecks(ctx context.Context, checks []Check) []result {
	results := make([]result, len(checks))
	if len(checks) == 0 {
		return results
	}
	type done struct {
		i   int
		err error
	}
	ch := make(chan done, len(checks))
	for i, c := range checks {
		results[i] = result{Name: c.Name, Error: fmt.Sprintf("no answer within %v", checkTimeout)}
		go func() {
			ch <- done{i, callCheck(c)}
		}()
	}
	timer := time.NewTimer(checkTimeout)
	defer timer.Stop()
	for range checks {
		select {
		case d := <-ch:
			results[d.i].OK = d.err == nil
			results[d.i].Error = ""
			if d.err != nil {
				results[d.i].Error = d.err.Error()
			}
		case <-timer.C:
			return results
		case <-ctx.Done():
			return results
		}
	}
	return results
}

// callCheck runs one check, turning a nil func or a panic into an error.
func callCheck(c Check) (err error) {
	if c.Ready == nil {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	return c.Ready()
}

// allOK reports whether every result passed.
func allOK(rs []result) bool {
	for _, r := range rs {
		if !r.OK {
			return false
		}
	}
	return true
}

// readyz answers 200 "ready" when every check passes and 503 otherwise,
// with one line per failing check ("[-] name: reason"); ?verbose lists
// passing checks too ("[+] name ok"), like Kubernetes' own /readyz.
func readyz(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		noCache(w)
		rs := runChecks(r.Context(), checks)
		verbose := r.URL.Query().Has("verbose")
		var b strings.Builder
		for _, res := range rs {
			switch {
			case !res.OK:
				fmt.Fprintf(&b, "[-] %s: %s\n", res.Name, oneLine(res.Error))
			case verbose:
				fmt.Fprintf(&b, "[+] %s ok\n", res.Name)
			}
		}
		code := http.StatusOK
		if allOK(rs) {
			b.WriteString("ready\n")
		} else {
			code = http.StatusServiceUnavailable
			b.WriteString("not ready\n")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(b.String()))
	}
}

// oneLine keeps a multi-line error on its line of the report.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
