package policy_test

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/policytest"
)

// benchSizes are the sizes DESIGN.md sets targets for.
var benchSizes = []policytest.SyntheticConfig{
	{Pods: 10_000, Namespaces: 500, Policies: 1_000, Nodes: 100, Seed: 1},
	{Pods: 100_000, Namespaces: 5_000, Policies: 10_000, Nodes: 1_000, Seed: 1},
}

func sizeName(c policytest.SyntheticConfig) string {
	return fmt.Sprintf("pods=%d,ns=%d,policies=%d", c.Pods, c.Namespaces, c.Policies)
}

// objects is a cluster's content, copied out once so that benchmarks time
// the engine, not the copies.
type objects struct {
	namespaces []*corev1.Namespace
	pods       []*corev1.Pod
	policies   []*networkingv1.NetworkPolicy
}

func objectsOf(c *policytest.Cluster) objects {
	return objects{c.Namespaces(), c.Pods(), c.Policies()}
}

func load(b *testing.B, e policy.Engine, c objects) {
	for _, ns := range c.namespaces {
		e.UpsertNamespace(ns)
	}
	for _, p := range c.pods {
		if err := e.UpsertPod(p); err != nil {
			b.Fatal(err)
		}
	}
	for _, np := range c.policies {
		if err := e.UpsertNetworkPolicy(np); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullCompile loads a whole cluster into a new engine and takes its
// snapshot. "all-local" makes every pod an endpoint (netpolctl simulate's
// view, the worst case); "node" enforces one node's pods (a node agent's
// view). heap-MiB is the live heap the engine and its snapshot hold after the
// compile (the input objects excluded).
// The baseline is the same objects loaded with no policy at all.
func BenchmarkFullCompile(b *testing.B) {
	for _, size := range benchSizes {
		full := policytest.Synthetic(size)
		c := objectsOf(full)
		full.DeletePolicies()
		noPolicies := objectsOf(full)
		for _, variant := range []struct {
			name    string
			cfg     policy.Config
			cluster objects
		}{
			{"baseline-no-policies", policy.Config{}, noPolicies},
			{"all-local", policy.Config{}, c},
			{"node", policy.Config{NodeName: "node-0"}, c},
		} {
			b.Run(sizeName(size)+"/"+variant.name, func(b *testing.B) {
				var heap uint64
				for b.Loop() {
					b.StopTimer()
					before := liveHeap()
					b.StartTimer()
					e := policy.New(variant.cfg)
					load(b, e, variant.cluster)
					snap := e.Checkpoint()
					b.StopTimer()
					heap = liveHeap() - before
					runtime.KeepAlive(e)
					runtime.KeepAlive(snap)
					b.StartTimer()
				}
				b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
			})
		}
	}
}

// BenchmarkPodLabelChange flips one pod's role between frontend and backend
// and takes the delta. That pod (pod-1, in ns-1 on node-1) is a peer of
// ns-1's role=frontend rules and of every namespace's cross-namespace
// "env=prod, role in (backend,worker)" rules, and may be selected by ns-1's
// policies, so the change moves set members and endpoint tiers. Its cost
// must not grow with the cluster.
func BenchmarkPodLabelChange(b *testing.B) {
	for _, size := range benchSizes {
		c := objectsOf(policytest.Synthetic(size))
		for _, variant := range []struct {
			name string
			cfg  policy.Config
		}{{"all-local", policy.Config{}}, {"node", policy.Config{NodeName: "node-1"}}} {
			b.Run(sizeName(size)+"/"+variant.name, func(b *testing.B) {
				e := policy.New(variant.cfg)
				load(b, e, c)
				e.Checkpoint() // the changes so far are the base of the deltas below
				pods := []*corev1.Pod{
					policytest.SyntheticPod(1, size.Namespaces, size.Nodes, map[string]string{"app": "app-1", "role": "frontend", "version": "v1"}),
					policytest.SyntheticPod(1, size.Namespaces, size.Nodes, map[string]string{"app": "app-1", "role": "backend", "version": "v1"}),
				}
				var changes int
				i := 0
				for b.Loop() {
					if err := e.UpsertPod(pods[i%2]); err != nil {
						b.Fatal(err)
					}
					i++
					d := e.Delta()
					for _, ch := range d.AddressSetChanges {
						changes += len(ch.Added) + len(ch.Removed)
					}
				}
				if changes == 0 {
					b.Fatal("the label change moved no set member")
				}
				b.ReportMetric(float64(changes)/float64(i), "members/op")
			})
		}
	}
}

// liveHeap returns the bytes of live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
