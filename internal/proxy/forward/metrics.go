package forward

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/promreg"
)

// methods is the fixed set of method label values; anything else is "OTHER",
// so a client cannot inflate the metric's cardinality with invented methods.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER"}

const methodOther = len(methods) - 1

func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "CONNECT":
		return 5
	case "OPTIONS":
		return 6
	case "TRACE":
		return 7
	case "PATCH":
		return 8
	}
	return methodOther
}

// Status codes 100..599 get a cached counter each; others (net/http allows
// up to 999) are looked up on the slow path.
const (
	minCode = 100
	maxCode = 599
)

type metrics struct {
	requests       *prometheus.CounterVec
	duration       prometheus.Histogram
	upstreamErrors [numKinds]prometheus.Counter
	inflight       prometheus.Gauge
	queued         prometheus.Gauge
	retries        prometheus.Counter

	// reqCache avoids hashing label values on every request.
	reqCache [len(methods)][maxCode - minCode + 1]atomic.Pointer[prometheus.Counter]
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{}
	var err error
	if m.requests, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outrigger_requests_total",
		Help: "Requests handled by the reverse proxy, by response status code and method (unknown methods are OTHER; 499 = client went away).",
	}, []string{"code", "method"})); err != nil {
		return nil, err
	}
	if m.duration, err = promreg.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "outrigger_request_duration_seconds",
		Help:    "Time from receiving a request's headers to finishing its response, including queueing, in seconds.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	})); err != nil {
		return nil, err
	}
	errs, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outrigger_upstream_errors_total",
		Help: "Requests that got no response from the upstream app (answered 502/504), by kind: refused, timeout, reset, dns, tls, other. Retried attempts that later succeeded and client cancellations are not counted.",
	}, []string{"kind"}))
	if err != nil {
		return nil, err
	}
	for k := range numKinds {
		m.upstreamErrors[k] = errs.WithLabelValues(errKind(k).String())
	}
	if m.inflight, err = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "outrigger_inflight_requests",
		Help: "Requests currently being forwarded to the upstream app (bounded by the max-inflight limit; upgraded connections are not counted).",
	})); err != nil {
		return nil, err
	}
	if m.queued, err = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "outrigger_queued_requests",
		Help: "Requests waiting for an in-flight slot.",
	})); err != nil {
		return nil, err
	}
	if m.retries, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "outrigger_upstream_retries_total",
		Help: "Requests re-sent after the upstream refused the connection (the request had not reached the app).",
	})); err != nil {
		return nil, err
	}
	return m, nil
}

// observeRequest counts one finished request.
func (m *metrics) observeRequest(code int, method string, seconds float64) {
	m.duration.Observe(seconds)
	mi := methodIndex(method)
	if code < minCode || code > maxCode {
		m.requests.WithLabelValues(strconv.Itoa(code), methods[mi]).Inc()
		return
	}
	slot := &m.reqCache[mi][code-minCode]
	if c := slot.Load(); c != nil {
		(*c).Inc()
		return
	}
	c := m.requests.WithLabelValues(strconv.Itoa(code), methods[mi])
	slot.Store(&c)
	c.Inc()
}
