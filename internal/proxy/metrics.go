package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/promreg"
)

// metrics of the role itself; request metrics live in package forward and
// certificate metrics in package certs.
type metrics struct {
	openConns       prometheus.Gauge
	parkedConns     prometheus.Gauge
	handshakeErrors prometheus.Counter
	ppRejected      prometheus.Counter
	upstreamUp      prometheus.Gauge
	redirects       prometheus.Counter
	h1Rejected      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		openConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrigger_open_connections",
			Help: "Client connections open on the HTTPS listener (upgraded ones are counted by package forward).",
		}),
		parkedConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrigger_parked_connections",
			Help: "Idle HTTP/1.1 keep-alive connections (--http1-fast) waiting for their next request without a goroutine or buffers; included in outrigger_open_connections.",
		}),
		handshakeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrigger_tls_handshake_errors_total",
			Help: "TLS handshakes that failed (protocol or cipher mismatch, bad or missing client certificate, bad PROXY header, timeouts).",
		}),
		ppRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrigger_proxy_protocol_rejected_connections_total",
			Help: "Connections closed at accept because the peer is not in --trusted-proxies (with --proxy-protocol).",
		}),
		upstreamUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrigger_upstream_up",
			Help: "1 if the last readiness dial to the upstream succeeded, else 0.",
		}),
		redirects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrigger_http_redirects_total",
			Help: "Plain-HTTP requests answered with a redirect to HTTPS.",
		}),
		h1Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrigger_http1_requests_rejected_total",
			Help: "HTTP/1.1 requests refused with 400 before parsing because their framing is ambiguous (request smuggling shapes), by reason.",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.openConns, err = promreg.Register(reg, m.openConns); err != nil {
		return nil, err
	}
	if m.parkedConns, err = promreg.Register(reg, m.parkedConns); err != nil {
		return nil, err
	}
	if m.handshakeErrors, err = promreg.Register(reg, m.handshakeErrors); err != nil {
		return nil, err
	}
	if m.ppRejected, err = promreg.Register(reg, m.ppRejected); err != nil {
		return nil, err
	}
	if m.upstreamUp, err = promreg.Register(reg, m.upstreamUp); err != nil {
		return nil, err
	}
	if m.redirects, err = promreg.Register(reg, m.redirects); err != nil {
		return nil, err
	}
	if m.h1Rejected, err = promreg.Register(reg, m.h1Rejected); err != nil {
		return nil, err
	}
	return m, nil
}
