package informer

import (
	"context"
	"time"

	"k8s.io/utils/clock"
)

// runFunc does one run. full is true for a periodic run (and for the first
// one). A non-nil error makes the runner retry after a backoff.
type runFunc func(ctx context.Context, full bool) error

// runner is a bounded-frequency runner: Kick marks work, and the loop calls
// fn at most once per minInterval however often it is kicked, so a burst of
// kicks becomes one run. Every period without a full run it makes a full run
// on its own. A failed run is retried after a backoff that doubles from
// retryMin up to retryMax and resets on success.
//
// A runner is driven by one goroutine (loop); Kick is safe from any.
type runner struct {
	fn                 runFunc
	minInterval        time.Duration
	period             time.Duration // <= 0: no periodic run
	retryMin, retryMax time.Duration
	clock              clock.Clock

	kick chan struct{}

	// onWait, when set (tests), is called each time the loop is about to
	// block, with the time it will next wake on its own (zero: never).
	onWait func(next time.Time)
}

func newRunner(fn runFunc, minInterval, period, retryMin, retryMax time.Duration, clk clock.Clock) *runner {
	return &runner{
		fn:          fn,
		minInterval: minInterval,
		period:      period,
		retryMin:    retryMin,
		retryMax:    retryMax,
		clock:       clk,
		kick:        make(chan struct{}, 1),
	}
}

// Kick marks work to do. It never blocks; kicks before the next run merge.
func (r *runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// loop runs until ctx is done. It starts with a full run at once.
func (r *runner) loop(ctx context.Context) {
	var (
		pending  = true // work marked and not yet done
		full     = true // the pending run must be full
		lastRun  time.Time
		retryAt  time.Time // a failed run is not retried before
		backoff  time.Duration
		nextFull time.Time // the next periodic run; zero: none
	)
	for {
		now := r.clock.Now()
		if r.period > 0 && !nextFull.IsZero() && !now.Before(nextFull) {
			pending, full = true, true
		}
		if pending {
			due := lastRun.Add(r.minInterval)
			if retryAt.After(due) {
				due = retryAt
			}
			if !now.Before(due) {
				lastRun = now
				err := r.fn(ctx, full)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					backoff = min(max(2*backoff, r.retryMin), r.retryMax)
					retryAt = r.clock.Now().Add(backoff)
				} else {
					backoff, retryAt = 0, time.Time{}
					if full && r.period > 0 {
						nextFull = r.clock.Now().Add(r.period)
					}
					pending, full = false, false
				}
				continue
			}
		}

		// Block until a kick, the next due run, or the periodic run.
		var next time.Time
		if pending {
			next = lastRun.Add(r.minInterval)
			if retryAt.After(next) {
				next = retryAt
			}
		}
		if r.period > 0 && !nextFull.IsZero() && (next.IsZero() || nextFull.Before(next)) {
			next = nextFull
		}
		var timerC <-chan time.Time
		var timer clock.Timer
		if !next.IsZero() {
			timer = r.clock.NewTimer(next.Sub(now))
			timerC = timer.C()
		}
		if r.onWait != nil {
			r.onWait(next)
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-r.kick:
			pending = true
		case <-timerC:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}
