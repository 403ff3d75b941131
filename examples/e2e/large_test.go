package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/examples/e2e/cluster"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

// TestAgentRSSLarge writes a synthetic cluster of 10,000 pods (100 per node
// over 100 nodes, 100 namespaces) and 1,000 NetworkPolicies to the API
// server, starts the agent for node-0 (in a lab node's namespace; none of
// the pods has a lab namespace: only their API objects and IPs matter),
// waits until it is ready and has programmed its 100 local pods, and logs
// its resident memory and sync durations. It takes a few minutes on two
// cores, so it runs only with PALISADE_E2E_LARGE=1 and not in -short mode.
func TestAgentRSSLarge(t *testing.T) {
	if testing.Short() || os.Getenv("PALISADE_E2E_LARGE") != "1" {
		t.Skip("10k pods / 1k policies through the API server takes minutes: set PALISADE_E2E_LARGE=1 (and no -short)")
	}
	cluster.Skip(t, cluster.Options{})
	bin := cluster.BuildNodeAgent(t)
	c := cluster.Start(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if _, err := c.ApplyRBAC(ctx, rbacPaths...); err != nil {
		t.Fatalf("ApplyRBAC: %v", err)
	}
	l, err := lab.New(ctx, lab.Config{Nodes: 1})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })

	const pods, namespaces, policies, nodes = 10_000, 100, 1_000, 100
	syn := pt.Synthetic(pt.SyntheticConfig{Pods: pods, Namespaces: namespaces, Policies: policies, Nodes: nodes, Seed: 1})
	local := 0
	for _, p := range syn.Pods() {
		if p.Spec.NodeName == "node-0" && p.Status.PodIP != "" && !p.Spec.HostNetwork {
			local++
		}
	}
	admin := c.AdminClient()

	start := time.Now()
	for _, ns := range syn.Namespaces() {
		ns.ResourceVersion = ""
		if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	podObjs := syn.Pods()
	parallel(ctx, t, len(podObjs), 16, func(i int) error { return createPodWithStatus(ctx, admin, podObjs[i]) })
	podsDone := time.Since(start)
	npObjs := syn.Policies()
	parallel(ctx, t, len(npObjs), 16, func(i int) error {
		np := npObjs[i]
		np.ResourceVersion = ""
		_, err := admin.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{})
		return err
	})
	t.Logf("API writes: %d namespaces and %d pods (create + status) in %v, %d NetworkPolicies in %v",
		namespaces, len(podObjs), podsDone.Round(time.Millisecond), len(npObjs), (time.Since(start) - podsDone).Round(time.Millisecond))

	h, err := l.NodeNS(0)
	if err != nil {
		t.Fatal(err)
	}
	agentStart := time.Now()
	a, err := c.StartAgent(ctx, bin, cluster.AgentOptions{
		NodeName: "node-0", NetNSFd: int(h), TableName: "palisade_e2e",
		MinSyncInterval: 10 * time.Millisecond, ReadyTimeout: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	ready := time.Since(agentStart)
	m, settled := waitProgrammed(ctx, t, a, local, 5*time.Minute)
	programmed := settled.Sub(agentStart)
	rss, err := a.RSS()
	if err != nil {
		t.Fatal(err)
	}
	hwm, err := a.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	syncs, syncSum := m["palisade_sync_duration_seconds_count"], m["palisade_sync_duration_seconds_sum"]
	mean := 0.0
	if syncs > 0 {
		mean = syncSum / syncs
	}
	t.Logf("agent for node-0 at %d pods (%d local) / %d policies: ready (/readyz) %v after start, "+
		"programmed (generation final, checked for 2 s more) %v after start; VmRSS %.1f MiB, VmHWM %.1f MiB; %v full syncs, mean %.1f ms; "+
		"endpoints %v, rule lists %v, set members %v",
		pods, local, policies, ready.Round(time.Millisecond), programmed.Round(time.Millisecond),
		float64(rss)/(1<<20), float64(hwm)/(1<<20), syncs, mean*1e3,
		m["palisade_endpoints"], m["palisade_rule_lists"], m["palisade_set_members"])

	// One more change at this size: a policy isolating the namespace of a
	// local pod; time the agent's generation advancing.
	g0 := m["palisade_programmed_generation"]
	var lp *corev1.Pod
	for _, p := range podObjs {
		if p.Spec.NodeName == "node-0" {
			lp = p
			break
		}
	}
	if _, err := admin.NetworkingV1().NetworkPolicies(lp.Namespace).Create(ctx,
		pt.NetworkPolicy(lp.Namespace, "e2e-one-more", pt.WithIngress()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	deadline := written.Add(convergeBound)
	for {
		v, err := a.Metric("palisade_programmed_generation")
		if err == nil && v != g0 {
			t.Logf("one more policy at this size (namespace %s): programmed %v after the API write returned", lp.Namespace, time.Since(written).Round(100*time.Microsecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation still %v %v after creating a policy in %s (%v)", g0, convergeBound, lp.Namespace, err)
		}
		time.Sleep(time.Millisecond)
	}
	rss2, _ := a.RSS()
	t.Logf("README: | 10k pods / 1k policies, agent for 1 node (%d local pods) | VmRSS %.0f MiB (peak %.0f MiB) | ready %.1f s, programmed %.1f s | mean full sync %.1f ms |",
		local, float64(max(rss, rss2))/(1<<20), float64(hwm)/(1<<20), ready.Seconds(), programmed.Seconds(), mean*1e3)
}

// waitProgrammed polls the agent's metrics until it enforces local
// endpoints and its programmed generation has not moved for 2 s. It
// returns the last metrics and when the generation last moved (the first
// scrape that saw the final state).
func waitProgrammed(ctx context.Context, t *testing.T, a *cluster.Agent, local int, bound time.Duration) (map[string]float64, time.Time) {
	t.Helper()
	deadline := time.Now().Add(bound)
	var last map[string]float64
	var stableSince time.Time
	for {
		m, err := a.Metrics()
		if err == nil {
			if last != nil && m["palisade_programmed_generation"] == last["palisade_programmed_generation"] &&
				int(m["palisade_endpoints"]) == local && m["palisade_rule_lists"] > 0 {
				if stableSince.IsZero() {
					stableSince = time.Now()
				} else if time.Since(stableSince) >= 2*time.Second {
					return m, stableSince
				}
			} else if int(m["palisade_endpoints"]) == local && m["palisade_rule_lists"] > 0 {
				stableSince = time.Now()
			} else {
				stableSince = time.Time{}
			}
			last = m
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("agent not programmed after %v: endpoints %v (want %d), rule lists %v, generation %v (last error %v)",
				bound, last["palisade_endpoints"], local, last["palisade_rule_lists"], last["palisade_programmed_generation"], err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// parallel runs do(0..n-1) on workers goroutines and fails the test on the
// first error.
func parallel(ctx context.Context, t *testing.T, n, workers int, do func(i int) error) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(i); err != nil {
					once.Do(func() { first = fmt.Errorf("item %d: %w", i, err) })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}
