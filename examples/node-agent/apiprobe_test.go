package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// lines collects log lines, safely for concurrent use.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, args)
}

func (l *lines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.l...)
}

// fakeGauge records the last value set.
type fakeGauge struct {
	mu  sync.Mutex
	v   float64
	set bool
}

func (g *fakeGauge) Set(v float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.v, g.set = v, true
}

func (g *fakeGauge) get() (float64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.v, g.set
}

func TestReachabilityLogsAtABoundedRate(t *testing.T) {
	var got lines
	g := &fakeGauge{}
	r := &apiReachability{log: funcr.New(got.add, funcr.Options{}), reachable: g, logEvery: 30 * time.Second}
	t0 := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	down := errors.New("connection refused")
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	r.observe(at(0), nil)
	v, _ := g.get()
	assert.Equal(t, 1.0, v)
	assert.Empty(t, got.get(), "nothing to say while reachable")

	// Probes every 5 s for 66 s of outage: one line at its start, one per
	// 30 s after, one at the return.
	for s := 5; s <= 70; s += 5 {
		r.observe(at(s), down)
		v, _ = g.get()
		assert.Equal(t, 0.0, v, "at %d s", s)
	}
	r.observe(at(75), nil)
	v, _ = g.get()
	assert.Equal(t, 1.0, v)

	l := got.get()
	require.Len(t, l, 4, "%q", l)
	assert.Contains(t, l[0], `"msg"="API server unreachable; enforcing the policy last received"`)
	assert.Contains(t, l[0], "connection refused")
	assert.Contains(t, l[1], `"unreachableFor"="30s"`)
	assert.Contains(t, l[2], `"unreachableFor"="1m0s"`)
	assert.Contains(t, l[3], `"msg"="API server reachable again" "unreachableFor"="1m10s"`)
}

func newTestClient(t *testing.T, url string) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: url})
	require.NoError(t, err)
	return cs
}

func TestProbeFollowsTheAPIServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var got lines
	g := &fakeGauge{}
	r := &apiReachability{log: funcr.New(got.add, funcr.Options{}), reachable: g, logEvery: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		probeAPI(ctx, readyzProbe(newTestClient(t, srv.URL)), 10*time.Millisecond, 10*time.Millisecond, time.Second, r)
	}()
	defer func() { cancel(); <-done }()

	is := func(want float64) func() bool {
		return func() bool { v, set := g.get(); return set && v == want }
	}
	require.Eventually(t, is(1), 10*time.Second, time.Millisecond, "reachable while the server answers")
	srv.CloseClientConnections()
	srv.Close()
	require.Eventually(t, is(0), 10*time.Second, time.Millisecond, "unreachable once the server is gone")
	l := got.get()
	require.NotEmpty(t, l)
	assert.True(t, strings.Contains(l[0], "API server unreachable"), "%q", l)
}

// hungServer accepts connections and never answers, until the request's
// context ends.
func hungServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv
}

func TestCheckAPIEndsWithItsContextWhileTheServerHangs(t *testing.T) {
	srv := hungServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- checkAPI(ctx, newTestClient(t, srv.URL), srv.URL, time.Hour) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("checkAPI did not return after its context ended")
	}
}

func TestProbeEndsWithItsContextWhileTheServerHangs(t *testing.T) {
	srv := hungServer(t)
	g := &fakeGauge{}
	r := &apiReachability{log: funcr.New(func(string, string) {}, funcr.Options{}), reachable: g, logEvery: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		probeAPI(ctx, readyzProbe(newTestClient(t, srv.URL)), time.Millisecond, time.Millisecond, time.Hour, r)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("probeAPI did not return after its context ended")
	}
	_, set := g.get()
	assert.False(t, set, "a probe cut short by the shutdown says nothing about the API server")
}
