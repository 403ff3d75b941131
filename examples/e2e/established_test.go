package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/examples/e2e/cluster"
)

// TestEstablishedConnectionCut: the agent (--established=follow, its
// default) cuts an open connection when the label that allowed it is
// removed through the API server. Each round labels the client
// role=frontend, opens a connection to the database (which admits
// frontends only) and removes the label; the figure is from the API write
// returning to the start of the first echo check on the open connection
// that fails, beside the agent's own event → cut histogram.
func TestEstablishedConnectionCut(t *testing.T) {
	cluster.Skip(t, cluster.Options{}) // before building anything
	bin := cluster.BuildNodeAgent(t)
	c := cluster.Start(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.ApplyRBAC(ctx, rbacPaths...); err != nil {
		t.Fatalf("ApplyRBAC: %v", err)
	}
	// Generous: an echo slowed by a loaded machine must not pass for a cut.
	// A check that fails started at most this long before it failed, so
	// the timeout does not lengthen the figure.
	const probeTimeout = 500 * time.Millisecond
	l, err := lab.New(ctx, lab.Config{Nodes: 1, ProbeTimeout: probeTimeout})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })

	const nodeName, ns = "node-0", "shop"
	client, db := netip.MustParseAddr("10.244.0.10"), netip.MustParseAddr("10.244.0.11")
	admin := c.AdminClient()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, ip := range map[string]netip.Addr{"client": client, "db": db} {
		if err := l.AddPod(ctx, lab.PodSpec{Name: ns + "/" + name, Node: 0, IPs: []netip.Addr{ip}}); err != nil {
			t.Fatalf("lab pod %s: %v", name, err)
		}
		createRunningPod(ctx, t, admin, ns, name, nodeName, ip)
	}
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(80)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "db-from-frontend", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
	if _, err := admin.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	h, err := l.NodeNS(0)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := c.StartAgent(ctx, bin, cluster.AgentOptions{
		NodeName: nodeName, NetNSFd: int(h), TableName: "palisade_e2e", MinSyncInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	probe := lab.Probe{Src: ns + "/client", Dst: db, Port: 80, Protocol: lab.TCP}
	label := func(patch string) {
		t.Helper()
		if _, err := admin.CoreV1().Pods(ns).Patch(ctx, "client", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const rounds = 20
	var toCut []time.Duration
	for i := range rounds {
		label(`{"metadata":{"labels":{"role":"frontend"}}}`)
		deadline := time.Now().Add(10 * time.Second)
		for !l.Probe(ctx, []lab.Probe{probe})[0].Connected {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: client labelled frontend still cannot connect", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		var held []*lab.Held
		for held == nil || held[0] == nil {
			var res []lab.Result
			held, res = l.Hold(ctx, []lab.Probe{probe})
			if res[0].Err != nil || (!res[0].Connected && time.Now().After(deadline)) {
				t.Fatalf("round %d: hold: %v %s", i, res[0].Err, res[0].Detail)
			}
		}

		written := time.Now()
		label(`{"metadata":{"labels":{"role":null}}}`)
		deadline = time.Now().Add(10 * time.Second)
		for {
			start := time.Now()
			r := held[0].Check(ctx)
			if r.Err != nil {
				t.Fatalf("round %d: check: %v", i, r.Err)
			}
			if !r.Connected {
				toCut = append(toCut, start.Sub(written))
				if l.Probe(ctx, []lab.Probe{probe})[0].Connected {
					t.Fatalf("round %d: the open connection failed but new ones still connect: not a cut", i)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the open connection still echoes 10s after the label was removed", i)
			}
			time.Sleep(time.Millisecond)
		}
		held[0].Close()
	}
	m, err := agent.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if cut := m["palisade_established_connections_cut_total"]; cut < rounds {
		t.Errorf("agent cut %v connections, want at least %d", cut, rounds)
	}
	n, sum := m["palisade_event_to_connections_cut_seconds_count"], m["palisade_event_to_connections_cut_seconds_sum"]
	agentMean := time.Duration(0)
	if n > 0 {
		agentMean = time.Duration(sum / n * float64(time.Second))
	}
	t.Logf("established connection cut over %d label removals: API write returned → first failing echo check on the open connection: %s; "+
		"agent's event → cut mean %v over %v cuts (a check that started just before the cut and failed reads early; checks wait up to %v for the echo)",
		rounds, pcts(toCut), agentMean.Round(10*time.Microsecond), n, probeTimeout)
	t.Logf("README: | established connection cut, %d label removals | first failing check: %s | agent mean %v |", rounds, pcts(toCut), agentMean.Round(10*time.Microsecond))
}
