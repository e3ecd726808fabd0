package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// metric indexes the values kept per candidate.
type metric int

const (
	mRPS1k metric = iota
	mP50of1k
	mP99of1k
	mRPS64k
	mP50of64k
	mP99of64k
	mNewConn
	mH2
	mRSSIdle
	mRSSLoad
	mRSSConns
	mAnonIdle
	mAnonConns
	mRSSH2Conns
	nMetrics
)

// candidate is one thing measured: a proxy, or the backend on its own.
type candidate struct {
	Name    string
	Label   string
	samples [nMetrics][]float64
	// Errors counts failed requests over all rounds and scenarios; a
	// non-zero count is flagged next to the numbers.
	Errors int64
	// TLS is the protocol h2load reported, e.g. "TLSv1.3".
	TLS string
}

// median returns the median of m's samples and whether there were any.
func (c *candidate) median(m metric) (float64, bool) {
	return median(c.samples[m])
}

// summary is every candidate's samples from one results directory.
type summary struct {
	Candidates []*candidate
	Baseline   string
	Rounds     int
	Conns      int // idle connections in the RSS scenario
	// Problems are results that could not be read: a candidate that did
	// not start, a tool that failed. They are listed under the table.
	Problems []string
}

// fileRE matches the harness's result files: r<round>.<candidate>.<scenario>.txt.
var fileRE = regexp.MustCompile(`^r([0-9]{1,4})\.([a-z0-9_-]{1,32})\.(h1_1k|h1_64k|newconn|h2|rss)\.txt$`)

// load reads every result file in dir for the named candidates, in that
// order. labels maps a candidate to its display label (default: the name).
func load(dir string, names []string, labels map[string]string, baseline string) (*summary, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("results directory %q: %w", dir, err)
	}
	s := &summary{Baseline: baseline}
	byName := map[string]*candidate{}
	for _, n := range names {
		c := &candidate{Name: n, Label: n}
		if l, ok := labels[n]; ok && l != "" {
			c.Label = l
		}
		byName[n] = c
		s.Candidates = append(s.Candidates, c)
	}
	for _, e := range entries {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue
		}
		c := byName[m[2]]
		if c == nil {
			continue
		}
		round, _ := strconv.Atoi(m[1])
		s.Rounds = max(s.Rounds, round)
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("result %q: %w", path, err)
		}
		if err := s.add(c, m[3], string(b)); err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: %v", e.Name(), err))
		}
	}
	if _, ok := byName[baseline]; !ok && baseline != "" {
		return nil, fmt.Errorf("baseline %q is not one of the candidates %v", baseline, names)
	}
	slices.Sort(s.Problems)
	return s, nil
}

// add parses one result file's text into c.
func (s *summary) add(c *candidate, scenario, text string) error {
	switch scenario {
	case "h1_1k", "h1_64k", "newconn":
		r, err := parseWrk(text)
		if err != nil {
			return err
		}
		c.Errors += r.Errors
		switch scenario {
		case "h1_1k":
			c.samples[mRPS1k] = append(c.samples[mRPS1k], r.RPS)
			c.samples[mP50of1k] = append(c.samples[mP50of1k], r.P50)
			c.samples[mP99of1k] = append(c.samples[mP99of1k], r.P99)
		case "h1_64k":
			c.samples[mRPS64k] = append(c.samples[mRPS64k], r.RPS)
			c.samples[mP50of64k] = append(c.samples[mP50of64k], r.P50)
			c.samples[mP99of64k] = append(c.samples[mP99of64k], r.P99)
		default:
			c.samples[mNewConn] = append(c.samples[mNewConn], r.RPS)
		}
	case "h2":
		r, err := parseH2load(text)
		if err != nil {
			return err
		}
		if r.Protocol != "" && r.Protocol != "h2" {
			return fmt.Errorf("h2load negotiated %q, not h2", r.Protocol)
		}
		c.Errors += r.Failed
		c.TLS = r.TLS
		c.samples[mH2] = append(c.samples[mH2], r.RPS)
	case "rss":
		r, err := parseRSS(text)
		if err != nil {
			return err
		}
		const kib = 1024.0
		if r.Idle > 0 {
			c.samples[mRSSIdle] = append(c.samples[mRSSIdle], r.Idle/kib)
		}
		if r.Load > 0 {
			c.samples[mRSSLoad] = append(c.samples[mRSSLoad], r.Load/kib)
		}
		if r.Conns > 0 {
			c.samples[mRSSConns] = append(c.samples[mRSSConns], r.Conns/kib)
			s.Conns = max(s.Conns, r.N)
		}
		if r.IdleAnon > 0 {
			c.samples[mAnonIdle] = append(c.samples[mAnonIdle], r.IdleAnon/kib)
		}
		if r.ConnsAnon > 0 {
			c.samples[mAnonConns] = append(c.samples[mAnonConns], r.ConnsAnon/kib)
		}
		if r.H2Conns > 0 {
			c.samples[mRSSH2Conns] = append(c.samples[mRSSH2Conns], r.H2Conns/kib)
		}
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	return nil
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// ratio is candidate c's median of m over the baseline's.
func (s *summary) ratio(c *candidate, m metric) (float64, bool) {
	v, ok := c.median(m)
	if !ok {
		return 0, false
	}
	for _, b := range s.Candidates {
		if b.Name == s.Baseline {
			bv, ok := b.median(m)
			if !ok || bv == 0 {
				return 0, false
			}
			return v / bv, true
		}
	}
	return 0, false
}

// markdown renders the table of medians with ratios to the baseline.
func (s *summary) markdown() string {
	var b strings.Builder
	base := s.Baseline
	conns, h2conns := "idle conns", "idle h2 conns"
	if s.Conns > 0 {
		conns = fmt.Sprintf("%s idle TLS conns", group(float64(s.Conns)))
		h2conns = fmt.Sprintf("%s idle h2 conns", group(float64(s.Conns)))
	}
	fmt.Fprintf(&b, "| candidate | h1 1 KiB req/s | ×%[1]s | p50 / p99 ms | h1 64 KiB req/s | ×%[1]s | p50 / p99 ms | new TLS conn/s | ×%[1]s | h2 1 KiB req/s | ×%[1]s | RSS MiB idle / loaded / %[2]s | of which anonymous: idle / %[2]s | RSS MiB, %[3]s |\n", base, conns, h2conns)
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range s.Candidates {
		label := c.Label
		if c.Errors > 0 {
			label += fmt.Sprintf(" (%s failed requests)", group(float64(c.Errors)))
		}
		cells := []string{mdEscape(label)}
		for _, m := range []metric{mRPS1k, mRPS64k, mNewConn, mH2} {
			cells = append(cells, s.cellValue(c, m), s.cellRatio(c, m))
			switch m {
			case mRPS1k:
				cells = append(cells, s.pair(c, mP50of1k, mP99of1k, "%.2f"))
			case mRPS64k:
				cells = append(cells, s.pair(c, mP50of64k, mP99of64k, "%.2f"))
			}
		}
		h2 := "—"
		if v, ok := c.median(mRSSH2Conns); ok {
			h2 = fmt.Sprintf("%.1f", v)
		}
		cells = append(cells, s.triple(c), s.pair(c, mAnonIdle, mAnonConns, "%.1f"), h2)
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	// Say what h2load negotiated, so "TLS 1.3 everywhere" is checked, not assumed.
	var tls []string
	for _, c := range s.Candidates {
		if c.TLS != "" {
			tls = append(tls, c.Name+" "+c.TLS)
		}
	}
	if len(tls) > 0 {
		b.WriteString("\nNegotiated by h2load: " + mdEscape(strings.Join(tls, ", ")) + ".\n")
	}
	return b.String()
}

func (s *summary) cellValue(c *candidate, m metric) string {
	v, ok := c.median(m)
	if !ok {
		return "—"
	}
	return group(v)
}

func (s *summary) cellRatio(c *candidate, m metric) string {
	r, ok := s.ratio(c, m)
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f", r)
}

func (s *summary) pair(c *candidate, a, b metric, format string) string {
	va, oka := c.median(a)
	vb, okb := c.median(b)
	if !oka || !okb {
		return "—"
	}
	return fmt.Sprintf(format+" / "+format, va, vb)
}

func (s *summary) triple(c *candidate) string {
	var parts []string
	for _, m := range []metric{mRSSIdle, mRSSLoad, mRSSConns} {
		if v, ok := c.median(m); ok {
			parts = append(parts, fmt.Sprintf("%.1f", v))
		} else {
			parts = append(parts, "—")
		}
	}
	return strings.Join(parts, " / ")
}

// group formats v rounded to an integer with thousands separators.
func group(v float64) string {
	n := strconv.FormatInt(int64(v+0.5), 10)
	var out []byte
	for i := range len(n) {
		if i > 0 && (len(n)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, n[i])
	}
	return string(out)
}

// mdEscape keeps a label from breaking the table.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
