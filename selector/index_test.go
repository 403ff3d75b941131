package selector

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// --- builders ---

type pod struct {
	name   string
	labels map[string]string
}

type podTweak func(*pod)

// makePod returns a pod "ns/name" whose labels carry its namespace's name
// under the reserved prefix, as the engine encodes them.
func makePod(ns, name string, tweaks ...podTweak) pod {
	p := pod{name: ns + "/" + name, labels: map[string]string{nsPrefix + "kubernetes.io/metadata.name": ns}}
	for _, t := range tweaks {
		t(&p)
	}
	return p
}

func withLabels(kv ...string) podTweak {
	return func(p *pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.labels[kv[i]] = kv[i+1]
		}
	}
}

func withNSLabels(kv ...string) podTweak {
	return func(p *pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.labels[nsPrefix+kv[i]] = kv[i+1]
		}
	}
}

// inNamespace is a namespace-scoped pod selector, as the engine builds it.
func inNamespace(ns string, podSel Selector) Selector {
	return Equal(nsPrefix+"kubernetes.io/metadata.name", ns).And(podSel)
}

func upsert(ix *Index[string], p pod) []Change[string] { return ix.Upsert(p.name, p.labels) }

func matchesOf(ix *Index[string], id ID) []string {
	var out []string
	for obj := range ix.Matches(id) {
		out = append(out, obj)
	}
	slices.Sort(out)
	return out
}

func in(id ID, obj string) Change[string] {
	return Change[string]{Selector: id, Object: obj, Matched: true}
}
func out(id ID, obj string) Change[string] {
	return Change[string]{Selector: id, Object: obj, Matched: false}
}

func TestIndexBasics(t *testing.T) {
	ix := NewIndex[string]()
	require.Equal(t, 0, ix.Len())
	require.Equal(t, 0, ix.SelectorCount())

	webInProd, added := ix.Add(inNamespace("prod", Equal("app", "web")))
	require.True(t, added)
	require.Positive(t, webInProd)
	frontends, _ := ix.Add(mustCompile(t, withExpr("tier", metav1.LabelSelectorOpIn, "frontend", "edge")))

	assert.Equal(t, []Change[string]{in(webInProd, "prod/web-1")},
		upsert(ix, makePod("prod", "web-1", withLabels("app", "web"))))
	assert.Nil(t, upsert(ix, makePod("dev", "web-1", withLabels("app", "web"))), "another namespace")
	assert.Equal(t, []Change[string]{in(webInProd, "prod/web-2"), in(frontends, "prod/web-2")},
		upsert(ix, makePod("prod", "web-2", withLabels("app", "web", "tier", "frontend"))))

	assert.Equal(t, []string{"prod/web-1", "prod/web-2"}, matchesOf(ix, webInProd))
	assert.Equal(t, 2, ix.MatchCount(webInProd))
	assert.Equal(t, []ID{webInProd, frontends}, ix.SelectorsOf("prod/web-2"))
	assert.Nil(t, ix.SelectorsOf("dev/web-1"), "matched by nothing")
	assert.True(t, ix.Has(frontends, "prod/web-2"))
	assert.False(t, ix.Has(frontends, "prod/web-1"))
	assert.Equal(t, 3, ix.Len())
	assert.Equal(t, 2, ix.SelectorCount())

	// A label change: web-2 stops being web and becomes edge.
	assert.Equal(t, []Change[string]{out(webInProd, "prod/web-2")},
		upsert(ix, makePod("prod", "web-2", withLabels("app", "api", "tier", "edge"))))
	lbls, ok := ix.Labels("prod/web-2")
	require.True(t, ok)
	assert.Equal(t, "api", lbls["app"])

	// A selector registered after the objects sees them.
	apiAnywhere, _ := ix.Add(Equal("app", "api"))
	assert.Equal(t, []string{"prod/web-2"}, matchesOf(ix, apiAnywhere))
	assert.Equal(t, []ID{frontends, apiAnywhere}, ix.SelectorsOf("prod/web-2"))

	// Delete reports every match set left, by selector ID.
	assert.Equal(t, []Change[string]{out(frontends, "prod/web-2"), out(apiAnywhere, "prod/web-2")}, ix.Delete("prod/web-2"))
	assert.Nil(t, ix.Delete("prod/web-2"), "already gone")
	assert.Equal(t, 0, ix.MatchCount(apiAnywhere))
	assert.Equal(t, 2, ix.Len())
	_, ok = ix.Labels("prod/web-2")
	assert.False(t, ok)
}

func TestIndexRefcount(t *testing.T) {
	ix := NewIndex[string]()
	upsert(ix, makePod("a", "p", withLabels("app", "web", "tier", "db")))

	id1, added := ix.Add(Equal("app", "web").And(Equal("tier", "db")))
	require.True(t, added)
	id2, added := ix.Add(mustCompile(t, withMatchLabels("tier", "db"), withExpr("app", metav1.LabelSelectorOpIn, "web")))
	assert.False(t, added, "same canonical selector")
	assert.Equal(t, id1, id2)
	assert.Equal(t, 1, ix.SelectorCount())

	assert.False(t, ix.Release(id1), "one reference left")
	assert.Equal(t, 1, ix.MatchCount(id1))
	assert.True(t, ix.Release(id1), "last reference")
	assert.False(t, ix.Release(id1), "already removed")
	assert.Equal(t, 0, ix.SelectorCount())
	assert.True(t, ix.Selector(id1).IsNothing(), "removed id")
	assert.Equal(t, 0, ix.MatchCount(id1))
	assert.Nil(t, ix.SelectorsOf("a/p"))

	// The ID may be reused, with a fresh match set.
	id3, added := ix.Add(Equal("app", "other"))
	require.True(t, added)
	assert.Equal(t, id1, id3)
	assert.Equal(t, 0, ix.MatchCount(id3))
	assert.Equal(t, "app=other", ix.Selector(id3).String())
}

func TestIndexUnknown(t *testing.T) {
	ix := NewIndex[string]()
	id, _ := ix.Add(Everything())
	for _, bad := range []ID{0, -1, id + 1, math.MaxInt32} {
		assert.False(t, ix.Release(bad))
		assert.True(t, ix.Selector(bad).IsNothing())
		assert.False(t, ix.Has(bad, "x"))
		assert.Equal(t, 0, ix.MatchCount(bad))
		assert.Empty(t, slices.Collect(ix.Matches(bad)))
	}
	assert.False(t, ix.Has(id, "x"))
	assert.Nil(t, ix.SelectorsOf("x"))
	assert.Nil(t, ix.Delete("x"))
	l, ok := ix.Labels("x")
	assert.Nil(t, l)
	assert.False(t, ok)
	assert.Equal(t, 1, ix.SelectorCount())
}

func TestIndexUnchangedLabels(t *testing.T) {
	ix := NewIndex[string]()
	id, _ := ix.Add(Equal("app", "web"))
	p := makePod("a", "p", withLabels("app", "web"))
	require.Len(t, upsert(ix, p), 1)
	assert.Nil(t, upsert(ix, makePod("a", "p", withLabels("app", "web"))), "equal labels, new map")
	assert.Nil(t, upsert(ix, p), "same map")
	assert.True(t, ix.Has(id, "a/p"))

	// nil and empty labels are the same.
	assert.Nil(t, ix.Upsert("bare", nil))
	assert.Nil(t, ix.Upsert("bare", map[string]string{}))
	assert.Equal(t, 2, ix.Len())
	// A change that flips nothing returns nil.
	assert.Nil(t, upsert(ix, makePod("a", "p", withLabels("app", "web", "x", "y"))))
}

func TestIndexUnanchored(t *testing.T) {
	ix := NewIndex[string]()
	all, _ := ix.Add(Everything())
	none, _ := ix.Add(Nothing())
	notLegacy, _ := ix.Add(mustCompile(t, withExpr("legacy", metav1.LabelSelectorOpDoesNotExist),
		withExpr("tier", metav1.LabelSelectorOpNotIn, "db")))
	require.Equal(t, 3, ix.SelectorCount())

	assert.Equal(t, []Change[string]{in(all, "bare"), in(notLegacy, "bare")}, ix.Upsert("bare", nil))
	assert.Equal(t, []Change[string]{in(all, "db")}, ix.Upsert("db", lbl("tier", "db")))
	assert.Equal(t, []Change[string]{out(notLegacy, "bare")}, ix.Upsert("bare", lbl("legacy", "")))
	assert.Equal(t, []Change[string]{in(notLegacy, "db")}, ix.Upsert("db", lbl("tier", "web")))
	assert.Equal(t, 0, ix.MatchCount(none))
	assert.Equal(t, 2, ix.MatchCount(all))

	// Added after the objects: scans all of them.
	noTier, _ := ix.Add(mustCompile(t, withExpr("tier", metav1.LabelSelectorOpDoesNotExist)))
	assert.Equal(t, []string{"bare"}, matchesOf(ix, noTier))
	none2, added := ix.Add(Nothing())
	assert.False(t, added)
	assert.Equal(t, none, none2)

	assert.True(t, ix.Release(notLegacy))
	assert.Equal(t, []Change[string]{in(noTier, "db")}, ix.Upsert("db", lbl("legacy", "1")), "tier removed")
	assert.Equal(t, []Change[string]{out(all, "db"), out(noTier, "db")}, ix.Delete("db"))
}

func TestIndexNamespacePeers(t *testing.T) {
	ix := NewIndex[string]()
	// namespaceSelector team=blue AND podSelector role=frontend.
	nsSel := mustCompile(t, withMatchLabels("team", "blue"))
	podSel := mustCompile(t, withMatchLabels("role", "frontend"))
	peer, _ := ix.Add(nsSel.WithKeyPrefix(nsPrefix).And(podSel))
	// namespaceSelector alone: every pod of matching namespaces.
	nsOnly, _ := ix.Add(nsSel.WithKeyPrefix(nsPrefix))

	upsert(ix, makePod("a", "fe", withNSLabels("team", "blue"), withLabels("role", "frontend")))
	upsert(ix, makePod("a", "db", withNSLabels("team", "blue"), withLabels("role", "db")))
	upsert(ix, makePod("b", "fe", withNSLabels("team", "red"), withLabels("role", "frontend")))
	// A pod label that looks like the namespace label does not count.
	upsert(ix, makePod("c", "fe", withLabels("role", "frontend", "team", "blue")))

	assert.Equal(t, []string{"a/fe"}, matchesOf(ix, peer))
	assert.Equal(t, []string{"a/db", "a/fe"}, matchesOf(ix, nsOnly))

	// Namespace b is relabelled: the engine re-upserts its pods.
	assert.Equal(t, []Change[string]{in(peer, "b/fe"), in(nsOnly, "b/fe")},
		upsert(ix, makePod("b", "fe", withNSLabels("team", "blue"), withLabels("role", "frontend"))))
}

func TestIndexAnchorChoice(t *testing.T) {
	ix := NewIndex[string]()
	for i := range 50 {
		upsert(ix, makePod("big", string(rune('a'+i%26))+string(rune('a'+i/26)), withLabels("app", "web", "team", "x")))
	}
	upsert(ix, makePod("small", "p", withLabels("app", "web", "team", "x", "rare", "1")))

	id, _ := ix.Add(Equal("app", "web").And(Equal("rare", "1")).And(Equal("team", "x")))
	rec := &ix.sels[id]
	assert.Equal(t, "rare", rec.sel.Requirements()[rec.anchorReq].Key, "the smallest bucket")
	assert.Equal(t, 1, ix.MatchCount(id))

	// In over several values costs the sum of its buckets; Exists the key's.
	id2, _ := ix.Add(mustCompile(t, withExpr("app", metav1.LabelSelectorOpIn, "web", "none"),
		withExpr("rare", metav1.LabelSelectorOpExists)))
	rec = &ix.sels[id2]
	assert.Equal(t, Exists, rec.sel.Requirements()[rec.anchorReq].Op)
	assert.Len(t, rec.anchors, 1)

	// Only negative requirements: unanchored.
	id3, _ := ix.Add(mustCompile(t, withExpr("rare", metav1.LabelSelectorOpNotIn, "1")))
	assert.EqualValues(t, -1, ix.sels[id3].anchorReq)
	assert.Equal(t, 50, ix.MatchCount(id3))
}

// TestIndexReanchor registers selectors on an empty index, where every bucket
// is empty and anchors are chosen blind, then loads objects: anchors must move
// to the selective requirement as buckets grow.
func TestIndexReanchor(t *testing.T) {
	ix := NewIndex[string]()
	// Canonical order puts "app" first: with all buckets empty it is the anchor.
	id, _ := ix.Add(Equal("app", "web").And(Equal("zone", "z1")))
	exists, _ := ix.Add(mustCompile(t, withExpr("app", metav1.LabelSelectorOpExists), withMatchLabels("zone", "z2")))
	require.Equal(t, "app", ix.sels[id].sel.Requirements()[ix.sels[id].anchorReq].Key)

	for i := range 200 {
		zone := "z3"
		switch i {
		case 7:
			zone = "z1"
		case 8:
			zone = "z2"
		}
		name := string(rune('a'+i%26)) + string(rune('a'+i/26))
		upsert(ix, makePod("n", name, withLabels("app", "web", "zone", zone)))
	}
	rec := &ix.sels[id]
	assert.Equal(t, "zone", rec.sel.Requirements()[rec.anchorReq].Key, "moved to the smaller bucket")
	rec = &ix.sels[exists]
	assert.Equal(t, "zone", rec.sel.Requirements()[rec.anchorReq].Key, "moved off the key bucket")
	assert.Equal(t, 1, ix.MatchCount(id))
	assert.Equal(t, 1, ix.MatchCount(exists))

	// Anchors keep working after the move, and release cleans every bucket.
	assert.Equal(t, []Change[string]{out(id, "n/ha")}, ix.Upsert("n/ha", lbl("app", "web", "zone", "z9")))
	assert.True(t, ix.Release(id))
	assert.True(t, ix.Release(exists))
	for k := range 200 {
		ix.Delete("n/" + string(rune('a'+k%26)) + string(rune('a'+k/26)))
	}
	assert.Empty(t, ix.keyIDs, "no key outlives its objects and selectors")
	assert.Len(t, ix.freeKVs, len(ix.kvs), "no pair outlives its objects and selectors")
	assert.Len(t, ix.freeKeys, len(ix.keys))
}

func TestIndexGenerationWrap(t *testing.T) {
	ix := NewIndex[string]()
	a, _ := ix.Add(Equal("app", "web"))
	b, _ := ix.Add(Everything())
	ix.gen = math.MaxUint32 - 1
	for i := range 4 {
		v := "web"
		if i%2 == 1 {
			v = "db"
		}
		changes := ix.Upsert("p", lbl("app", v))
		switch i {
		case 0:
			assert.Equal(t, []Change[string]{in(a, "p"), in(b, "p")}, changes)
		case 1:
			assert.Equal(t, []Change[string]{out(a, "p")}, changes)
		default:
			assert.Len(t, changes, 1)
		}
	}
	assert.Less(t, ix.gen, uint32(10), "wrapped")
}

func TestIndexMatchesStopsEarly(t *testing.T) {
	ix := NewIndex[string]()
	small, _ := ix.Add(Equal("app", "web"))
	for i := range 40 {
		ix.Upsert(string(rune('A'+i)), lbl("app", "web"))
	}
	n := 0
	for range ix.Matches(small) {
		n++
		if n == 3 {
			break
		}
	}
	assert.Equal(t, 3, n)
	// Shrink the big set back to a small one and iterate again.
	for i := range 38 {
		ix.Delete(string(rune('A' + i)))
	}
	n = 0
	for range ix.Matches(small) {
		n++
		break
	}
	assert.Equal(t, 1, n)
	assert.Equal(t, 2, ix.MatchCount(small))
}

func TestIndexEveryChangeSortedByID(t *testing.T) {
	ix := NewIndex[string]()
	var ids []ID
	for _, s := range []Selector{
		Equal("b", "1"), Everything(), Equal("a", "1"),
		mustCompile(t, withExpr("c", metav1.LabelSelectorOpDoesNotExist)),
		mustCompile(t, withExpr("a", metav1.LabelSelectorOpExists)),
	} {
		id, _ := ix.Add(s)
		ids = append(ids, id)
	}
	changes := ix.Upsert("o", lbl("a", "1", "b", "1"))
	require.Len(t, changes, len(ids))
	for i, c := range changes {
		assert.Equal(t, ids[i], c.Selector)
		assert.True(t, c.Matched)
	}
	changes = ix.Delete("o")
	require.Len(t, changes, len(ids))
	assert.True(t, slices.IsSortedFunc(changes, compareChanges[string]))
}

// TestIndexManyLabelsAndValues covers objects with many labels and
// requirements with many values (the binary-search paths).
func TestIndexManyLabelsAndValues(t *testing.T) {
	ix := NewIndex[string]()
	key := func(i int) string { return "k" + string(rune('a'+i/26)) + string(rune('a'+i%26)) }
	var values []string
	for i := range 20 {
		values = append(values, key(i))
	}
	sels := []Selector{
		mustCompile(t, withExpr(key(25), metav1.LabelSelectorOpIn, values...)),
		mustCompile(t, withExpr(key(25), metav1.LabelSelectorOpNotIn, values...)),
		mustCompile(t, withExpr(key(39), metav1.LabelSelectorOpExists), withExpr(key(3), metav1.LabelSelectorOpIn, values...)),
		mustCompile(t, withExpr(key(40), metav1.LabelSelectorOpDoesNotExist), withExpr(key(0), metav1.LabelSelectorOpExists)),
		mustCompile(t, withExpr(key(38), metav1.LabelSelectorOpDoesNotExist)),
	}
	var ids []ID
	for _, s := range sels {
		id, _ := ix.Add(s)
		ids = append(ids, id)
	}
	for o := range 60 {
		l := map[string]string{}
		for i := range 40 {
			if (o+i)%7 != 0 {
				l[key(i)] = key((o * i) % 23)
			}
		}
		name := key(o)
		ix.Upsert(name, l)
		for i, s := range sels {
			assert.Equal(t, s.Matches(l), ix.Has(ids[i], name), "selector %s, object %s", s, name)
		}
	}
}
