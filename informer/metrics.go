package informer

import (
	"time"

	"github.com/palisade-net/palisade/backend"
)

// Counter, Gauge and Histogram are the instruments Instruments records
// into. prometheus.Counter, prometheus.Gauge and prometheus.Histogram
// satisfy them, as do the types of most metrics libraries.
type (
	Counter   interface{ Add(float64) }
	Gauge     interface{ Set(float64) }
	Histogram interface{ Observe(float64) }
)

// ErrorKinds lists the kinds passed to Metrics.IncError, so that a
// metrics adapter can show each at zero from the start.
var ErrorKinds = []string{ErrorApply, ErrorSync, ErrorInvalidPolicy, ErrorInvalidPod}

// Instruments implements Metrics by recording into individual
// instruments. A nil field is skipped, so the zero value records nothing.
// Durations are observed in seconds. Package informer/prommetrics (a
// module of its own, so that importing informer does not import
// Prometheus) fills it with Prometheus instruments.
type Instruments struct {
	// SyncDuration observes each successful full Sync.
	SyncDuration Histogram
	// ApplyDuration observes each successful Apply of a delta.
	ApplyDuration Histogram
	// Latency observes, per successful run, the time from the oldest
	// event it programmed to its end.
	Latency Histogram
	// SyncChanges counts what full Syncs created, replaced or deleted.
	SyncChanges Counter
	// Repairs counts drift found and repaired by Syncs.
	Repairs Counter
	// Generation is the engine generation programmed.
	Generation Gauge
	// Endpoints, RuleLists and SetMembers are the size of the programmed
	// state: local pods enforced, rule lists, members of address and
	// named-port sets.
	Endpoints, RuleLists, SetMembers Gauge
	// Errors returns the counter of one kind of failure (ErrorKinds); nil,
	// or a nil Counter, skips it.
	Errors func(kind string) Counter
}

var _ Metrics = Instruments{}

func (in Instruments) ObserveSync(d time.Duration, rep backend.SyncReport) {
	observe(in.SyncDuration, d)
	add(in.SyncChanges, rep.Changes)
}

func (in Instruments) ObserveApply(d time.Duration)   { observe(in.ApplyDuration, d) }
func (in Instruments) ObserveLatency(d time.Duration) { observe(in.Latency, d) }
func (in Instruments) SetGeneration(g uint64)         { set(in.Generation, float64(g)) }
func (in Instruments) AddRepairs(n int)               { add(in.Repairs, n) }

func (in Instruments) SetCounts(endpoints, ruleLists, setMembers int) {
	set(in.Endpoints, float64(endpoints))
	set(in.RuleLists, float64(ruleLists))
	set(in.SetMembers, float64(setMembers))
}

func (in Instruments) IncError(kind string) {
	if in.Errors != nil {
		add(in.Errors(kind), 1)
	}
}

func observe(h Histogram, d time.Duration) {
	if h != nil {
		h.Observe(d.Seconds())
	}
}

func add(c Counter, n int) {
	if c != nil {
		c.Add(float64(n))
	}
}

func set(g Gauge, v float64) {
	if g != nil {
		g.Set(v)
	}
}
