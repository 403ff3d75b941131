package main

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/conntrack"
	"github.com/palisade-net/palisade/informer/prommetrics"
)

// establishedMetrics implements conntrack.Metrics over the agent's
// registry.
type establishedMetrics struct {
	cut     prometheus.Counter
	latency prometheus.Histogram
	errors  prometheus.Counter
}

var _ conntrack.Metrics = (*establishedMetrics)(nil)

func newEstablishedMetrics(reg prometheus.Registerer) *establishedMetrics {
	m := &establishedMetrics{
		cut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: prommetrics.Namespace, Name: "established_connections_cut_total",
			Help: "Established connections cut because a policy change denies them (--established=follow).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: prommetrics.Namespace, Name: "event_to_connections_cut_seconds",
			Help:    "Time from the oldest API event of a packet filter update to the end of the cut of the established connections it denies (updates that cut any).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: prommetrics.Namespace, Name: "established_follow_errors_total",
			Help: "Packet filter updates after which established connections could not be re-evaluated (conntrack failures; the update itself succeeded).",
		}),
	}
	reg.MustRegister(m.cut, m.latency, m.errors)
	return m
}

func (m *establishedMetrics) ObserveCut(n int, d time.Duration) {
	m.cut.Add(float64(n))
	m.latency.Observe(d.Seconds())
}

func (m *establishedMetrics) IncError() { m.errors.Inc() }

// followEstablished wraps be so that established connections follow the
// policy (--established=follow), in the namespace of --netns when set; with
// --established=keep it passes be through. The returned function closes
// what it opened.
func followEstablished(be backend.Backend, o *options, m conntrack.Metrics, log klog.Logger) (backend.Backend, func(), error) {
	mode, err := conntrack.ParseMode(o.established)
	if err != nil {
		return nil, nil, err
	}
	if mode == conntrack.ModeKeep {
		return be, func() {}, nil
	}
	cfg := conntrack.Config{Mode: mode, Metrics: m, Logger: log}
	if o.netns != "" {
		f, err := os.Open(o.netns)
		if err != nil {
			return nil, nil, fmt.Errorf("--netns: %w", err)
		}
		// The follower's sockets live in the namespace; the file is not
		// needed once they are open.
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	follower, err := conntrack.New(be, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("established connections: %w", err)
	}
	return follower, func() { _ = follower.Close() }, nil
}
