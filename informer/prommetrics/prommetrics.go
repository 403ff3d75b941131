// Package prommetrics records the informer controller's observations into
// Prometheus instruments. It is a module of its own
// (github.com/palisade-net/palisade/informer/prommetrics), so that only
// programs that import it depend on the Prometheus client: the library's
// module does not.
//
//	reg := prometheus.NewRegistry()
//	m, err := prommetrics.New(reg)
//	if err != nil { ... } // a name already registered
//	ctrl, err := informer.New(informer.Config{..., Metrics: m})
//
// The metrics, all prefixed palisade_: sync_duration_seconds,
// apply_duration_seconds, event_to_programmed_seconds (histograms);
// sync_changes_total, drift_repairs_total, errors_total{kind}
// (counters); programmed_generation, endpoints, rule_lists, set_members
// (gauges). Every errors_total kind is present at zero from the start.
// VerdictLog does the same for a verdict log reader's counts.
//
// CounterCollector exports a backend's rule counters
// (backend.CounterReader) per policy, or per rule, read from the packet
// filter on scrape at a bounded cost:
//
//	if cr, ok := backend.As[backend.CounterReader](be); ok {
//		c, err := prommetrics.NewCounterCollector(cr, prommetrics.CounterConfig{})
//		if err != nil { ... }
//		reg.MustRegister(c)
//	}
package prommetrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/informer"
)

// Namespace prefixes every metric name.
const Namespace = "palisade"

// New creates the instruments, registers them on reg, and returns the
// informer.Metrics that records into them. It registers nothing and
// returns the registration errors when one of the names is already taken
// on reg. A nil reg is an error.
func New(reg prometheus.Registerer) (informer.Metrics, error) {
	if reg == nil {
		return nil, errors.New("prommetrics: a Registerer is required")
	}
	// 100 µs to ~3.3 s.
	fast := prometheus.ExponentialBuckets(0.0001, 2, 16)
	var collectors []prometheus.Collector
	histogram := func(name, help string) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: fast})
		collectors = append(collectors, h)
		return h
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
		collectors = append(collectors, c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
		collectors = append(collectors, g)
		return g
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "errors_total",
		Help: "Failures by kind: apply, sync, invalid_policy, invalid_pod.",
	}, []string{"kind"})
	collectors = append(collectors, errs)
	for _, kind := range informer.ErrorKinds {
		errs.WithLabelValues(kind) // present at zero
	}
	in := informer.Instruments{
		SyncDuration:  histogram("sync_duration_seconds", "Duration of successful full Syncs of the packet filter."),
		ApplyDuration: histogram("apply_duration_seconds", "Duration of successful incremental Applies to the packet filter."),
		Latency: histogram("event_to_programmed_seconds",
			"Time from an API event reaching the agent to the packet filter update that contained it returning (oldest event of each update)."),
		SyncChanges: counter("sync_changes_total", "Objects created, replaced or deleted by full Syncs."),
		Repairs:     counter("drift_repairs_total", "Drift found in the packet filter and repaired by Syncs."),
		Generation:  gauge("programmed_generation", "Policy engine generation programmed into the packet filter."),
		Endpoints:   gauge("endpoints", "Local pods enforced."),
		RuleLists:   gauge("rule_lists", "Rule lists programmed (one per policy and direction)."),
		SetMembers:  gauge("set_members", "Members of the programmed address and named-port sets."),
		Errors:      func(kind string) informer.Counter { return errs.WithLabelValues(kind) },
	}

	if err := register(reg, collectors...); err != nil {
		return nil, err
	}
	return in, nil
}

// register registers every collector on reg, or none: when one fails, it
// unregisters those it registered and returns every error.
func register(reg prometheus.Registerer, collectors ...prometheus.Collector) error {
	var regErrs []error
	var registered []prometheus.Collector
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			regErrs = append(regErrs, err)
			continue
		}
		registered = append(registered, c)
	}
	if err := errors.Join(regErrs...); err != nil {
		for _, c := range registered {
			reg.Unregister(c)
		}
		return fmt.Errorf("prommetrics: %w", err)
	}
	return nil
}

// VerdictLog creates the counters of a verdict log reader (package
// backend/verdictlog), registers them on reg and returns the Instruments
// that record into them: palisade_verdict_log_records_total{verdict},
// dropped_total, overruns_total and undecodable_total. It registers nothing
// and returns the errors when a name is already taken on reg. A nil reg is
// an error.
func VerdictLog(reg prometheus.Registerer) (verdictlog.Instruments, error) {
	if reg == nil {
		return verdictlog.Instruments{}, errors.New("prommetrics: a Registerer is required")
	}
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "verdict_log", Name: "records_total",
		Help: "Verdict log records written, by verdict (allow, deny).",
	}, []string{"verdict"})
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "verdict_log", Name: name, Help: help})
	}
	dropped := counter("dropped_total", "Verdict log records dropped because the reader's queue was full (packets are never held).")
	overruns := counter("overruns_total", "Times the kernel dropped verdict log messages because the reader's socket buffer was full (ENOBUFS).")
	undecodable := counter("undecodable_total", "NFLOG messages of the group that were not Palisade's or did not decode.")
	if err := register(reg, records, dropped, overruns, undecodable); err != nil {
		return verdictlog.Instruments{}, err
	}
	return verdictlog.Instruments{
		Records:     func(v string) verdictlog.Counter { return records.WithLabelValues(v) },
		Dropped:     dropped,
		Overruns:    overruns,
		Undecodable: undecodable,
	}, nil
}
