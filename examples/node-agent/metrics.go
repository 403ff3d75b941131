package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/palisade-net/palisade/informer"
	"github.com/palisade-net/palisade/informer/prommetrics"
)

// newMetrics returns the controller's metrics, on a registry of the
// agent's own with the Go and process collectors and extra, and the
// /metrics handler.
func newMetrics(extra ...prometheus.Collector) (informer.Metrics, http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range append([]prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}, extra...) {
		if err := reg.Register(c); err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
	}
	m, err := prommetrics.New(reg)
	if err != nil {
		return nil, nil, err
	}
	return m, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), nil
}
