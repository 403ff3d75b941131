package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/informer"
)

// metrics implements informer.Metrics over a Prometheus registry of its
// own (plus the Go and process collectors).
type metrics struct {
	reg *prometheus.Registry

	syncDuration  prometheus.Histogram
	applyDuration prometheus.Histogram
	latency       prometheus.Histogram
	syncChanges   prometheus.Counter
	generation    prometheus.Gauge
	endpoints     prometheus.Gauge
	ruleLists     prometheus.Gauge
	setMembers    prometheus.Gauge
	errors        *prometheus.CounterVec
	repairs       prometheus.Counter
}

var _ informer.Metrics = (*metrics)(nil)

const namespace = "palisade"

func newMetrics() *metrics {
	// 100 µs to ~3.3 s.
	fast := prometheus.ExponentialBuckets(0.0001, 2, 16)
	m := &metrics{
		reg: prometheus.NewRegistry(),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "sync_duration_seconds",
			Help: "Duration of successful full Syncs of the packet filter.", Buckets: fast,
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "apply_duration_seconds",
			Help: "Duration of successful incremental Applies to the packet filter.", Buckets: fast,
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "event_to_programmed_seconds",
			Help:    "Time from an API event reaching the agent to the packet filter update that contained it returning (oldest event of each update).",
			Buckets: fast,
		}),
		syncChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "sync_changes_total",
			Help: "Objects created, replaced or deleted by full Syncs.",
		}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "programmed_generation",
			Help: "Policy engine generation programmed into the packet filter.",
		}),
		endpoints: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "endpoints",
			Help: "Local pods enforced.",
		}),
		ruleLists: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "rule_lists",
			Help: "Rule lists programmed (one per policy and direction).",
		}),
		setMembers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "set_members",
			Help: "Members of the programmed address and named-port sets.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "errors_total",
			Help: "Failures by kind: apply, sync, invalid_policy, invalid_pod.",
		}, []string{"kind"}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "drift_repairs_total",
			Help: "Drift found in the packet filter and repaired by Syncs.",
		}),
	}
	m.reg.MustRegister(m.syncDuration, m.applyDuration, m.latency, m.syncChanges, m.generation,
		m.endpoints, m.ruleLists, m.setMembers, m.errors, m.repairs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Show every kind at zero from the start.
	for _, kind := range []string{informer.ErrorApply, informer.ErrorSync, informer.ErrorInvalidPolicy, informer.ErrorInvalidPod} {
		m.errors.WithLabelValues(kind)
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) ObserveSync(d time.Duration, rep backend.SyncReport) {
	m.syncDuration.Observe(d.Seconds())
	m.syncChanges.Add(float64(rep.Changes))
}

func (m *metrics) ObserveApply(d time.Duration)   { m.applyDuration.Observe(d.Seconds()) }
func (m *metrics) ObserveLatency(d time.Duration) { m.latency.Observe(d.Seconds()) }
func (m *metrics) SetGeneration(g uint64)         { m.generation.Set(float64(g)) }
func (m *metrics) SetCounts(endpoints, ruleLists, setMembers int) {
	m.endpoints.Set(float64(endpoints))
	m.ruleLists.Set(float64(ruleLists))
	m.setMembers.Set(float64(setMembers))
}
func (m *metrics) IncError(kind string) { m.errors.WithLabelValues(kind).Inc() }
func (m *metrics) AddRepairs(n int)     { m.repairs.Add(float64(n)) }
