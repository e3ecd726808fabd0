package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// latencies summarises a sample of durations.
type latencies struct {
	N             int
	P50, P99, Max time.Duration
}

// summarize sorts a copy of ds and takes nearest-rank percentiles.
func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return latencies{N: len(s), P50: rank(s, 0.50), P99: rank(s, 0.99), Max: s[len(s)-1]}
}

// rank is the nearest-rank percentile p (0 < p ≤ 1) of sorted s.
func rank(s []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// parseGauge finds an unlabelled sample of metric name in Prometheus text
// exposition format and returns its value.
func parseGauge(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("metric %s: no value in %q", name, line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: value in %q: %w", name, line, err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metric %s: %w", name, err)
	}
	return 0, fmt.Errorf("metric %s: not found", name)
}

// parseVmRSS reads the VmRSS line of a /proc/PID/status file, in KiB.
func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want \"N kB\"", sc.Text())
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("VmRSS line %q: bad number", sc.Text())
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line (kernel thread or exited process?)")
}

// rssKiB reads the resident set size of pid.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	defer f.Close()
	n, err := parseVmRSS(f)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return n, nil
}

// bucket is one cumulative histogram bucket: Count observations ≤ LE.
type bucket struct {
	LE    float64
	Count float64
}

// parseHistogram reads the unlabelled-except-le buckets of histogram name
// from Prometheus text format, sorted by bound.
func parseHistogram(r io.Reader, name string) ([]bucket, error) {
	prefix := name + `_bucket{le="`
	var bs []bucket
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		le, rest, ok := strings.Cut(rest, `"}`)
		if !ok {
			return nil, fmt.Errorf("histogram %s: line %q: unterminated le", name, sc.Text())
		}
		bound, err := strconv.ParseFloat(le, 64) // accepts "+Inf"
		if err != nil || math.IsNaN(bound) {
			return nil, fmt.Errorf("histogram %s: line %q: bad le", name, sc.Text())
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("histogram %s: line %q: no count", name, sc.Text())
		}
		n, err := strconv.ParseFloat(f[0], 64)
		if err != nil || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, fmt.Errorf("histogram %s: line %q: bad count", name, sc.Text())
		}
		bs = append(bs, bucket{LE: bound, Count: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("histogram %s: %w", name, err)
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("histogram %s: not found", name)
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmpFloat(a.LE, b.LE) })
	return bs, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// quantileBound is the upper bound of the bucket holding quantile q of the
// observations made between the before and after scrapes; ok=false when
// there were none or the scrapes do not line up (server restarted).
func quantileBound(before, after []bucket, q float64) (float64, bool) {
	if len(after) == 0 || (len(before) != 0 && len(before) != len(after)) {
		return 0, false
	}
	delta := make([]float64, len(after))
	for i, b := range after {
		delta[i] = b.Count
		if len(before) != 0 {
			if before[i].LE != b.LE {
				return 0, false
			}
			delta[i] -= before[i].Count
		}
	}
	total := delta[len(delta)-1]
	if total <= 0 {
		return 0, false
	}
	for i, n := range delta {
		if n >= q*total {
			return after[i].LE, true
		}
	}
	return after[len(after)-1].LE, true
}

// boundMS renders a bucket bound in seconds as "≤ N ms" (or "> last").
func boundMS(le float64, ok bool, lastFinite float64) string {
	switch {
	case !ok:
		return "—"
	case math.IsInf(le, 1):
		return "> " + strconv.FormatFloat(lastFinite*1000, 'f', -1, 64)
	}
	return "≤ " + strconv.FormatFloat(le*1000, 'f', -1, 64)
}
