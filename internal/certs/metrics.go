package certs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/promreg"
)

// Values of the "kind" label of the certificate metrics.
const (
	kindServing  = "serving"
	kindClientCA = "client_ca"
)

// metrics are shared by the serving store and the client-CA pool; the kind
// label tells them apart.
type metrics struct {
	reloads     *prometheus.CounterVec
	expiry      *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrigger_cert_reloads_total",
			Help: "Certificate reload attempts that found changed files, by result (success|failure) and kind (serving|client_ca).",
		}, []string{"kind", "result"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrigger_cert_expiry_timestamp_seconds",
			Help: "NotAfter of the serving leaf certificate (kind=serving) or the earliest-expiring CA (kind=client_ca), as a Unix timestamp.",
		}, []string{"kind"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrigger_cert_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful certificate load, by kind.",
		}, []string{"kind"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.reloads, err = promreg.Register(reg, m.reloads); err != nil {
		return nil, err
	}
	if m.expiry, err = promreg.Register(reg, m.expiry); err != nil {
		return nil, err
	}
	if m.lastSuccess, err = promreg.Register(reg, m.lastSuccess); err != nil {
		return nil, err
	}
	return m, nil
}
