package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/palisade-net/palisade/informer"
	"github.com/palisade-net/palisade/informer/prommetrics"
)

// newMetrics returns the controller's metrics and the registry of the
// agent's own they live on, with the Go and process collectors; /metrics
// serves that registry.
func newMetrics() (informer.Metrics, *prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
	}
	m, err := prommetrics.New(reg)
	if err != nil {
		return nil, nil, err
	}
	return m, reg, nil
}
