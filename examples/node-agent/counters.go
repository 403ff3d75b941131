package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/informer/prommetrics"
)

// counterOptions are the flags of the policy counters.
type counterOptions struct {
	detail   string // policy, rule or off (prommetrics.CounterDetail)
	interval time.Duration
}

func (c *counterOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&c.detail, "policy-counters", string(prommetrics.DetailPolicy), "export the packet filter's counters per policy and direction (policy), per rule as well (rule: one series per rule), or not (off)")
	fs.DurationVar(&c.interval, "policy-counters-interval", prommetrics.DefaultCounterInterval, "least time between two reads of the packet filter's counters; scrapes in between get the last read")
}

// validate lists what is wrong with the flags.
func (c *counterOptions) validate() []error {
	var errs []error
	if _, err := prommetrics.ParseCounterDetail(c.detail); err != nil {
		errs = append(errs, fmt.Errorf("--policy-counters: %w", err))
	}
	if c.interval <= 0 {
		errs = append(errs, fmt.Errorf("--policy-counters-interval %v: must be positive", c.interval))
	}
	return errs
}

// registerPolicyCounters exports the packet filter's per-policy counters
// (--policy-counters, --policy-counters-interval) on reg, read through be
// (found through decorators with backend.As). With --policy-counters=off,
// or a backend that cannot read counters, it registers nothing and says
// so with false.
func registerPolicyCounters(reg prometheus.Registerer, be backend.Backend, o counterOptions) (bool, error) {
	detail, err := prommetrics.ParseCounterDetail(o.detail)
	if err != nil {
		return false, fmt.Errorf("--policy-counters: %w", err)
	}
	cr, ok := backend.As[backend.CounterReader](be)
	if detail == prommetrics.DetailOff || !ok {
		return false, nil
	}
	c, err := prommetrics.NewCounterCollector(cr, prommetrics.CounterConfig{Detail: detail, Interval: o.interval})
	if err != nil {
		return false, err
	}
	if err := reg.Register(c); err != nil {
		return false, fmt.Errorf("metrics: %w", err)
	}
	return true, nil
}
