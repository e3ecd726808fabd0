package main

import (
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs srv on 127.0.0.1:0 and returns its URL.
func serve(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name          string
		in            []time.Duration
		p50, p99, max time.Duration
	}{
		{name: "empty"},
		{name: "one", in: []time.Duration{5 * ms}, p50: 5 * ms, p99: 5 * ms, max: 5 * ms},
		{name: "unsorted", in: []time.Duration{3 * ms, 1 * ms, 2 * ms}, p50: 2 * ms, p99: 3 * ms, max: 3 * ms},
		{name: "hundred", in: func() []time.Duration {
			var d []time.Duration
			for i := 100; i >= 1; i-- {
				d = append(d, time.Duration(i)*ms)
			}
			return d
		}(), p50: 50 * ms, p99: 99 * ms, max: 100 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(tc.in)
			if got.P50 != tc.p50 || got.P99 != tc.p99 || got.Max != tc.max || got.N != len(tc.in) {
				t.Fatalf("got %+v, want p50 %v p99 %v max %v", got, tc.p50, tc.p99, tc.max)
			}
		})
	}
}

const metricsSample = `# HELP outrigger_config_watchers Long-poll watchers currently waiting.
# TYPE outrigger_config_watchers gauge
outrigger_config_watchers_total_bogus 7
outrigger_config_watchers 1234
outrigger_config_watch_wake_seconds_bucket{le="0.001"} 3
`

func TestParseGauge(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    float64
		wantErr string
	}{
		{name: "found", text: metricsSample, want: 1234},
		{name: "with timestamp", text: "outrigger_config_watchers 5 1700000000000\n", want: 5},
		{name: "missing", text: "other 1\n", wantErr: "not found"},
		{name: "prefix only", text: "outrigger_config_watchers_x 1\n", wantErr: "not found"},
		{name: "no value", text: "outrigger_config_watchers \n", wantErr: "no value"},
		{name: "bad value", text: "outrigger_config_watchers many\n", wantErr: "value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGauge(strings.NewReader(tc.text), "outrigger_config_watchers")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    int64
		wantErr string
	}{
		{name: "ok", text: "Name:\tx\nVmRSS:\t   12345 kB\nThreads: 1\n", want: 12345},
		{name: "missing", text: "Name:\tkthreadd\n", wantErr: "no VmRSS"},
		{name: "bad unit", text: "VmRSS: 12 MB\n", wantErr: "want"},
		{name: "bad number", text: "VmRSS: x kB\n", wantErr: "bad number"},
		{name: "negative", text: "VmRSS: -1 kB\n", wantErr: "bad number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS(strings.NewReader(tc.text))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestETagVersion(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{`"7"`, 7, false}, {`W/"12"`, 12, false}, {` "3" `, 3, false},
		{`7`, 0, true}, {`""`, 0, true}, {`"0"`, 0, true}, {`"-1"`, 0, true}, {`"x"`, 0, true}, {``, 0, true}, {`"`, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := etagVersion(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("etagVersion(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func FuzzParseGauge(f *testing.F) {
	f.Add(metricsSample)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseGauge(strings.NewReader(s), "outrigger_config_watchers")
	})
}

func FuzzParseVmRSS(f *testing.F) {
	f.Add("VmRSS:\t 1 kB\n")
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseVmRSS(strings.NewReader(s)); err == nil && n < 0 {
			t.Fatalf("negative RSS %d accepted", n)
		}
	})
}

func FuzzETagVersion(f *testing.F) {
	f.Add(`"7"`)
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := etagVersion(s); err == nil && v < 1 {
			t.Fatalf("version %d accepted from %q", v, s)
		}
	})
}

const histSample = `# TYPE outrigger_config_watch_wake_seconds histogram
outrigger_config_watch_wake_seconds_bucket{le="0.001"} 10
outrigger_config_watch_wake_seconds_bucket{le="0.0005"} 4
outrigger_config_watch_wake_seconds_bucket{le="0.01"} 90
outrigger_config_watch_wake_seconds_bucket{le="+Inf"} 100
outrigger_config_watch_wake_seconds_sum 0.4
outrigger_config_watch_wake_seconds_count 100
`

func TestParseHistogram(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		n       int
		wantErr string
	}{
		{name: "sorted by bound", text: histSample, n: 4},
		{name: "missing", text: "other 1\n", wantErr: "not found"},
		{name: "unterminated", text: `outrigger_config_watch_wake_seconds_bucket{le="0.1 3` + "\n", wantErr: "unterminated"},
		{name: "bad le", text: `outrigger_config_watch_wake_seconds_bucket{le="x"} 3` + "\n", wantErr: "bad le"},
		{name: "no count", text: `outrigger_config_watch_wake_seconds_bucket{le="1"}` + "\n", wantErr: "no count"},
		{name: "negative count", text: `outrigger_config_watch_wake_seconds_bucket{le="1"} -1` + "\n", wantErr: "bad count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs, err := parseHistogram(strings.NewReader(tc.text), wakeHistogram)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(bs) != tc.n {
				t.Fatalf("got %v, %v", bs, err)
			}
			for i := 1; i < len(bs); i++ {
				if bs[i-1].LE > bs[i].LE {
					t.Fatalf("not sorted: %v", bs)
				}
			}
		})
	}
}

func TestQuantileBound(t *testing.T) {
	after, err := parseHistogram(strings.NewReader(histSample), wakeHistogram)
	if err != nil {
		t.Fatal(err)
	}
	before := []bucket{{0.0005, 4}, {0.001, 10}, {0.01, 10}, {math.Inf(1), 10}} // only the last 90 count
	tests := []struct {
		name   string
		before []bucket
		q      float64
		want   float64
		ok     bool
	}{
		{name: "p50 all", q: 0.5, want: 0.01, ok: true},
		{name: "p10 all", q: 0.1, want: 0.001, ok: true},
		{name: "p99 all", q: 0.99, want: math.Inf(1), ok: true},
		{name: "p50 delta", before: before, q: 0.5, want: 0.01, ok: true},
		{name: "mismatched", before: before[:2], q: 0.5, ok: false},
		{name: "no new observations", before: after, q: 0.5, ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := quantileBound(tc.before, after, tc.q)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("got %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if got := boundMS(0.0025, true, 2.5); got != "≤ 2.5" {
		t.Errorf("boundMS = %q", got)
	}
	if got := boundMS(math.Inf(1), true, 2.5); got != "> 2500" {
		t.Errorf("boundMS(+Inf) = %q", got)
	}
	if got := boundMS(0, false, 2.5); got != "—" {
		t.Errorf("boundMS(!ok) = %q", got)
	}
}

func FuzzParseHistogram(f *testing.F) {
	f.Add(histSample)
	f.Fuzz(func(t *testing.T, s string) {
		bs, err := parseHistogram(strings.NewReader(s), wakeHistogram)
		if err != nil {
			return
		}
		for _, b := range bs {
			if b.Count < 0 || math.IsNaN(b.LE) {
				t.Fatalf("bad bucket %+v", b)
			}
		}
		_, _ = quantileBound(nil, bs, 0.99)
	})
}
