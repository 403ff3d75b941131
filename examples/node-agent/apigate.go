package main

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Gate defaults.
const (
	// apiDownProbePeriod is how often the API server is probed while it is
	// unreachable, so that its return is seen within about a second.
	apiDownProbePeriod = time.Second
	// apiReturnJitter bounds the random delay between seeing the API
	// server back and letting the watches through: the nodes of a cluster
	// see it back at about the same time and must not relist at once.
	apiReturnJitter = time.Second
	// apiGateMaxHold bounds how long one request waits at a held gate;
	// then it goes through as it would without the gate (and, failing,
	// doubles the back-off once). Long, since the probe opens the gate as
	// soon as the API server answers: a 30 s bound measured 3.3 s to the
	// first change after a 63 s outage, two back-off steps.
	apiGateMaxHold = 5 * time.Minute
)

// apiGate holds the informers' reads (GET: lists and watches) while the
// reachability probe cannot reach the API server, and lets them through
// shortly after it answers again. Without it, each failed list during an
// outage doubles client-go's reflector back-off (up to 30 s, with as much
// jitter again), and the watches resume up to a minute after the API
// server is back; held at the gate, a retry fails at most once and then
// waits for the return. Writes (Events) are never held. The zero value is
// not usable: see newAPIGate.
type apiGate struct {
	mu sync.Mutex
	// open is closed while the gate lets requests through; a held gate has
	// a fresh, open channel.
	open    chan struct{}
	held    bool
	maxHold time.Duration
	// timer opens the gate after the return jitter; nil when none pending.
	timer *time.Timer
}

func newAPIGate(maxHold time.Duration) *apiGate {
	open := make(chan struct{})
	close(open)
	return &apiGate{open: open, maxHold: maxHold}
}

// hold makes reads wait; a pending release is cancelled.
func (g *apiGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	if !g.held {
		g.held = true
		g.open = make(chan struct{})
	}
}

// release lets reads through after a random delay in [0, jitter).
func (g *apiGate) release(jitter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held || g.timer != nil {
		return
	}
	var d time.Duration
	if jitter > 0 {
		d = rand.N(jitter)
	}
	g.timer = time.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.timer = nil
		if g.held {
			g.held = false
			close(g.open)
		}
	})
}

// isHeld reports whether reads wait now.
func (g *apiGate) isHeld() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// wrap returns rt with reads waiting at the gate (at most maxHold, and
// never past the request's context).
func (g *apiGate) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodGet {
			g.mu.Lock()
			open := g.open
			g.mu.Unlock()
			t := time.NewTimer(g.maxHold)
			select {
			case <-open:
			case <-t.C:
			case <-req.Context().Done():
				t.Stop()
				return nil, req.Context().Err()
			}
			t.Stop()
		}
		return rt.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
