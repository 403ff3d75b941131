package informer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testclock "k8s.io/utils/clock/testing"
)

const (
	minInterval = 10 * time.Millisecond
	period      = time.Minute
	retryMin    = 100 * time.Millisecond
	retryMax    = 400 * time.Millisecond
)

// runnerHarness drives a runner with a fake clock. The run function
// reports each run on runs and returns the next error of errs (nil when
// none is queued; startRunner queues its errs before the loop starts).
type runnerHarness struct {
	t     *testing.T
	clk   *testclock.FakeClock
	r     *runner
	runs  chan bool
	waits chan time.Time
	errs  chan error
	next  time.Time // the last wake time the loop reported
}

func startRunner(t *testing.T, errs ...error) *runnerHarness {
	t.Helper()
	h := &runnerHarness{
		t:     t,
		clk:   testclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		runs:  make(chan bool, 100),
		waits: make(chan time.Time, 1000),
		errs:  make(chan error, 100),
	}
	h.r = newRunner(func(_ context.Context, full bool) error {
		h.runs <- full
		select {
		case err := <-h.errs:
			return err
		default:
			return nil
		}
	}, minInterval, period, retryMin, retryMax, h.clk)
	h.r.onWait = func(next time.Time) { h.waits <- next }
	for _, err := range errs {
		h.errs <- err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.r.loop(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// expectRun waits for the next run and checks whether it was full.
func (h *runnerHarness) expectRun(full bool) {
	h.t.Helper()
	select {
	case got := <-h.runs:
		assert.Equal(h.t, full, got, "full run")
	case <-time.After(5 * time.Second):
		h.t.Fatal("no run")
	}
}

// settle waits until the loop has stayed blocked for a moment, and returns
// when it will next wake on its own.
func (h *runnerHarness) settle() time.Time {
	h.t.Helper()
	for {
		select {
		case h.next = <-h.waits:
		case <-time.After(30 * time.Millisecond):
			return h.next
		}
	}
}

func (h *runnerHarness) expectNoRun() {
	h.t.Helper()
	select {
	case full := <-h.runs:
		h.t.Fatalf("unexpected run (full=%v)", full)
	default:
	}
}

func TestRunnerFirstRunIsFull(t *testing.T) {
	h := startRunner(t)
	h.expectRun(true)
	next := h.settle()
	assert.Equal(t, h.clk.Now().Add(period), next, "next wake is the periodic run")
	h.expectNoRun()
}

func TestRunnerCoalescesBursts(t *testing.T) {
	h := startRunner(t)
	h.expectRun(true)
	h.settle()

	// A burst inside the window: no run before the window ends, then one.
	for range 1000 {
		h.r.Kick()
	}
	next := h.settle()
	h.expectNoRun()
	assert.Equal(t, h.clk.Now().Add(minInterval), next)
	h.clk.Step(minInterval)
	h.expectRun(false)
	h.settle()
	h.expectNoRun()

	// Once the window has passed, a kick runs at once.
	h.clk.Step(minInterval)
	h.settle()
	h.r.Kick()
	h.expectRun(false)
	h.settle()
	h.expectNoRun()
}

func TestRunnerPeriodicFullRun(t *testing.T) {
	h := startRunner(t)
	h.expectRun(true)
	h.settle()
	h.clk.Step(period - time.Millisecond)
	h.settle()
	h.expectNoRun()
	h.clk.Step(time.Millisecond)
	h.expectRun(true)
	next := h.settle()
	assert.Equal(t, h.clk.Now().Add(period), next, "the period restarts")
}

func TestRunnerRetriesWithBackoff(t *testing.T) {
	fail := errors.New("boom")
	h := startRunner(t, fail, fail, fail, fail)
	h.expectRun(true)
	// Failures: retry after 100ms, 200ms, 400ms, 400ms (capped), each as
	// full as the first.
	for _, wait := range []time.Duration{retryMin, 2 * retryMin, retryMax, retryMax} {
		next := h.settle()
		require.Equal(t, h.clk.Now().Add(wait), next, "backoff")
		h.r.Kick() // kicks do not shorten the backoff
		h.settle()
		h.expectNoRun()
		h.clk.Step(wait)
		h.expectRun(true)
	}
	// Success resets the backoff: the next kick runs after minInterval.
	h.settle()
	h.clk.Step(minInterval)
	h.settle()
	h.r.Kick()
	h.expectRun(false)
}

func TestRunnerStopsOnCancel(t *testing.T) {
	clk := testclock.NewFakeClock(time.Now())
	r := newRunner(func(context.Context, bool) error { return nil }, minInterval, period, retryMin, retryMax, clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.loop(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not stop")
	}
}
