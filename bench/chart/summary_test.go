package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
		ok   bool
	}{
		{name: "empty", in: nil, ok: false},
		{name: "one", in: []float64{3}, want: 3, ok: true},
		{name: "odd unsorted", in: []float64{9, 1, 5}, want: 5, ok: true},
		{name: "even", in: []float64{4, 1, 3, 2}, want: 2.5, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := median(tc.in)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("median(%v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 {
		t.Error("median sorted its input in place")
	}
}

func TestGroup(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 999.5: "1,000", 18437.14: "18,437", 1234567: "1,234,567"} {
		if got := group(in); got != want {
			t.Errorf("group(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadTestdata(t *testing.T) {
	labels, err := readLabels("testdata/results/labels.tsv")
	if err != nil {
		t.Fatal(err)
	}
	s, err := load("testdata/results", []string{"nginx", "haproxy", "outrigger", "direct", "absent"}, labels, "nginx")
	if err != nil {
		t.Fatal(err)
	}
	if s.Rounds != 3 {
		t.Errorf("rounds = %d, want 3", s.Rounds)
	}
	nginx := s.Candidates[0]
	if got := nginx.samples[mRPS1k]; len(got) != 3 {
		t.Fatalf("nginx 1k samples %v, want 3", got)
	}
	if v, _ := nginx.median(mRPS1k); v != 100 {
		t.Errorf("nginx median 1k = %v, want 100", v)
	}
	if r, ok := s.ratio(nginx, mRPS1k); !ok || r != 1 {
		t.Errorf("baseline ratio = %v, %v", r, ok)
	}
	if s.Conns != 200 {
		t.Errorf("conns = %d, want 200", s.Conns)
	}
	// r1.haproxy.h1_1k.txt is a real wrk run that completed no request, and
	// r2.outrigger.h1_1k.txt is garbage: both are problems, not zeros.
	wantProblems := []string{"r1.haproxy.h1_1k.txt: wrk output: no request completed", "r2.outrigger.h1_1k.txt:"}
	if len(s.Problems) != len(wantProblems) {
		t.Fatalf("problems %q, want %d", s.Problems, len(wantProblems))
	}
	for i, p := range wantProblems {
		if !strings.HasPrefix(s.Problems[i], p) {
			t.Errorf("problem %d = %q, want prefix %q", i, s.Problems[i], p)
		}
	}
	if _, ok := s.Candidates[1].median(mRPS1k); ok {
		t.Error("haproxy has a 1k median from a failed run")
	}

	md := s.markdown()
	for _, want := range []string{
		"| nginx 1.22.1, 1 worker, upstream keepalive 64 | 100 | 1.00 |",
		"| absent | — | — | — |",
		"200 idle TLS conns",
		"| 60.0 |", // outrigger's h2 column
		"RSS MiB, 200 idle h2 conns |",
		"| direct to the backend",
		"Negotiated by h2load: nginx TLSv1.3, outrigger TLSv1.3.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(md, "\n"); n != 2+5+2 {
		t.Errorf("markdown has %d lines, want 9:\n%s", n, md)
	}
	checkSVG(t, s.svg("title <&> \"quoted\"", "sub & title"), 5)
}

// checkSVG parses the document as XML and counts legend entries.
func checkSVG(t *testing.T, doc string, candidates int) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(doc))
	rects, texts := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "rect":
				rects++
			case "text":
				texts++
			}
		}
	}
	if rects < candidates+1 {
		t.Errorf("SVG has %d rects, want at least %d", rects, candidates+1)
	}
	if !strings.Contains(doc, "title &lt;&amp;&gt; &quot;quoted&quot;") {
		t.Error("title not escaped")
	}
}

func TestSVGEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		s    *summary
	}{
		{name: "no candidates", s: &summary{Baseline: "nginx"}},
		{name: "no samples", s: &summary{Baseline: "nginx", Candidates: []*candidate{{Name: "nginx"}, {Name: "x<y"}}}},
		{name: "baseline zero", s: func() *summary {
			c := &candidate{Name: "nginx"}
			c.samples[mRPS1k] = []float64{0}
			return &summary{Baseline: "nginx", Candidates: []*candidate{c}}
		}()},
		{name: "many candidates", s: func() *summary {
			s := &summary{Baseline: "c0"}
			for i := range 12 {
				c := &candidate{Name: "c" + string(rune('0'+i))}
				c.samples[mRPS1k] = []float64{float64(i + 1)}
				c.samples[mRSSIdle] = []float64{float64(i)}
				s.Candidates = append(s.Candidates, c)
			}
			return s
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.s.svg("t", "")
			if err := xml.Unmarshal([]byte(doc), new(struct{})); err != nil {
				t.Fatalf("not XML: %v", err)
			}
			if strings.Contains(doc, "NaN") || strings.Contains(doc, "Inf") {
				t.Fatalf("SVG contains NaN/Inf:\n%s", doc)
			}
			_ = tc.s.markdown()
		})
	}
}

func TestSVGClipsOutliers(t *testing.T) {
	base := &candidate{Name: "nginx"}
	base.samples[mRPS1k] = []float64{100}
	out := &candidate{Name: "direct"}
	out.samples[mRPS1k] = []float64{800}
	doc := (&summary{Baseline: "nginx", Candidates: []*candidate{base, out}}).svg("t", "")
	if !strings.Contains(doc, ">8.00↑<") {
		t.Errorf("outlier not marked as cut:\n%s", doc)
	}
	if strings.Contains(doc, `>10</text>`) {
		t.Error("axis was not capped at 3×")
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, -3: 1, 0.8: 1, 1: 1, 1.1: 2, 2.3: 2.5, 3: 5, 7: 10, 130: 200, 290.72: 500} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	md, svg := filepath.Join(dir, "t.md"), filepath.Join(dir, "c.svg")
	var out strings.Builder
	err := run([]string{"--dir", "testdata/results", "--candidates", "nginx,outrigger", "--md", md, "--svg", svg}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(md)
	if err != nil || string(b) != out.String() {
		t.Fatalf("md file %q (%v) differs from stdout %q", b, err, out.String())
	}
	if !strings.Contains(out.String(), "Results that could not be read") {
		t.Error("problems not listed")
	}
	if _, err := os.Stat(svg); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no dir", args: nil, want: "--dir is required"},
		{name: "missing dir", args: []string{"--dir", "/nonexistent/results"}, want: `results directory "/nonexistent/results"`},
		{name: "baseline not a candidate", args: []string{"--dir", "testdata/results", "--candidates", "outrigger"}, want: `baseline "nginx"`},
		{name: "no candidates", args: []string{"--dir", "testdata/results", "--candidates", " , "}, want: "no candidates"},
		{name: "missing labels", args: []string{"--dir", "testdata/results", "--labels", "/nonexistent/l.tsv"}, want: `--labels "/nonexistent/l.tsv"`},
		{name: "unwritable svg", args: []string{"--dir", "testdata/results", "--svg", "/nonexistent/dir/c.svg"}, want: "--svg"},
		{name: "stray argument", args: []string{"--dir", "x", "y"}, want: "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseLabels(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "ok", in: "nginx\tnginx 1.22\n\n# c\ncaddy\t Caddy 2 \n", want: map[string]string{"nginx": "nginx 1.22", "caddy": "Caddy 2"}},
		{name: "no tab", in: "nginx nginx\n", wantErr: "line 1"},
		{name: "empty name", in: "\tlabel\nx\ty\n", wantErr: "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLabels(strings.NewReader(tc.in), "l.tsv")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}
