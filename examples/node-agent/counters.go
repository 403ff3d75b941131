package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/informer/prommetrics"
)

// registerPolicyCounters exports the packet filter's per-policy counters
// (--policy-counters, --policy-counters-interval) on reg, read through be
// (found through decorators with backend.As). With --policy-counters=off,
// or a backend that cannot read counters, it registers nothing and says
// so with false.
func registerPolicyCounters(reg prometheus.Registerer, be backend.Backend, o *options) (bool, error) {
	detail, err := prommetrics.ParseCounterDetail(o.policyCounters)
	if err != nil {
		return false, fmt.Errorf("--policy-counters: %w", err)
	}
	cr, ok := backend.As[backend.CounterReader](be)
	if detail == prommetrics.DetailOff || !ok {
		return false, nil
	}
	c, err := prommetrics.NewCounterCollector(cr, prommetrics.CounterConfig{Detail: detail, Interval: o.policyCountersInterval})
	if err != nil {
		return false, err
	}
	if err := reg.Register(c); err != nil {
		return false, fmt.Errorf("metrics: %w", err)
	}
	return true, nil
}
