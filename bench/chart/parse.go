package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// wrkResult is what the harness keeps of one wrk run.
type wrkResult struct {
	RPS      float64 // "Requests/sec:"
	P50, P99 float64 // milliseconds, from "Latency Distribution"
	Requests int64   // "N requests in …"
	Errors   int64   // socket errors plus non-2xx/3xx responses
}

// parseWrk reads wrk's --latency report. Requests/sec is required; the
// latency percentiles are required too because the harness always passes
// --latency, so their absence means the run is not what it claims to be.
func parseWrk(text string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, have50, have99 bool
	inDist := false
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Latency Distribution"):
			inDist = true
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk latency line %q: %w", line, err)
			}
			switch f[0] {
			case "50%", "50.000%":
				r.P50, have50 = d, true
			case "99%", "99.000%":
				r.P99, have99 = d, true
			}
		case strings.HasPrefix(line, "Requests/sec:"):
			inDist = false
			v, err := parseNonNeg(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")))
			if err != nil {
				return r, fmt.Errorf("wrk line %q: %w", line, err)
			}
			r.RPS, haveRPS = v, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			inDist = false
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("wrk line %q: bad request count", line)
			}
			r.Requests = n
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for _, part := range strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("wrk line %q: bad socket error count %q", line, part)
				}
				n, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil || n < 0 {
					return r, fmt.Errorf("wrk line %q: bad socket error count %q", line, part)
				}
				r.Errors += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("wrk line %q: bad count", line)
			}
			r.Errors += n
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("wrk output: %w", err)
	}
	if !haveRPS {
		return r, errors.New(`wrk output: no "Requests/sec:" line (did wrk fail to connect?)`)
	}
	if !have50 || !have99 {
		return r, errors.New("wrk output: no 50%/99% latency lines (run wrk with --latency)")
	}
	if r.Requests == 0 {
		// wrk prints zeros when no request completed: a failure, not a
		// measurement of zero.
		return r, errors.New("wrk output: no request completed")
	}
	return r, nil
}

// parseWrkDuration turns wrk's "523.43us", "3.35ms", "1.02s", "1.50m" into
// milliseconds.
func parseWrkDuration(s string) (float64, error) {
	units := []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := parseNonNeg(num)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			return v * u.ms, nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}

// h2loadResult is what the harness keeps of one h2load run.
type h2loadResult struct {
	RPS       float64 // "finished in …, N req/s"
	Succeeded int64
	Failed    int64 // failed + errored + timeout
	Protocol  string
	TLS       string
}

// parseH2load reads h2load's report.
func parseH2load(text string) (h2loadResult, error) {
	var r h2loadResult
	var haveRPS, haveReq bool
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "finished in "):
			// finished in 1.23s, 162601.63 req/s, 171.33MB/s
			parts := strings.Split(line, ",")
			if len(parts) < 2 {
				return r, fmt.Errorf("h2load line %q: no req/s", line)
			}
			num, ok := strings.CutSuffix(strings.TrimSpace(parts[1]), " req/s")
			if !ok {
				return r, fmt.Errorf("h2load line %q: no req/s", line)
			}
			v, err := parseNonNeg(num)
			if err != nil {
				return r, fmt.Errorf("h2load line %q: %w", line, err)
			}
			r.RPS, haveRPS = v, true
		case strings.HasPrefix(line, "requests:"):
			// requests: 200000 total, 200000 started, 200000 done, 200000 succeeded, 0 failed, 0 errored, 0 timeout
			for _, part := range strings.Split(strings.TrimPrefix(line, "requests:"), ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("h2load line %q: bad field %q", line, part)
				}
				n, err := strconv.ParseInt(kv[0], 10, 64)
				if err != nil || n < 0 {
					return r, fmt.Errorf("h2load line %q: bad count %q", line, part)
				}
				switch kv[1] {
				case "succeeded":
					r.Succeeded = n
				case "failed", "errored", "timeout":
					r.Failed += n
				}
			}
			haveReq = true
		case strings.HasPrefix(line, "Application protocol:"):
			r.Protocol = strings.TrimSpace(strings.TrimPrefix(line, "Application protocol:"))
		case strings.HasPrefix(line, "TLS Protocol:"):
			r.TLS = strings.TrimSpace(strings.TrimPrefix(line, "TLS Protocol:"))
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("h2load output: %w", err)
	}
	if !haveRPS || !haveReq {
		return r, errors.New(`h2load output: no "finished in" or "requests:" line (did h2load fail to connect?)`)
	}
	if r.Succeeded == 0 {
		return r, errors.New("h2load output: no request succeeded")
	}
	return r, nil
}

// rssResult is the memory of one candidate in one round, in KiB.
type rssResult struct {
	Idle  float64 // after start-up, before any load
	Load  float64 // the largest sample taken during the 1 KiB wrk run
	Conns float64 // with the idle TLS connections open
	N     int     // how many idle connections were open
	// H2Conns is the same with as many idle HTTP/2 connections open (one
	// request each over h2).
	H2Conns float64
	// The anonymous part (RssAnon: heap, stacks; not pages of the binary
	// and shared libraries) of Idle and Conns, where recorded.
	IdleAnon, ConnsAnon float64
}

// parseRSS reads the harness's "KEY VALUE" lines: idle_kib, load_kib (one
// per sample; the largest counts), conns_kib, conns, idle_anon_kib,
// conns_anon_kib and h2conns_kib. Unknown keys and
// "#" comments are ignored so the script can add context.
func parseRSS(text string) (rssResult, error) {
	var r rssResult
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return r, fmt.Errorf("rss line %q: want KEY VALUE", line)
		}
		v, err := parseNonNeg(f[1])
		if err != nil {
			return r, fmt.Errorf("rss line %q: %w", line, err)
		}
		switch f[0] {
		case "idle_kib":
			r.Idle = v
		case "load_kib":
			r.Load = max(r.Load, v)
		case "conns_kib":
			r.Conns = v
		case "idle_anon_kib":
			r.IdleAnon = v
		case "conns_anon_kib":
			r.ConnsAnon = v
		case "h2conns_kib":
			r.H2Conns = v
		case "conns":
			if v != float64(int(v)) {
				return r, fmt.Errorf("rss line %q: not an integer", line)
			}
			r.N = int(v)
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("rss file: %w", err)
	}
	return r, nil
}

// parseNonNeg parses a finite, non-negative decimal.
func parseNonNeg(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("number %q: %w", s, err)
	}
	if v < 0 || math.IsNaN(v) || v > 1e18 {
		return 0, fmt.Errorf("number %q: out of range", s)
	}
	return v, nil
}
