package e2e

import (
	"context"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typednetworkingv1 "k8s.io/client-go/kubernetes/typed/networking/v1"

	"github.com/palisade-net/palisade/examples/e2e/cluster"
)

// checkPolicyCounters creates np (a default deny of the server's ingress)
// once more, waits until a probe is denied, and checks that the agent's
// /metrics shows the isolated ingress default counting it (read from the
// kernel on scrape, the agent's default --policy-counters=policy), with no
// failed read.
func checkPolicyCounters(ctx context.Context, t *testing.T, agent *cluster.Agent, nps typednetworkingv1.NetworkPolicyInterface,
	np *networkingv1.NetworkPolicy, waitVerdict func(string, bool, time.Duration) time.Time) {
	t.Helper()
	if _, err := nps.Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVerdict("after creating default-deny for the counters", false, 10*time.Second)
	const series = `palisade_policy_default_packets_total{action="deny",direction="ingress",tier="NetworkPolicy"}`
	// The agent reads the counters at most every 5 s: the first scrape
	// may get the read before the denial.
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := agent.Metrics()
		if err != nil {
			t.Fatalf("/metrics: %v", err)
		}
		if m[series] >= 1 {
			if e := m["palisade_policy_counters_read_errors_total"]; e != 0 {
				t.Errorf("palisade_policy_counters_read_errors_total = %v, want 0", e)
			}
			t.Logf("%s = %v after the denied probes", series, m[series])
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 20 s, want at least 1 (a denied SYN)", series, m[series])
		}
		time.Sleep(500 * time.Millisecond)
	}
}
