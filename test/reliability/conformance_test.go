package reliability

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
)

// h2specAllowed lists h2spec cases (by "package/classname" as in the JUnit
// report) that may fail, each with the reason. Every entry is a gap in the
// HTTP/2 server the proxy is built on (Go's net/http bundled
// golang.org/x/net/http2): fixing one means validating frames before Go's
// server sees them. Remove an entry as soon as it passes; the test logs
// entries that pass so the list can shrink. RELIABILITY_STRICT_H2SPEC=1
// ignores the list (the goal in /work/shared/ANCHORS.md: all 145 pass).
var h2specAllowed = map[string]string{
	// Empty: the proxy passes all 145 cases. Entries look like
	// "http2/8.1.2.2/Sends a HEADERS frame that contains the connection-specific header field": "why it may fail".
}

// junit is the part of h2spec's JUnit XML report the test reads.
type junit struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Package   string    `xml:"package,attr"`
			Classname string    `xml:"classname,attr"`
			Failure   *struct{} `xml:"failure"`
			Error     *struct{} `xml:"error"`
			Skipped   *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestH2spec runs the h2spec HTTP/2 conformance suite against the proxy
// (--h2, the default) and asserts every case passes unless allow-listed.
func TestH2spec(t *testing.T) {
	h2spec := requireTool(t, "h2spec")
	dir := t.TempDir()
	appAddr := freeAddr(t)
	startApp(t, dir, appAddr, "hello h2spec")
	p := startProxy(t, freeAddr(t), "http://"+appAddr, insecureTLS(), "--h2")
	_, port, _ := strings.Cut(p.listen, ":")
	reportFile := filepath.Join(dir, "h2spec.xml")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, h2spec, "-t", "-k", "-h", "127.0.0.1", "-p", port,
		"-o", "3", "-j", reportFile).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("h2spec did not finish in 3 minutes:\n%s", tail(out, 3000))
	}
	// h2spec exits 1 when any case fails; the report says which.
	data, rerr := os.ReadFile(reportFile)
	if rerr != nil {
		t.Fatalf("h2spec wrote no report (%v, run error %v):\n%s", rerr, err, tail(out, 3000))
	}
	var rep junit
	if err := xml.Unmarshal(data, &rep); err != nil {
		t.Fatalf("parse h2spec JUnit report: %v", err)
	}
	strict := os.Getenv("RELIABILITY_STRICT_H2SPEC") == "1"
	total, passed, allowed := 0, 0, 0
	var passingAllowed []string
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			total++
			key := c.Package + "/" + c.Classname
			failed := c.Failure != nil || c.Error != nil || c.Skipped != nil
			reason, ok := h2specAllowed[key]
			switch {
			case !failed:
				passed++
				if ok {
					passingAllowed = append(passingAllowed, key)
				}
			case ok && !strict:
				allowed++
				t.Logf("allowed h2spec failure %s: %s", key, reason)
			default:
				t.Errorf("h2spec case failed: %s", key)
			}
		}
	}
	if total == 0 {
		t.Fatalf("h2spec report lists no cases:\n%s", tail(out, 3000))
	}
	for _, k := range passingAllowed {
		t.Logf("allow-listed h2spec case now passes, remove it from h2specAllowed: %s", k)
	}
	reportCounts(t, "h2spec", int64(total), int64(total-passed), fmt.Sprintf("cases=%d passed=%d allowed-failures=%d", total, passed, allowed))
	if t.Failed() {
		t.Logf("h2spec output:\n%s", tail(out, 6000))
	}
}

// testsslAllowed lists testssl.sh finding ids that may be MEDIUM or worse,
// with the reason: each is inherent to a test certificate or belongs to the
// app, not to the proxy's TLS.
var testsslAllowed = map[string]string{
	"cert_revocation":  "the test CA publishes no CRL or OCSP responder; revocation is the issuing CA's business, not the proxy's",
	"security_headers": "X-Frame-Options, X-Content-Type-Options and the like are the app's response headers, which the proxy passes through unchanged (the stand-in app sends none)",
	"OCSP_stapling":    "no OCSP responder exists for the test CA, so there is nothing to staple",
}

// testsslFinding is one entry of testssl.sh's --jsonfile output.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// TestTestssl scans the proxy's TLS with testssl.sh (protocols, cipher
// lists, forward secrecy, server preferences, defaults, headers, known
// vulnerabilities) using a certificate from a test CA that testssl is told
// to trust, and asserts no finding is MEDIUM, HIGH or CRITICAL unless
// allow-listed. It takes about a minute; skipped with -short.
func TestTestssl(t *testing.T) {
	if testing.Short() {
		t.Skip("testssl.sh scans for about a minute; skipped with -short")
	}
	testssl := requireTool(t, "testssl", "testssl.sh")
	dir := t.TempDir()
	ca := certstest.NewCA(t, "reliability testssl CA")
	// 90 days: a real certificate's lifetime, so testssl's expiry checks
	// (HIGH under 30 days) judge the proxy, not the fixture.
	leaf := ca.Issue(t, certstest.LeafOpts{NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	certFile, keyFile := certstest.WritePair(t, dir, leaf)
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(ca.PEM))
	appAddr := freeAddr(t)
	startApp(t, dir, appAddr, "hello testssl")
	p := startProxy(t, freeAddr(t), "http://"+appAddr, insecureTLS(), "--cert", certFile, "--key", keyFile, "--hsts")

	jsonFile := filepath.Join(dir, "testssl.json")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testssl, "-p", "-s", "-f", "-P", "-S", "-h", "-U",
		"--add-ca", caFile, "--jsonfile", jsonFile, "--warnings", "off", "--quiet", "--color", "0",
		"--connect-timeout", "10", "--openssl-timeout", "10", "--ip", "one", p.listen)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("testssl.sh did not finish in 5 minutes:\n%s", tail(out, 3000))
	}
	data, rerr := os.ReadFile(jsonFile)
	if rerr != nil {
		t.Fatalf("testssl.sh wrote no JSON (%v, run error %v):\n%s", rerr, err, tail(out, 3000))
	}
	var findings []testsslFinding
	if err := json.Unmarshal(data, &findings); err != nil {
		t.Fatalf("parse testssl.sh JSON %s: %v", jsonFile, err)
	}
	counts := map[string]int{}
	for _, f := range findings {
		counts[f.Severity]++
		switch f.Severity {
		case "MEDIUM", "HIGH", "CRITICAL":
		default:
			continue
		}
		if reason, ok := testsslAllowed[f.ID]; ok {
			t.Logf("allowed testssl finding %s %s (%s): %s", f.Severity, f.ID, f.Finding, reason)
			continue
		}
		t.Errorf("testssl finding %s %s: %s", f.Severity, f.ID, f.Finding)
	}
	if len(findings) < 20 {
		t.Fatalf("testssl.sh reported only %d findings: the scan did not run properly:\n%s", len(findings), tail(out, 3000))
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	bad := int64(counts["MEDIUM"] + counts["HIGH"] + counts["CRITICAL"])
	reportCounts(t, "testssl", int64(len(findings)), bad, fmt.Sprintf("findings=%d %s (failed = MEDIUM+ findings incl. %d allow-listed)", len(findings), strings.Join(parts, " "), bad))
	if t.Failed() {
		t.Logf("testssl.sh output:\n%s", tail(out, 6000))
	}
}

// tail returns the last n bytes of b as a string.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
