package policy_test

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

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
	// clusterChanges upsert the cluster-wide policies and nodes, loaded
	// after the rest.
	clusterChanges []policytest.Change
}

func objectsOf(c *policytest.Cluster) objects {
	o := objects{namespaces: c.Namespaces(), pods: c.Pods(), policies: c.Policies()}
	for _, ch := range policytest.Changes(nil, c) {
		switch ch.Kind {
		case "Namespace", "Pod", "NetworkPolicy":
		default:
			o.clusterChanges = append(o.clusterChanges, ch)
		}
	}
	return o
}

// clusterBenchPolicies is how many cluster-wide policies the "+cluster"
// variants mix in.
const clusterBenchPolicies = 100

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
	for _, ch := range c.clusterChanges {
		if err := ch.Apply(e); err != nil {
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
// "+cluster" mixes in 100 cluster-wide policies and the nodes (10k pods
// only; compare with the same size's all-local and node).
func BenchmarkFullCompile(b *testing.B) {
	for _, size := range benchSizes {
		full := policytest.Synthetic(size)
		c := objectsOf(full)
		withCluster := full.Clone()
		policytest.AddSyntheticClusterPolicies(withCluster, size, clusterBenchPolicies)
		wc := objectsOf(withCluster)
		full.DeletePolicies()
		noPolicies := objectsOf(full)
		variants := []struct {
			name    string
			cfg     policy.Config
			cluster objects
		}{
			{"baseline-no-policies", policy.Config{}, noPolicies},
			{"all-local", policy.Config{}, c},
			{"node", policy.Config{NodeName: "node-0"}, c},
		}
		if size.Pods <= 10_000 {
			variants = append(variants,
				struct {
					name    string
					cfg     policy.Config
					cluster objects
				}{"all-local+cluster", policy.Config{}, wc},
				struct {
					name    string
					cfg     policy.Config
					cluster objects
				}{"node+cluster", policy.Config{NodeName: "node-0"}, wc})
		}
		for _, variant := range variants {
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
// must not grow with the cluster. "+cluster" mixes in 100 cluster-wide
// policies whose peers include role=frontend pods: the same change must cost
// about the same.
func BenchmarkPodLabelChange(b *testing.B) {
	for _, size := range benchSizes {
		full := policytest.Synthetic(size)
		plain := objectsOf(full)
		policytest.AddSyntheticClusterPolicies(full, size, clusterBenchPolicies)
		withCluster := objectsOf(full)
		for _, variant := range []struct {
			name    string
			cfg     policy.Config
			cluster objects
		}{
			{"all-local", policy.Config{}, plain},
			{"node", policy.Config{NodeName: "node-1"}, plain},
			{"all-local+cluster", policy.Config{}, withCluster},
			{"node+cluster", policy.Config{NodeName: "node-1"}, withCluster},
		} {
			b.Run(sizeName(size)+"/"+variant.name, func(b *testing.B) {
				e := policy.New(variant.cfg)
				load(b, e, variant.cluster)
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

// BenchmarkClusterPriorityChange moves one ClusterNetworkPolicy between two
// priorities and takes the delta: its own rule list is re-emitted (its
// Priority changed: its ingress and its egress list) and the endpoints it
// selects re-ordered; no other list and no set changes. The baseline is the pod label change of the same
// cluster (BenchmarkPodLabelChange, "+cluster").
func BenchmarkClusterPriorityChange(b *testing.B) {
	size := benchSizes[0]
	full := policytest.Synthetic(size)
	policytest.AddSyntheticClusterPolicies(full, size, clusterBenchPolicies)
	c := objectsOf(full)
	for _, variant := range []struct {
		name string
		cfg  policy.Config
	}{{"all-local", policy.Config{}}, {"node", policy.Config{NodeName: "node-1"}}} {
		b.Run(sizeName(size)+"/"+variant.name, func(b *testing.B) {
			e := policy.New(variant.cfg)
			load(b, e, c)
			e.Delta() // ends the delta: the loop sees only its changes
			cnps := []*v1beta1.ClusterNetworkPolicy{full.ClusterNetworkPolicy("cnp-admin-1"), full.ClusterNetworkPolicy("cnp-admin-1")}
			cnps[1].Spec.Priority = 0 // before anp-51, at 10 like cnp-admin-1: re-orders
			var lists, others, endpoints, sets int
			i := 0
			for b.Loop() {
				if err := e.UpsertClusterNetworkPolicy(cnps[(i+1)%2]); err != nil { // cnps[0] is loaded
					b.Fatal(err)
				}
				i++
				d := e.Delta()
				for _, rl := range d.RuleLists {
					if rl.Origin.Name != "cnp-admin-1" {
						others++
					}
				}
				lists += len(d.RuleLists) + len(d.RemovedRuleLists)
				endpoints += len(d.Endpoints)
				sets += len(d.AddedAddressSets) + len(d.AddressSetChanges) + len(d.RemovedAddressSets)
			}
			if lists != 2*i || others != 0 || sets != 0 {
				b.Fatalf("%d priority changes re-emitted %d lists (%d of other policies) and %d sets; want its own 2 lists each", i, lists, others, sets)
			}
			b.ReportMetric(float64(lists)/float64(i), "lists/op")
			b.ReportMetric(float64(endpoints)/float64(i), "endpoints/op")
		})
	}
}

// liveHeap returns the bytes of live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
