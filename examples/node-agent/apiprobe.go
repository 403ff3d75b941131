package main

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
)

// Reachability probe defaults.
const (
	// apiProbePeriod is how often the API server's /readyz is asked.
	apiProbePeriod = 5 * time.Second
	// apiProbeTimeout bounds one probe.
	apiProbeTimeout = 5 * time.Second
	// apiLogEvery is the least time between two "still unreachable" lines.
	apiLogEvery = 30 * time.Second
)

// gauge is what the reachability probe needs of a metric;
// prometheus.Gauge satisfies it.
type gauge interface{ Set(float64) }

// apiReachability tracks whether the API server answers, for the operator:
// enforcement does not depend on it (the node keeps the last policy it
// programmed, and readiness stays as it is). It logs when the API server
// becomes unreachable, then at most once per logEvery while it stays so,
// with how long it has been unreachable, and when it is back; reachable is
// set to 1 or 0 after every probe. Used by one goroutine.
type apiReachability struct {
	log       klog.Logger
	reachable gauge
	logEvery  time.Duration

	// gate, when set, holds the informers' reads while probes get no
	// answer at all, and is released within jitter once one answers.
	gate   *apiGate
	jitter time.Duration

	// down is when the first failed probe of the current outage ran; zero
	// while reachable. logged is when the last line about it was written.
	down, logged time.Time
}

// observe records the result of a probe that ran at now.
func (r *apiReachability) observe(now time.Time, err error) {
	if r.gate != nil {
		if err != nil && !answered(err) {
			r.gate.hold()
		} else {
			r.gate.release(r.jitter)
		}
	}
	if err == nil {
		r.reachable.Set(1)
		if !r.down.IsZero() {
			r.log.Info("API server reachable again", "unreachableFor", now.Sub(r.down).Round(time.Millisecond))
			r.down = time.Time{}
		}
		return
	}
	r.reachable.Set(0)
	switch {
	case r.down.IsZero():
		r.down, r.logged = now, now
		r.log.Info("API server unreachable; enforcing the policy last received", "err", err.Error())
	case now.Sub(r.logged) >= r.logEvery:
		r.logged = now
		r.log.Info("API server still unreachable; enforcing the policy last received",
			"unreachableFor", now.Sub(r.down).Round(time.Second), "err", err.Error())
	}
}

// answered reports whether err is the API server's own answer (an HTTP
// status), rather than a failure to reach it.
func answered(err error) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st)
}

// unreachable reports whether the last probe failed.
func (r *apiReachability) unreachable() bool { return !r.down.IsZero() }

// probeAPI runs probe every period (every downPeriod while the API server
// is unreachable), each bounded by timeout, and feeds the results to r
// until ctx ends. The first probe runs at once.
func probeAPI(ctx context.Context, probe func(context.Context) error, period, downPeriod, timeout time.Duration, r *apiReachability) {
	for {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.observe(time.Now(), err)
		next := period
		if r.unreachable() {
			next = min(period, downPeriod)
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
