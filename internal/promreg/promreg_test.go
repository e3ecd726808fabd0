package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterSharesAndRefuses(t *testing.T) {
	reg := prometheus.NewRegistry()
	mk := func() prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "outrigger_test_total", Help: "h"})
	}
	a, err := Register(reg, mk())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(reg, mk())
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("a second identical collector should be the first one")
	}
	a.Inc()
	if got := testutilValue(t, reg); got != 1 {
		t.Fatalf("value %v", got)
	}
	// Same name, different help: a real conflict is an error.
	if _, err := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "outrigger_test_total", Help: "other"})); err == nil {
		t.Fatal("conflicting descriptor accepted")
	}
	if c, err := Register(nil, mk()); err != nil || c == nil {
		t.Fatalf("nil registry: %v %v", c, err)
	}
}

func testutilValue(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "outrigger_test_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("metric not gathered")
	return 0
}
