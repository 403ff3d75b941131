package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"

	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/informer/prommetrics"
)

func TestPolicyCountersFlags(t *testing.T) {
	o, err := parseFlags([]string{"--node-name", "n"}, env(), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "policy", o.counters.detail)
	assert.Equal(t, prommetrics.DefaultCounterInterval, o.counters.interval)

	o, err = parseFlags([]string{"--node-name", "n", "--policy-counters", "rule", "--policy-counters-interval", "30s"}, env(), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "rule", o.counters.detail)
	assert.Equal(t, 30*time.Second, o.counters.interval)

	_, err = parseFlags([]string{"--node-name", "n", "--policy-counters", "all", "--policy-counters-interval", "0"}, env(), io.Discard)
	require.Error(t, err)
	assert.ErrorContains(t, err, `--policy-counters: unknown counter detail "all"`)
	assert.ErrorContains(t, err, "--policy-counters-interval 0s")
}

// TestPolicyCountersMetrics serves the counters of the agent's backend,
// wrapped in the established-connections follower as the agent runs it,
// on its registry: a memory backend's decisions show on /metrics, per
// policy by default and per rule with --policy-counters=rule.
func TestPolicyCountersMetrics(t *testing.T) {
	for _, tc := range []struct {
		detail string
		want   []string
		absent []string
	}{
		{"policy", []string{
			`palisade_policy_packets_total{action="allow",direction="ingress",kind="NetworkPolicy",namespace="shop",policy="allow-client",tier="NetworkPolicy"} 2`,
			`palisade_policy_default_packets_total{action="deny",direction="ingress",tier="NetworkPolicy"} 1`,
		}, []string{"palisade_policy_rule_packets_total"}},
		{"rule", []string{
			`palisade_policy_rule_packets_total{action="deny",direction="ingress",kind="AdminNetworkPolicy",namespace="",policy="guard",rule="0",rule_name="deny-9999",tier="Admin"} 0`,
		}, nil},
		{"off", nil, []string{"palisade_policy_packets_total", "palisade_policy_counters_read_seconds"}},
	} {
		t.Run(tc.detail, func(t *testing.T) {
			mem := memory.New(memory.Config{})
			snap, ips := backendtest.CountersSnapshot()
			_, err := mem.Sync(context.Background(), snap)
			require.NoError(t, err)
			for _, src := range []string{"shop/client", "shop/client", "shop/other"} {
				mem.Evaluate(memory.Flow{Src: ips[src][0], Dst: ips["shop/server"][0], Protocol: 6, Port: 80})
			}
			o := &options{established: "follow", counters: counterOptions{detail: tc.detail, interval: time.Second}}
			be, done, err := followEstablished(mem, o, newEstablishedMetrics(prometheus.NewRegistry()), klog.Background())
			if err != nil {
				t.Skipf("conntrack follower unavailable here: %v", err)
			}
			defer done()
			reg := prometheus.NewRegistry()
			registered, err := registerPolicyCounters(reg, be, o.counters)
			require.NoError(t, err)
			assert.Equal(t, tc.detail != "off", registered)

			rec := httptest.NewRecorder()
			promhttpHandler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			body := rec.Body.String()
			for _, line := range tc.want {
				assert.Contains(t, body, line+"\n")
			}
			for _, name := range tc.absent {
				assert.NotContains(t, body, name)
			}
		})
	}
}
