// Package promreg registers Prometheus collectors so that several
// components of one process can share a registry: registering a collector
// whose metric is already registered returns the existing one instead of
// failing (two proxies or two config API servers in one test process, a
// certificate store and a CA pool sharing families). It does not create or
// name metrics.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it, or returns the identical
// collector registered before. A nil reg registers nothing and returns c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("registering metrics: %w", err)
	}
	return c, nil
}
