package selector

import (
	"fmt"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cluster is a synthetic cluster typical of network policy: namespaces with a
// team and an env label, pods with app/tier/version/pod-template-hash labels
// and their namespace's labels under nsPrefix, and the selectors policies make
// of them.
type cluster struct {
	names  []string
	labels []map[string]string
	sels   []Selector
}

const podsPerNS = 20

func makeCluster(tb testing.TB, objects int) *cluster {
	nNS := objects / podsPerNS
	tiers := []string{"frontend", "backend", "db"}
	envs := []string{"prod", "staging", "dev"}
	c := &cluster{}
	for i := range nNS {
		ns := fmt.Sprintf("ns-%d", i)
		for j := range podsPerNS {
			c.names = append(c.names, fmt.Sprintf("%s/pod-%d", ns, j))
			c.labels = append(c.labels, map[string]string{
				nsPrefix + "kubernetes.io/metadata.name": ns,
				nsPrefix + "team":                        fmt.Sprintf("team-%d", i%100),
				nsPrefix + "env":                         envs[i%3],
				"app":                                    fmt.Sprintf("app-%d", j%10),
				"tier":                                   tiers[j%3],
				"version":                                fmt.Sprintf("v%d", j%2),
				"pod-template-hash":                      fmt.Sprintf("h%d-%d", i, j%10),
			})
		}
	}
	// Namespace-scoped podSelectors: three apps per namespace.
	for i := range nNS {
		for k := range 3 {
			c.sels = append(c.sels, inNamespace(fmt.Sprintf("ns-%d", i), Equal("app", fmt.Sprintf("app-%d", k))))
		}
	}
	// Cross-namespace peers: namespaceSelector team=Y AND a podSelector.
	extra := []Selector{
		Equal("tier", "frontend"), Equal("tier", "backend"),
		mustCompile(tb, withExpr("tier", metav1.LabelSelectorOpIn, "frontend", "backend")),
		Equal("version", "v1"), Everything(),
	}
	for i := range 5000 {
		nsSel := Equal("team", fmt.Sprintf("team-%d", i%100)).WithKeyPrefix(nsPrefix)
		podSel := Equal("app", fmt.Sprintf("app-%d", (i/100)%10)).And(extra[(i/1000)%len(extra)])
		c.sels = append(c.sels, nsSel.And(podSel))
	}
	// A few broad ones: every pod, namespaceSelector alone, negative-only.
	c.sels = append(c.sels,
		Everything(),
		Equal("env", "prod").WithKeyPrefix(nsPrefix),
		mustCompile(tb, withExpr("env", metav1.LabelSelectorOpNotIn, "dev")).WithKeyPrefix(nsPrefix),
		mustCompile(tb, withExpr("legacy", metav1.LabelSelectorOpDoesNotExist)),
		mustCompile(tb, withExpr("tier", metav1.LabelSelectorOpExists)),
	)
	return c
}

func (c *cluster) load(objectsFirst bool) *Index[string] {
	ix := NewIndex[string]()
	if !objectsFirst {
		for _, s := range c.sels {
			ix.Add(s)
		}
	}
	for i, name := range c.names {
		ix.Upsert(name, c.labels[i])
	}
	if objectsFirst {
		for _, s := range c.sels {
			ix.Add(s)
		}
	}
	return ix
}

func heapMiB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// BenchmarkIndexLoad loads 100k pods in 5k namespaces and ~20k distinct
// selectors into an empty index, in both orders.
func BenchmarkIndexLoad(b *testing.B) {
	c := makeCluster(b, 100_000)
	for _, objectsFirst := range []bool{true, false} {
		name := "selectors-first"
		if objectsFirst {
			name = "objects-first"
		}
		b.Run(name, func(b *testing.B) {
			base := heapMiB()
			var ix *Index[string]
			b.ReportAllocs()
			for b.Loop() {
				ix = c.load(objectsFirst)
			}
			b.StopTimer()
			b.ReportMetric(heapMiB()-base, "heap-MiB")
			b.ReportMetric(float64(ix.SelectorCount()), "selectors")
			runtime.KeepAlive(ix)
		})
	}
}

// BenchmarkUpsertLabelChange flips one pod's app label back and forth in a
// loaded index: each flip leaves and enters namespace-scoped and
// cross-namespace match sets. The cost must not grow with the cluster.
func BenchmarkUpsertLabelChange(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			c := makeCluster(b, n)
			ix := c.load(true)
			const victim = 3 // app-3: matched by cross-namespace selectors
			a := c.labels[victim]
			other := make(map[string]string, len(a))
			for k, v := range a {
				other[k] = v
			}
			other["app"] = "app-1" // app-1: also namespace-scoped selectors
			flip := []map[string]string{other, a}
			changes := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				changes += len(ix.Upsert(c.names[victim], flip[i&1]))
				i++
			}
			b.ReportMetric(float64(changes)/float64(i), "changes/op")
		})
	}
}

// BenchmarkAdd registers (and releases) one new selector in a loaded index
// of 100k objects.
func BenchmarkAdd(b *testing.B) {
	c := makeCluster(b, 100_000)
	ix := c.load(true)
	cases := []struct {
		name string
		sel  Selector
	}{
		// Anchored on a 20-pod namespace bucket.
		{"namespace-scoped", inNamespace("ns-42", Equal("app", "app-7"))},
		// Anchored on a team's namespaces (1k pods), 50 matches.
		{"cross-namespace", Equal("team", "team-7").WithKeyPrefix(nsPrefix).And(Equal("app", "app-9")).
			And(mustCompile(b, withExpr("tier", metav1.LabelSelectorOpIn, "db", "frontend")))},
		// Already registered: a refcount.
		{"existing", c.sels[0]},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			matched := 0
			b.ReportAllocs()
			for b.Loop() {
				id, _ := ix.Add(tc.sel)
				matched = ix.MatchCount(id)
				ix.Release(id)
			}
			b.ReportMetric(float64(matched), "matches")
		})
	}
	// No positive requirement: every object is checked.
	b.Run("unanchored", func(b *testing.B) {
		b.ReportAllocs()
		sel := mustCompile(b, withExpr("nope", metav1.LabelSelectorOpDoesNotExist))
		for b.Loop() {
			id, _ := ix.Add(sel)
			ix.Release(id)
		}
	})
}
