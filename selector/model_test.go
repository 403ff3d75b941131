package selector

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// refMatches is an independent, naive evaluation of sel over labels, from its
// exported Requirements: the oracle of the model tests.
func refMatches(sel Selector, labels map[string]string) bool {
	return refMatchesReqs(sel.IsNothing(), sel.Requirements(), labels)
}

func refMatchesReqs(nothing bool, reqs []Requirement, labels map[string]string) bool {
	if nothing {
		return false
	}
	for _, r := range reqs {
		v, ok := labels[r.Key]
		var hold bool
		switch r.Op {
		case In:
			hold = ok && slices.Contains(r.Values, v)
		case NotIn:
			hold = !ok || !slices.Contains(r.Values, v)
		case Exists:
			hold = ok
		case DoesNotExist:
			hold = !ok
		default:
			panic("unknown operator " + r.Op)
		}
		if !hold {
			return false
		}
	}
	return true
}

// model mirrors an Index[int] with plain maps and recomputes everything by
// brute force after each operation.
type model struct {
	t    testing.TB
	ix   *Index[int]
	objs map[int]map[string]string
	sels map[ID]Selector
	reqs map[ID][]Requirement // sels' requirements, from Requirements()
	refs map[ID]int
	ids  []ID // every ID ever returned, for releasing stale ones too

	last truthTable // truth after the previous operation
}

func newModel(t testing.TB) *model {
	return &model{
		t:    t,
		ix:   NewIndex[int](),
		objs: map[int]map[string]string{},
		sels: map[ID]Selector{},
		reqs: map[ID][]Requirement{},
		refs: map[ID]int{},
		last: truthTable{},
	}
}

// maxObj bounds the objects (0 ≤ obj < maxObj) of the model tests.
const maxObj = 256

// truthTable holds, per selector, which objects match.
type truthTable map[ID]*[maxObj]bool

func (t truthTable) get(id ID, obj int) bool {
	row := t[id]
	return row != nil && row[obj]
}

// truth recomputes from scratch the set of (selector, object) pairs that
// match.
func (m *model) truth() truthTable {
	out := truthTable{}
	for id, sel := range m.sels {
		reqs := m.reqs[id]
		row := new([maxObj]bool)
		for obj, lbls := range m.objs {
			row[obj] = refMatchesReqs(sel.IsNothing(), reqs, lbls)
		}
		out[id] = row
	}
	return out
}

// flips lists the pairs that differ between before and after as the Changes
// the index must report, sorted by selector ID.
func flips(before, after truthTable) []Change[int] {
	var out []Change[int]
	ids := map[ID]bool{}
	for id := range before {
		ids[id] = true
	}
	for id := range after {
		ids[id] = true
	}
	for id := range ids {
		for obj := range maxObj {
			if b, a := before.get(id, obj), after.get(id, obj); a != b {
				out = append(out, Change[int]{Selector: id, Object: obj, Matched: a})
			}
		}
	}
	slices.SortFunc(out, func(a, b Change[int]) int {
		if a.Selector != b.Selector {
			return int(a.Selector - b.Selector)
		}
		return a.Object - b.Object
	})
	return out
}

func (m *model) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf(format, args...)
}

func (m *model) add(sel Selector) {
	m.t.Helper()
	var existing ID
	for id, s := range m.sels {
		if s.String() == sel.String() {
			existing = id
		}
	}
	id, added := m.ix.Add(sel)
	switch {
	case existing != 0 && (added || id != existing):
		m.fatalf("Add(%s) = %d, %v; want %d, false", sel, id, added, existing)
	case existing == 0 && (!added || id <= 0 || m.refs[id] != 0):
		m.fatalf("Add(%s) = %d, %v; want a fresh ID, true", sel, id, added)
	}
	m.sels[id] = sel
	m.reqs[id] = sel.Requirements()
	m.refs[id]++
	m.ids = append(m.ids, id)
	m.check("Add "+sel.String(), m.truth())
}

func (m *model) release(id ID) {
	m.t.Helper()
	want := false
	if m.refs[id] > 0 {
		m.refs[id]--
		if m.refs[id] == 0 {
			want = true
			delete(m.refs, id)
			delete(m.sels, id)
			delete(m.reqs, id)
		}
	}
	if got := m.ix.Release(id); got != want {
		m.fatalf("Release(%d) = %v, want %v", id, got, want)
	}
	m.check(fmt.Sprintf("Release %d", id), m.truth())
}

func (m *model) upsert(obj int, labels map[string]string) {
	m.t.Helper()
	m.objs[obj] = maps.Clone(labels)
	truth := m.truth()
	want := flips(m.last, truth)
	got := m.ix.Upsert(obj, labels)
	if len(want) == 0 && got != nil {
		m.fatalf("Upsert(%d, %v) = %v, want nil", obj, labels, got)
	}
	if diff := cmp.Diff(want, got); len(want) > 0 && diff != "" {
		m.fatalf("Upsert(%d, %v) changes (-want +got):\n%s", obj, labels, diff)
	}
	m.check(fmt.Sprintf("Upsert %d %v", obj, labels), truth)
}

func (m *model) delete(obj int) {
	m.t.Helper()
	delete(m.objs, obj)
	truth := m.truth()
	want := flips(m.last, truth)
	got := m.ix.Delete(obj)
	if len(want) == 0 && got != nil {
		m.fatalf("Delete(%d) = %v, want nil", obj, got)
	}
	if diff := cmp.Diff(want, got); len(want) > 0 && diff != "" {
		m.fatalf("Delete(%d) changes (-want +got):\n%s", obj, diff)
	}
	m.check(fmt.Sprintf("Delete %d", obj), truth)
}

// check compares every observable of the index with truth, the brute-force
// recomputation after the operation, which it then keeps for the next one.
func (m *model) check(step string, truth truthTable) {
	m.t.Helper()
	m.last = truth
	checkInvariants(m.t, m.ix)
	if m.ix.Len() != len(m.objs) {
		m.fatalf("after %s: Len = %d, want %d", step, m.ix.Len(), len(m.objs))
	}
	if m.ix.SelectorCount() != len(m.sels) {
		m.fatalf("after %s: SelectorCount = %d, want %d", step, m.ix.SelectorCount(), len(m.sels))
	}
	for id, sel := range m.sels {
		if got := m.ix.Selector(id).String(); got != sel.String() {
			m.fatalf("after %s: Selector(%d) = %s, want %s", step, id, got, sel)
		}
		var want, got []int
		for obj := range m.objs {
			if truth.get(id, obj) {
				want = append(want, obj)
			}
			if m.ix.Has(id, obj) != truth.get(id, obj) {
				m.fatalf("after %s: Has(%d %s, %d) = %v", step, id, sel, obj, !truth.get(id, obj))
			}
		}
		for obj := range m.ix.Matches(id) {
			got = append(got, obj)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			m.fatalf("after %s: Matches(%d %s) = %v, want %v", step, id, sel, got, want)
		}
		if m.ix.MatchCount(id) != len(want) {
			m.fatalf("after %s: MatchCount(%d) = %d, want %d", step, id, m.ix.MatchCount(id), len(want))
		}
	}
	for obj, lbls := range m.objs {
		var want []ID
		for id := range m.sels {
			if truth.get(id, obj) {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if got := m.ix.SelectorsOf(obj); !slices.Equal(want, got) {
			m.fatalf("after %s: SelectorsOf(%d) = %v, want %v", step, obj, got, want)
		}
		if got, ok := m.ix.Labels(obj); !ok || !maps.Equal(got, lbls) {
			m.fatalf("after %s: Labels(%d) = %v, %v, want %v", step, obj, got, ok, lbls)
		}
	}
	// Unknown IDs and objects.
	for _, id := range []ID{0, -1, ID(len(m.ix.sels) + 3)} {
		if m.ix.MatchCount(id) != 0 || m.ix.Has(id, 0) || !m.ix.Selector(id).IsNothing() {
			m.fatalf("after %s: unknown id %d answers", step, id)
		}
	}
	if m.ix.SelectorsOf(-1) != nil || m.ix.Delete(-1) != nil {
		m.fatalf("after %s: unknown object answers", step)
	}
}

// --- generators shared by the randomized test and the fuzz target ---

var (
	genKeys   = []string{"app", "tier", "team", nsPrefix + "kubernetes.io/metadata.name", nsPrefix + "team"}
	genValues = []string{"a", "b", "c", ""}
	genOps    = []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn,
		metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}
)

var skewed = []int{0, 0, 0, 0, 0, 1, 1, 2, 3}

// source yields small numbers, from a PRNG or from fuzz bytes.
type source interface{ next(n int) int }

type rngSource struct{ r *rand.Rand }

func (s rngSource) next(n int) int { return s.r.IntN(n) }

type byteSource struct {
	data []byte
	pos  int
}

func (s *byteSource) next(n int) int {
	if s.pos >= len(s.data) {
		return 0
	}
	b := s.data[s.pos]
	s.pos++
	return int(b) % n
}

func (s *byteSource) done() bool { return s.pos >= len(s.data) }

func genLabels(src source) map[string]string {
	if src.next(8) == 0 {
		return nil
	}
	m := map[string]string{}
	for range src.next(len(genKeys) + 1) {
		// Skewed values make buckets of different sizes, so anchors move.
		m[genKeys[src.next(len(genKeys))]] = genValues[skewed[src.next(len(skewed))]]
	}
	return m
}

func genSelector(src source) Selector {
	switch src.next(12) {
	case 0:
		return Everything()
	case 1:
		return Nothing()
	}
	sel := Everything()
	for range 1 + src.next(3) {
		key := genKeys[src.next(len(genKeys))]
		op := genOps[src.next(len(genOps))]
		var values []string
		if op == metav1.LabelSelectorOpIn || op == metav1.LabelSelectorOpNotIn {
			for range 1 + src.next(3) {
				values = append(values, genValues[src.next(len(genValues))])
			}
		}
		// Compile only takes legal keys: build prefixed keys with WithKeyPrefix.
		prefix := ""
		if len(key) > len(nsPrefix) && key[:len(nsPrefix)] == nsPrefix {
			prefix, key = nsPrefix, key[len(nsPrefix):]
		}
		r, errs := Compile(makeLS(withExpr(key, op, values...)), nil)
		if len(errs) > 0 {
			panic(errs.ToAggregate())
		}
		sel = sel.And(r.WithKeyPrefix(prefix))
	}
	return sel
}

// maxSels bounds the live selectors of a model: beyond it, adds become
// releases, which keeps the brute-force checks cheap.
const maxSels = 40

// step applies one random operation to m.
func (m *model) step(src source, nObjs int) {
	m.t.Helper()
	op := src.next(10)
	if op < 2 && len(m.sels) >= maxSels {
		op = 2
	}
	switch op {
	case 0, 1:
		m.add(genSelector(src))
	case 2:
		if len(m.ids) == 0 || src.next(8) == 0 {
			m.release(ID(src.next(6)))
		} else {
			m.release(m.ids[src.next(len(m.ids))])
		}
	case 3, 4, 5, 6:
		obj := src.next(nObjs)
		if old, ok := m.objs[obj]; ok && src.next(4) == 0 {
			// Change one label of an existing object.
			lbls := maps.Clone(old)
			if lbls == nil {
				lbls = map[string]string{}
			}
			k := genKeys[src.next(len(genKeys))]
			if _, has := lbls[k]; has && src.next(2) == 0 {
				delete(lbls, k)
			} else {
				lbls[k] = genValues[src.next(len(genValues))]
			}
			m.upsert(obj, lbls)
		} else {
			m.upsert(obj, genLabels(src))
		}
	case 7:
		obj := src.next(nObjs)
		if lbls, ok := m.objs[obj]; ok {
			m.upsert(obj, maps.Clone(lbls)) // unchanged labels
		}
	default:
		m.delete(src.next(nObjs))
	}
}

// withArrayMax lowers the idSet threshold for the duration of a test, so that
// small data exercises bitmaps too.
func withArrayMax(t testing.TB, n int) {
	old := arrayMax
	arrayMax = n
	t.Cleanup(func() { arrayMax = old })
}

// workScale divides the work of the randomized tests in -short and -race runs.
func workScale() int {
	if testing.Short() || raceEnabled {
		return 4
	}
	return 1
}

func TestIndexRandomized(t *testing.T) {
	configs := []struct {
		name         string
		seeds, steps int
		objs         int
		arrayMax     int
	}{
		{"small", 40, 300, 8, 0},
		{"medium", 8, 1000, 40, 0},
		// Buckets large enough to move anchors.
		{"large", 2, 1500, 150, 0},
		// Sets switching between arrays and bitmaps all the time.
		{"bitmaps", 4, 1000, 60, 4},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			if c.arrayMax > 0 {
				withArrayMax(t, c.arrayMax)
			}
			for seed := range c.seeds {
				m := newModel(t)
				src := rngSource{rand.New(rand.NewPCG(uint64(seed), 7))}
				for range c.steps / workScale() {
					m.step(src, c.objs)
				}
			}
		})
	}
}

// TestIndexRandomizedLoadOrders fills an index with many objects before and
// after many selectors so that anchors are chosen on empty buckets and then
// moved, and compares with the model.
func TestIndexRandomizedLoadOrders(t *testing.T) {
	withArrayMax(t, 16)
	for seed := range 4 {
		m := newModel(t)
		src := rngSource{rand.New(rand.NewPCG(uint64(seed), 11))}
		for i := range 200 {
			if seed%2 == 0 && i < 30 {
				m.add(genSelector(src))
			}
			m.upsert(i, genLabels(src))
		}
		for range 30 {
			m.add(genSelector(src))
		}
		for range 300 / workScale() {
			m.step(src, 200)
		}
	}
}

func FuzzIndex(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("selectors and labels, labels and selectors, over and over again"))
	seedRng := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		b := make([]byte, 400)
		for i := range b {
			b[i] = byte(seedRng.IntN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1500 {
			data = data[:1500]
		}
		m := newModel(t)
		src := &byteSource{data: data}
		// The first byte picks the set representation threshold.
		arrayMax = []int{2048, 2, 5}[src.next(3)]
		defer func() { arrayMax = 2048 }()
		for !src.done() {
			m.step(src, 12)
		}
	})
}

// checkInvariants verifies the index's internal bookkeeping: compact labels
// equal the label maps, buckets hold exactly the objects carrying their pair,
// interned entries are alive exactly while used, anchor positions agree.
func checkInvariants[K comparable](t testing.TB, ix *Index[K]) {
	t.Helper()
	freeKV := map[uint32]bool{}
	for _, kv := range ix.freeKVs {
		freeKV[kv] = true
	}
	freeKey := map[uint32]bool{}
	for _, k := range ix.freeKeys {
		freeKey[k] = true
	}
	// Pairs and keys named by objects and by selectors.
	usedKV := map[uint32]int{}
	usedKey := map[uint32]int{}
	for obj, d := range ix.objIDs {
		o := &ix.objs[d]
		if !o.live || o.key != obj {
			t.Fatalf("object %v: record %d not live or not its own", obj, d)
		}
		if !slices.IsSorted(o.lbls) || len(o.lbls) != len(o.labels) {
			t.Fatalf("object %v: compact labels %v vs %v", obj, o.lbls, o.labels)
		}
		for _, l := range o.lbls {
			ke, kv := &ix.keys[labelKey(l)], &ix.kvs[labelKV(l)]
			if kv.key != labelKey(l) || o.labels[ke.key] != kv.val || !kv.objs.has(d) {
				t.Fatalf("object %v: label %q=%q not bucketed", obj, ke.key, kv.val)
			}
			usedKV[labelKV(l)]++
			usedKey[labelKey(l)]++
		}
		if !slices.IsSorted(o.sels) {
			t.Fatalf("object %v: unsorted selectors %v", obj, o.sels)
		}
	}
	for id := range ix.sels {
		rec := &ix.sels[id]
		if !rec.live {
			continue
		}
		for _, c := range rec.creqs {
			usedKey[c.key] += 0
			for _, kv := range c.kvs {
				usedKV[kv] += 0
			}
		}
		for i, a := range rec.anchors {
			list := ix.keys[a.key].anchors
			if a.kv >= 0 {
				list = ix.kvs[a.kv].anchors
			}
			if s := list[a.pos]; s.id != ID(id) || s.ref != int32(i) {
				t.Fatalf("selector %d: anchor %d points at %+v", id, i, s)
			}
		}
	}
	for kv := range ix.kvs {
		e := &ix.kvs[kv]
		n, used := usedKV[uint32(kv)]
		if freeKV[uint32(kv)] == used {
			t.Fatalf("pair %d (%q): free %v, used %v", kv, e.val, freeKV[uint32(kv)], used)
		}
		if used && e.objs.len() != n {
			t.Fatalf("pair %d (%q): %d objects bucketed, %d carry it", kv, e.val, e.objs.len(), n)
		}
	}
	for key := range ix.keys {
		e := &ix.keys[key]
		n, used := usedKey[uint32(key)]
		if freeKey[uint32(key)] == used {
			t.Fatalf("key %d (%q): free %v, used %v", key, e.key, freeKey[uint32(key)], used)
		}
		if used && (e.count != n || ix.keyIDs[e.key] != uint32(key)) {
			t.Fatalf("key %d (%q): count %d, %d carry it", key, e.key, e.count, n)
		}
	}
	if len(ix.keyIDs) != len(ix.keys)-len(ix.freeKeys) {
		t.Fatalf("%d key ids for %d live keys", len(ix.keyIDs), len(ix.keys)-len(ix.freeKeys))
	}
}
