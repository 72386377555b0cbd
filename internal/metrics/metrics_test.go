package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegister(t *testing.T) {
	newCounter := func() prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_test_total", Help: "A test counter."})
	}
	// A nil registerer registers nothing and returns the collector.
	c := newCounter()
	if got := Register(nil, c); got != c {
		t.Fatal("Register(nil, c) did not return c")
	}

	reg := prometheus.NewRegistry()
	first := Register(reg, newCounter())
	second := Register(reg, newCounter())
	if first != second {
		t.Fatal("registering an equal collector twice returned a new collector, want the existing one")
	}
	second.Inc()
	if n := testutil.ToFloat64(first); n != 1 {
		t.Errorf("shared counter = %v, want 1", n)
	}

	// A different collector under the same name is a programming error.
	defer func() {
		if recover() == nil {
			t.Error("registering a gauge under a counter's name did not panic")
		}
	}()
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamba_test_total", Help: "A different help."}))
}
