package configapi

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/promreg"
)

// Reject reasons (label values of outrigger_config_rejects_total).
const (
	reasonInvalid         = "invalid"
	reasonSchema          = "schema"
	reasonTooLarge        = "too_large"
	reasonConflict        = "conflict"
	reasonUnauthorized    = "unauthorized"
	reasonForbidden       = "forbidden"
	reasonBadRequest      = "bad_request"
	reasonUnsupportedType = "unsupported_type"
)

type metrics struct {
	pushes   *prometheus.CounterVec
	rejects  *prometheus.CounterVec
	watchers prometheus.Gauge
	wake     prometheus.Histogram
	requests *prometheus.CounterVec
	// hot caches the requests counters of the long-poll answers, so that
	// a fan-out does not hash label values once per woken watcher.
	hot [2]prometheus.Counter // GET 200, GET 304
}

// request returns the outrigger_config_requests_total counter for a
// method and status code.
func (m *metrics) request(method string, code int) prometheus.Counter {
	if method == "GET" {
		switch code {
		case 200:
			return m.hot[0]
		case 304:
			return m.hot[1]
		}
	}
	return m.requests.WithLabelValues(methodLabel(method), codeLabel(code))
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrigger_config_pushes_total",
			Help: "Accepted pushes and rollbacks, by result (created = new version, unchanged = identical to the latest).",
		}, []string{"result"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrigger_config_rejects_total",
			Help: "Requests the config API refused, by reason.",
		}, []string{"reason"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrigger_config_watchers",
			Help: "Long-poll watchers currently waiting.",
		}),
		wake: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "outrigger_config_watch_wake_seconds",
			Help:    "Time from the watch hub learning of a new version to a woken watcher's answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrigger_config_requests_total",
			Help: "Config API requests by method and status code.",
		}, []string{"method", "code"}),
	}
	for _, r := range []string{"created", "unchanged"} {
		m.pushes.WithLabelValues(r)
	}
	for _, r := range []string{reasonInvalid, reasonSchema, reasonTooLarge, reasonConflict, reasonUnauthorized, reasonForbidden, reasonBadRequest, reasonUnsupportedType} {
		m.rejects.WithLabelValues(r)
	}
	if reg == nil {
		m.cacheHot()
		return m, nil
	}
	var err error
	if m.pushes, err = promreg.Register(reg, m.pushes); err != nil {
		return nil, err
	}
	if m.rejects, err = promreg.Register(reg, m.rejects); err != nil {
		return nil, err
	}
	if m.watchers, err = promreg.Register(reg, m.watchers); err != nil {
		return nil, err
	}
	if m.wake, err = promreg.Register(reg, m.wake); err != nil {
		return nil, err
	}
	if m.requests, err = promreg.Register(reg, m.requests); err != nil {
		return nil, err
	}
	m.cacheHot()
	return m, nil
}

func (m *metrics) cacheHot() {
	m.hot[0] = m.requests.WithLabelValues("GET", "200")
	m.hot[1] = m.requests.WithLabelValues("GET", "304")
}

// methodLabel bounds the method label's cardinality.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH":
		return m
	}
	return "other"
}

func codeLabel(c int) string { return strconv.Itoa(c) }
