package sync

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one apply, as reported to the config API and in metrics.
const (
	OutcomeApplied    = "applied"
	OutcomeRejected   = "rejected"
	OutcomeRolledBack = "rolled_back"
	OutcomeFailed     = "failed"
)

type metrics struct {
	versionInfo   *prometheus.GaugeVec
	versionNumber prometheus.Gauge
	applies       *prometheus.CounterVec
	reloadSeconds prometheus.Histogram
	lastSuccess   prometheus.Gauge
	sourceErrors  prometheus.Counter
	lastSourceOK  prometheus.Gauge

	// versionNumberReg registers versionNumber on first use; only the
	// apply loop touches these two fields.
	versionNumberReg prometheus.Registerer
	versionNumberOn  bool
}

// newMetrics registers the sync metrics on reg. Every metric carries a dest
// label so that several sync roles in one process (outrigger run) can share
// a registry.
func newMetrics(reg prometheus.Registerer, dest string) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry() // not exported anywhere
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"dest": dest}, reg)
	m := &metrics{
		versionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrigger_sync_applied_version_info",
			Help: "Always 1, labelled with the version of the config in effect.",
		}, []string{"version"}),
		versionNumber: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrigger_sync_applied_version",
			Help: "The numeric version of the config in effect (config API version, etcd revision); absent for hash versions.",
		}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrigger_sync_applies_total",
			Help: "Apply transactions by outcome: applied, rejected (validation), rolled_back, failed.",
		}, []string{"outcome"}),
		reloadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "outrigger_sync_reload_duration_seconds",
			Help:    "Time to tell the app to reload, retries included.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30},
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrigger_sync_last_success_timestamp_seconds",
			Help: "Unix time of the last successful apply.",
		}),
		sourceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrigger_sync_source_errors_total",
			Help: "Failed reads or watches of the source.",
		}),
		lastSourceOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrigger_sync_source_last_success_timestamp_seconds",
			Help: "Unix time the source last answered; now minus this is the staleness.",
		}),
	}
	for _, o := range []string{OutcomeApplied, OutcomeRejected, OutcomeRolledBack, OutcomeFailed} {
		m.applies.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{m.versionInfo, m.applies, m.reloadSeconds, m.lastSuccess, m.sourceErrors, m.lastSourceOK} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("sync: metrics for --dest %q registered twice: %w", dest, err)
			}
			return nil, fmt.Errorf("sync: register metrics: %w", err)
		}
	}
	// The numeric gauge is registered lazily, on the first numeric version,
	// so hash-versioned sources do not export a meaningless 0.
	m.versionNumberReg = reg
	return m, nil
}

// setVersion records the version in effect.
func (m *metrics) setVersion(v string) {
	m.versionInfo.Reset()
	m.versionInfo.WithLabelValues(v).Set(1)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if !m.versionNumberOn {
			m.versionNumberOn = m.versionNumberReg.Register(m.versionNumber) == nil
		}
		m.versionNumber.Set(float64(n))
	}
}
