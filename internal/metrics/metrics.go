// Package metrics is the one way server packages register Prometheus
// collectors. A nil Registerer registers nothing (tests and embedded uses
// need no registry); registering a collector equal to one already there
// returns the existing one, so two components (or two handlers on one
// registry) share a series instead of failing. Any other registration error
// is a programming error (two different collectors under one name) and
// panics, as prometheus.MustRegister does.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector to use: c itself,
// or the equal collector reg already has. With a nil reg it returns c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// RegisterAll registers each collector whose result is not needed (a
// collector that only reads others, such as a GaugeFunc); equal collectors
// already registered are left as they are. A nil reg registers nothing.
func RegisterAll(reg prometheus.Registerer, cs ...prometheus.Collector) {
	for _, c := range cs {
		Register(reg, c)
	}
}
