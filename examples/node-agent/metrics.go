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

// newReachableGauge registers palisade_api_server_reachable on reg.
func newReachableGauge(reg prometheus.Registerer) (prometheus.Gauge, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Name: "api_server_reachable",
		Help: "1 when the API server answered the agent's last /readyz probe, 0 when it did not (the node keeps enforcing the policy last received).",
	})
	if err := reg.Register(g); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return g, nil
}
