package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// countingServer answers 200 to everything and counts requests.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func do(ctx context.Context, c *http.Client, method, url string) <-chan error {
	out := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err != nil {
			out <- err
			return
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		out <- err
	}()
	return out
}

func TestGateHoldsReadsUntilReleased(t *testing.T) {
	srv, n := countingServer(t)
	g := newAPIGate(time.Hour)
	c := &http.Client{Transport: g.wrap(http.DefaultTransport)}

	require.NoError(t, <-do(context.Background(), c, http.MethodGet, srv.URL), "an open gate passes reads")
	g.hold()
	assert.True(t, g.isHeld())
	read := do(context.Background(), c, http.MethodGet, srv.URL)
	require.NoError(t, <-do(context.Background(), c, http.MethodPost, srv.URL), "writes are never held")
	select {
	case err := <-read:
		t.Fatalf("a read went through a held gate: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	assert.Equal(t, int64(2), n.Load(), "the held read reached the server")

	g.release(50 * time.Millisecond)
	select {
	case err := <-read:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the read was not let through after the release")
	}
	assert.False(t, g.isHeld())
	assert.Equal(t, int64(3), n.Load())
}

func TestGateHoldEndsWithTheRequestOrMaxHold(t *testing.T) {
	srv, n := countingServer(t)
	g := newAPIGate(time.Hour)
	g.hold()
	c := &http.Client{Transport: g.wrap(http.DefaultTransport)}
	ctx, cancel := context.WithCancel(context.Background())
	read := do(ctx, c, http.MethodGet, srv.URL)
	cancel()
	select {
	case err := <-read:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("a held read outlived its context")
	}
	assert.Zero(t, n.Load())

	short := newAPIGate(20 * time.Millisecond)
	short.hold()
	c = &http.Client{Transport: short.wrap(http.DefaultTransport)}
	require.NoError(t, <-do(context.Background(), c, http.MethodGet, srv.URL), "a read goes through after maxHold")
	assert.Equal(t, int64(1), n.Load())
}

func TestHoldCancelsAPendingRelease(t *testing.T) {
	g := newAPIGate(time.Hour)
	g.hold()
	g.release(time.Hour) // would open in up to an hour
	g.hold()
	g.release(0)
	require.Eventually(t, func() bool { return !g.isHeld() }, 10*time.Second, time.Millisecond)
}

func TestProbeResultsDriveTheGate(t *testing.T) {
	g := newAPIGate(time.Hour)
	r := &apiReachability{log: logr.Discard(), reachable: &fakeGauge{}, logEvery: time.Minute, gate: g}
	now := time.Now()
	r.observe(now, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"))
	assert.True(t, g.isHeld(), "no answer holds the reads")
	r.observe(now.Add(time.Second), apierrors.NewInternalError(errors.New("readyz check failed")))
	require.Eventually(t, func() bool { return !g.isHeld() }, 10*time.Second, time.Millisecond,
		"an HTTP answer, even an error, releases the reads: the server is there")
	assert.True(t, r.unreachable(), "a /readyz that fails still counts as unreachable for the operator")
	r.observe(now.Add(2*time.Second), apierrors.NewForbidden(schema.GroupResource{}, "readyz", errors.New("no")))
	assert.False(t, g.isHeld())
	r.observe(now.Add(3*time.Second), errors.New("i/o timeout"))
	assert.True(t, g.isHeld())
	r.observe(now.Add(4*time.Second), nil)
	require.Eventually(t, func() bool { return !g.isHeld() }, 10*time.Second, time.Millisecond)
	assert.False(t, r.unreachable())
}
