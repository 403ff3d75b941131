package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"

	"github.com/palisade-net/palisade/backend/conntrack"
	"github.com/palisade-net/palisade/backend/memory"
)

func TestEstablishedFlag(t *testing.T) {
	o, err := parseFlags([]string{"--node-name", "n"}, env(), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "follow", o.established, "follow by default")

	o, err = parseFlags([]string{"--node-name", "n", "--established", "keep"}, env(), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "keep", o.established)

	_, err = parseFlags([]string{"--node-name", "n", "--established", "cut"}, env(), io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--established: established-connections mode "cut"`)
}

func TestFollowEstablishedWraps(t *testing.T) {
	be := memory.New(memory.Config{})
	m := newEstablishedMetrics(prometheus.NewRegistry())

	got, done, err := followEstablished(be, &options{established: "keep"}, m, klog.Background())
	require.NoError(t, err)
	done()
	assert.Same(t, be, got, "keep: the backend itself")

	_, _, err = followEstablished(be, &options{established: "follow", netns: "/nonexistent/ns"}, m, klog.Background())
	assert.ErrorContains(t, err, "--netns")
}

func TestEstablishedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var m conntrack.Metrics = newEstablishedMetrics(reg)
	m.ObserveCut(3, 20*time.Millisecond)
	m.ObserveCut(1, 5*time.Millisecond)
	m.IncError()

	rec := httptest.NewRecorder()
	promhttpHandler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, line := range []string{
		"palisade_established_connections_cut_total 4",
		"palisade_event_to_connections_cut_seconds_count 2",
		"palisade_established_follow_errors_total 1",
	} {
		assert.Contains(t, body, line+"\n")
	}
}

func promhttpHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
