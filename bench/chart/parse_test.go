package main

import (
	"math"
	"os"
	"strings"
	"testing"
)

const wrkSample = `Running 10s test @ https://127.0.0.1:8443/1k
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.46ms  523.43us   9.82ms   87.23%
    Req/Sec    18.54k     1.05k   19.90k    85.00%
  Latency Distribution
     50%  850.00us
     75%    3.57ms
     90%    3.88ms
     99%    1.20s
  36889 requests in 2.00s, 41.15MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  18437.14
Transfer/sec:     20.57MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    wrkResult
		wantErr string
	}{
		{name: "full report", text: wrkSample, want: wrkResult{RPS: 18437.14, P50: 0.85, P99: 1200, Requests: 36889, Errors: 15}},
		{name: "no latency", text: "  10 requests in 1s\nRequests/sec: 10\n", wantErr: "--latency"},
		{name: "no rps", text: "unable to connect to 127.0.0.1:8443 Connection refused\n", wantErr: "Requests/sec"},
		{name: "empty", text: "", wantErr: "Requests/sec"},
		{name: "zero requests", text: strings.Replace(wrkSample, "36889 requests", "0 requests", 1), wantErr: "no request completed"},
		{name: "bad unit", text: strings.Replace(wrkSample, "850.00us", "850.00ns", 1), wantErr: `duration "850.00ns"`},
		{name: "negative rps", text: strings.Replace(wrkSample, "18437.14", "-1", 1), wantErr: "out of range"},
		{name: "NaN rps", text: strings.Replace(wrkSample, "18437.14", "NaN", 1), wantErr: "out of range"},
		{name: "infinite latency", text: strings.Replace(wrkSample, "1.20s", "+Infs", 1), wantErr: "out of range"},
		{name: "bad socket errors", text: strings.Replace(wrkSample, "timeout 4", "timeout x", 1), wantErr: "socket error"},
		{name: "bad socket error shape", text: strings.Replace(wrkSample, "timeout 4", "timeout", 1), wantErr: "socket error"},
		{name: "bad non-2xx", text: strings.Replace(wrkSample, "responses: 5", "responses: five", 1), wantErr: "bad count"},
		{name: "bad request count", text: strings.Replace(wrkSample, "36889 requests", "-3 requests", 1), wantErr: "bad request count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !approx(got.RPS, tc.want.RPS) || !approx(got.P50, tc.want.P50) || !approx(got.P99, tc.want.P99) ||
				got.Requests != tc.want.Requests || got.Errors != tc.want.Errors {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  bool
	}{
		{"523.43us", 0.52343, false}, {"3.35ms", 3.35, false}, {"1.02s", 1020, false},
		{"1.50m", 90000, false}, {"1.00h", 3600000, false}, {"0.00us", 0, false},
		{"12", 0, true}, {"ms", 0, true}, {"-1ms", 0, true}, {"1.0.0ms", 0, true}, {"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWrkDuration(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if err == nil && !approx(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

const h2loadSample = `starting benchmark...
spawning thread #0: 32 total client(s). 200000 total requests
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
progress: 100% done

finished in 3.46s, 5776.41 req/s, 5.76MB/s
requests: 200000 total, 200000 started, 200000 done, 199990 succeeded, 7 failed, 2 errored, 1 timeout
status codes: 199990 2xx, 0 3xx, 0 4xx, 0 5xx
`

func TestParseH2load(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    h2loadResult
		wantErr string
	}{
		{name: "full report", text: h2loadSample, want: h2loadResult{RPS: 5776.41, Succeeded: 199990, Failed: 10, Protocol: "h2", TLS: "TLSv1.3"}},
		{name: "connect failure", text: "No protocol negotiated. Aborted.\n", wantErr: "finished in"},
		{name: "no req/s", text: strings.Replace(h2loadSample, " 5776.41 req/s", " fast", 1), wantErr: "no req/s"},
		{name: "no comma", text: "finished in 3s\nrequests: 1 succeeded\n", wantErr: "no req/s"},
		{name: "bad count", text: strings.Replace(h2loadSample, "7 failed", "x failed", 1), wantErr: "bad count"},
		{name: "bad field", text: strings.Replace(h2loadSample, "7 failed", "failed", 1), wantErr: "bad field"},
		{name: "nothing succeeded", text: strings.Replace(h2loadSample, "199990 succeeded", "0 succeeded", 1), wantErr: "no request succeeded"},
		{name: "negative rps", text: strings.Replace(h2loadSample, "5776.41 req/s", "-5 req/s", 1), wantErr: "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseH2load(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    rssResult
		wantErr string
	}{
		{name: "all keys", text: "idle_kib 100\nload_kib 150\nload_kib 300\nload_kib 200\nconns_kib 400\nconns 1000\n", want: rssResult{Idle: 100, Load: 300, Conns: 400, N: 1000}},
		{name: "anonymous parts", text: "idle_kib 100\nidle_anon_kib 40\nconns_kib 400\nconns_anon_kib 330\n", want: rssResult{Idle: 100, Conns: 400, IdleAnon: 40, ConnsAnon: 330}},
		{name: "h2 connections", text: "conns_kib 400\nh2conns_kib 550\nconns 1000\n", want: rssResult{Conns: 400, H2Conns: 550, N: 1000}},
		{name: "comments and unknown keys", text: "# nginx did not start\n\nother 5\n", want: rssResult{}},
		{name: "three fields", text: "idle_kib 1 2\n", wantErr: "want KEY VALUE"},
		{name: "not a number", text: "idle_kib lots\n", wantErr: "number"},
		{name: "negative", text: "load_kib -4\n", wantErr: "out of range"},
		{name: "fractional conns", text: "conns 1.5\n", wantErr: "not an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRSS(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRealOutputs parses the raw files of an actual run of bench/run.sh.
func TestRealOutputs(t *testing.T) {
	for _, f := range []string{"r1.nginx.h1_1k.txt", "r1.outrigger.h1_64k.txt", "r1.direct.newconn.txt"} {
		b, err := os.ReadFile("testdata/results/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseWrk(string(b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, err := os.ReadFile("testdata/results/r1.outrigger.h2.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseH2load(string(b))
	if err != nil || r.Protocol != "h2" || r.TLS != "TLSv1.3" {
		t.Errorf("h2load: %+v, %v", r, err)
	}
}

func FuzzParseWrk(f *testing.F) {
	f.Add(wrkSample)
	f.Add("Latency Distribution\n 50% 1ms\n 99% 2ms\n 1 requests in 1s\nRequests/sec: 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseWrk(s)
		if err == nil && (r.RPS < 0 || r.P50 < 0 || r.P99 < 0 || r.Requests <= 0 || math.IsNaN(r.RPS) || math.IsInf(r.P99, 0)) {
			t.Fatalf("accepted impossible result %+v", r)
		}
	})
}

func FuzzParseH2load(f *testing.F) {
	f.Add(h2loadSample)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseH2load(s)
		if err == nil && (r.RPS < 0 || r.Succeeded <= 0 || r.Failed < 0 || math.IsNaN(r.RPS)) {
			t.Fatalf("accepted impossible result %+v", r)
		}
	})
}

func FuzzParseRSS(f *testing.F) {
	f.Add("idle_kib 100\nload_kib 150\nconns_kib 400\nconns 1000\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRSS(s)
		if err == nil && (r.Idle < 0 || r.Load < 0 || r.Conns < 0 || r.N < 0) {
			t.Fatalf("accepted impossible result %+v", r)
		}
	})
}

func FuzzParseLabels(f *testing.F) {
	f.Add("nginx\tnginx 1.22\n# comment\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseLabels(strings.NewReader(s), "fuzz")
		if err == nil {
			for k := range m {
				if k == "" || strings.Contains(k, "\t") {
					t.Fatalf("bad key %q", k)
				}
			}
		}
	})
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }
