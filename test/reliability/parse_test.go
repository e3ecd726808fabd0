package reliability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The suite's own parsers (Prometheus text, /proc/net/tcp, file checks) decide
// whether a scenario passes, so they are tested like any other parser.

const metricsSample = `# HELP outrigger_sync_source_errors_total Source failures.
# TYPE outrigger_sync_source_errors_total counter
outrigger_sync_source_errors_total 7
outrigger_sync_source_errors_total_extra 100
outrigger_sync_applies_total{outcome="applied"} 3
outrigger_sync_applies_total{outcome="rolled_back",reason="a}b"} 2
outrigger_sync_applies_total{outcome="failed"} garbage
outrigger_sync_last_success_timestamp_seconds 1.7e9
`

func TestSumMetric(t *testing.T) {
	cases := []struct {
		name, metric string
		want         float64
	}{
		{"plain counter", "outrigger_sync_source_errors_total", 7},
		{"labels summed, garbage skipped", "outrigger_sync_applies_total", 5},
		{"exponent", "outrigger_sync_last_success_timestamp_seconds", 1.7e9},
		{"absent", "outrigger_nope_total", 0},
		{"prefix of another metric only", "outrigger_sync", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sumMetric(metricsSample, tc.metric); got != tc.want {
				t.Fatalf("sumMetric(%s) = %v, want %v", tc.metric, got, tc.want)
			}
		})
	}
}

func FuzzSumMetric(f *testing.F) {
	f.Add(metricsSample, "outrigger_sync_applies_total")
	f.Add("x{a=\"}\"} 1\nx 2", "x")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, body, name string) {
		_ = sumMetric(body, name) // must not panic on any input
	})
}

const tcpSample = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:26AD 00000000:0000 0A 00000000:0000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:0000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F91 0100007F:D431 01 00000000:0000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: 0500007F:1F92 00000000:0000 0A 00000000:0000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
   4: 0100000A:1F93 00000000:0000 0A 00000000:0000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
`

const tcp6Sample = `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:26AE 00000000000000000000000000000000:0000 0A
   1: 0000000000000000FFFF00000100007F:26AF 00000000000000000000000000000000:0000 0A
   2: 00000000000000000000000000000000:26B0 00000000000000000000000000000000:0000 0A
`

func TestParseListeners(t *testing.T) {
	cases := []struct {
		name               string
		table              string
		port               int
		listening, exposed bool
	}{
		{"127.0.0.1 listener", tcpSample, 9901, true, false},
		{"0.0.0.0 listener", tcpSample, 8080, true, true},
		{"established, not listening", tcpSample, 8081, false, false},
		{"127.0.0.5 is loopback", tcpSample, 8082, true, false},
		{"10.0.0.1 is exposed", tcpSample, 8083, true, true},
		{"nothing on port", tcpSample, 1, false, false},
		{"::1", tcp6Sample, 9902, true, false},
		{"::ffff:127.0.0.1", tcp6Sample, 9903, true, false},
		{":: is exposed", tcp6Sample, 9904, true, true},
		{"empty", "", 9901, false, false},
		{"garbage", "header\n0: zz:zz 00:00 0A\n1: 0100007F 0A\n", 9901, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, e := parseListeners(tc.table, tc.port)
			if l != tc.listening || e != tc.exposed {
				t.Fatalf("parseListeners(port %d) = listening %v exposed %v, want %v %v", tc.port, l, e, tc.listening, tc.exposed)
			}
		})
	}
}

func FuzzParseListeners(f *testing.F) {
	f.Add(tcpSample, 9901)
	f.Add(tcp6Sample, 9902)
	f.Add("x\n0: :::: : 0A", 0)
	f.Fuzz(func(t *testing.T, table string, port int) {
		l, e := parseListeners(table, port)
		if e && !l {
			t.Fatal("exposed without listening")
		}
	})
}

func TestQuickCheck(t *testing.T) {
	dir := t.TempDir()
	complete := `{"greeting":"generation 1"}`
	sizes := map[int64]bool{int64(len(complete)): true}
	cases := []struct {
		name    string
		content *string
		bad     string // substring of the problem, "" = fine
	}{
		{"complete", &complete, ""},
		{"absent", nil, ""},
		{"truncated", ptr(complete[:10]), "size"},
		{"right size, wrong end", ptr(strings.Repeat(" ", len(complete))), "last byte"},
		{"empty", ptr(""), "size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			if tc.content != nil {
				if err := os.WriteFile(p, []byte(*tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := quickCheck(p, sizes)
			if (tc.bad == "") != (got == "") || !strings.Contains(got, tc.bad) {
				t.Fatalf("quickCheck = %q, want a problem containing %q", got, tc.bad)
			}
		})
	}
}

func ptr(s string) *string { return &s }
