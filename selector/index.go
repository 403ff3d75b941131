package selector

import (
	"cmp"
	"iter"
	"maps"
	"slices"
)

// ID is the handle of a selector registered in an Index. IDs are positive:
// the zero ID is never returned and may be used by callers as "no selector".
// An ID is valid from the Add that returns it until the Release that removes
// the selector; after that a later Add may reuse it.
type ID int32

// Change reports that Object entered (Matched true) or left (Matched false)
// the match set of Selector.
type Change[K comparable] struct {
	Selector ID
	Object   K
	Matched  bool
}

// Index keeps the match set of every registered selector current as labelled
// objects are added, changed and deleted, and reports exactly which match sets
// changed.
//
// Internally label keys and (key, value) pairs are interned to dense ids, each
// object keeps its labels as a small sorted array of those ids, and each pair
// has a bucket of the objects carrying it. Each selector is anchored on its
// most selective positive requirement (In: the buckets of its values; Exists:
// the buckets of its key); selectors without a positive requirement are
// "unanchored" and checked on every Upsert. An object can only match a
// selector anchored at one of its own labels (or an unanchored one), so a
// change costs what it touches: the selectors anchored at the object's old and
// new labels, plus the unanchored ones. Anchors are re-chosen as buckets grow,
// so registration order (selectors before objects or after) does not leave a
// selector anchored on a crowded bucket.
//
// Index does not validate label keys or values, nor selectors: the engine
// encodes namespace labels under reserved prefixes that are illegal label keys.
//
// An Index is not safe for concurrent use: callers serialise every call,
// reads (Has, Matches, MatchCount, SelectorsOf, Labels, ...) included, and do
// not call mutating methods while ranging over Matches.
type Index[K comparable] struct {
	objIDs   map[K]uint32
	objs     []objRec[K]
	freeObjs []uint32

	keyIDs   map[string]uint32
	keys     []keyEntry
	freeKeys []uint32
	kvs      []kvEntry
	freeKVs  []uint32

	sels       []selRec // indexed by ID; slot 0 unused
	freeSels   []ID
	byString   map[string]ID
	unanchored []ID
	nSels      int

	gen     uint32      // candidate de-duplication stamp, bumped per Upsert
	cands   []ID        // scratch
	scratch []uint64    // scratch for the new compact labels of an Upsert
	chg     []Change[K] // scratch for the changes of an Upsert
}

// A label of an object in compact form: key id << 32 | kv id. An object's
// labels are sorted, hence by key id.
func packLabel(key, kv uint32) uint64 { return uint64(key)<<32 | uint64(kv) }

func labelKey(l uint64) uint32 { return uint32(l >> 32) }
func labelKV(l uint64) uint32  { return uint32(l) }

type objRec[K comparable] struct {
	key    K
	labels map[string]string
	lbls   []uint64 // compact labels, sorted
	sels   []ID     // selectors matching the object, sorted
	live   bool
}

type selRec struct {
	sel       Selector
	str       string
	creqs     []creq
	refs      int32
	live      bool
	stamp     uint32
	unPos     int32 // position in Index.unanchored, -1 if none
	anchorReq int32 // index in creqs of the anchoring requirement, -1 if none
	anchors   []anchorRef
	members   idSet
}

const (
	opIn uint8 = iota
	opNotIn
	opExists
	opDoesNotExist
)

// creq is a requirement over interned ids.
type creq struct {
	key uint32
	op  uint8
	kvs []uint32 // In/NotIn values as kv ids, sorted
}

func (r *creq) positive() bool { return r.op == opIn || r.op == opExists }

// anchorRef is one place a selector is anchored: a kv bucket (kv >= 0) or a
// key (kv < 0), at position pos of that place's anchor list.
type anchorRef struct {
	key uint32
	kv  int64
	pos int32
}

// anchorSlot is an entry of an anchor list: the selector and the index of
// the matching anchorRef in that selector's anchors.
type anchorSlot struct {
	id  ID
	ref int32
}

// initialCheck is the bucket size at which anchors on it are first
// re-evaluated; the threshold then doubles.
const initialCheck = 16

type keyEntry struct {
	key     string
	vals    map[string]uint32 // value → kv id
	count   int               // objects having the key
	refs    int32             // requirements of registered selectors on the key
	anchors []anchorSlot
	check   int
}

type kvEntry struct {
	key     uint32
	val     string
	objs    idSet
	refs    int32 // values of registered selectors' requirements naming the pair
	anchors []anchorSlot
	check   int
}

// NewIndex returns an empty Index.
func NewIndex[K comparable]() *Index[K] {
	return &Index[K]{
		objIDs:   make(map[K]uint32),
		keyIDs:   make(map[string]uint32),
		sels:     make([]selRec, 1),
		byString: make(map[string]ID),
	}
}

// Add registers sel and returns its ID. Selectors are reference counted by
// their canonical String: adding a selector equal to a registered one returns
// the same ID with added false and takes one more reference; otherwise the
// match set is computed from the current objects (added true). The cost is
// proportional to the objects in the smallest bucket among sel's positive
// requirements (In, Exists); a selector without one (Everything, or only
// NotIn/DoesNotExist) is checked against every object; on an index without
// objects the match set simply starts empty. Nothing is accepted and never
// matches. Add never reports Changes: the new match set is read with Matches.
func (ix *Index[K]) Add(sel Selector) (id ID, added bool) {
	str := sel.String()
	if id, ok := ix.byString[str]; ok {
		ix.sels[id].refs++
		return id, false
	}
	if n := len(ix.freeSels); n > 0 {
		id = ix.freeSels[n-1]
		ix.freeSels = ix.freeSels[:n-1]
	} else {
		id = ID(len(ix.sels))
		ix.sels = append(ix.sels, selRec{})
	}
	ix.byString[str] = id
	ix.nSels++
	var creqs []creq
	if !sel.IsNothing() {
		creqs = ix.intern(sel.requirements())
	}
	ix.sels[id] = selRec{
		sel:       sel,
		str:       str,
		creqs:     creqs,
		refs:      1,
		live:      true,
		stamp:     ix.gen,
		unPos:     -1,
		anchorReq: -1,
	}
	if sel.IsNothing() {
		return id, true
	}
	rec := &ix.sels[id]
	best, _ := ix.bestAnchor(rec.creqs)
	if best < 0 {
		rec.unPos = int32(len(ix.unanchored))
		ix.unanchored = append(ix.unanchored, id)
		for d := range ix.objs {
			if o := &ix.objs[d]; o.live && rec.matches(o.lbls) {
				ix.enter(rec, id, uint32(d))
			}
		}
		return id, true
	}
	ix.attach(id, best)
	r := &rec.creqs[best]
	if r.op == opExists {
		for _, kv := range ix.keys[r.key].vals {
			ix.scan(rec, id, &ix.kvs[kv].objs, best)
		}
	} else {
		for _, kv := range r.kvs {
			ix.scan(rec, id, &ix.kvs[kv].objs, best)
		}
	}
	return id, true
}

// scan enters into the match set of selector id the objects of bucket that
// match it, knowing that they satisfy its requirement skip. In and NotIn are
// tested against the buckets of their values (cache-friendly: no access to
// the objects), Exists and DoesNotExist against the objects' labels.
func (ix *Index[K]) scan(rec *selRec, id ID, bucket *idSet, skip int) {
	needLabels := false
	for i := range rec.creqs {
		if op := rec.creqs[i].op; i != skip && (op == opExists || op == opDoesNotExist) {
			needLabels = true
		}
	}
next:
	for d := range bucket.all {
		for i := range rec.creqs {
			r := &rec.creqs[i]
			if i == skip || r.op != opIn && r.op != opNotIn {
				continue
			}
			in := false
			for _, kv := range r.kvs {
				if ix.kvs[kv].objs.has(d) {
					in = true
					break
				}
			}
			if in != (r.op == opIn) {
				continue next
			}
		}
		if needLabels && !rec.matches(ix.objs[d].lbls) {
			continue
		}
		ix.enter(rec, id, d)
	}
}

// intern converts requirements to ids, taking a reference on every key and
// pair they name (creating the entries if needed).
func (ix *Index[K]) intern(reqs []Requirement) []creq {
	out := make([]creq, len(reqs))
	for i, r := range reqs {
		key := ix.internKey(r.Key)
		ix.keys[key].refs++
		c := creq{key: key}
		switch r.Op {
		case In:
			c.op = opIn
		case NotIn:
			c.op = opNotIn
		case Exists:
			c.op = opExists
		default:
			c.op = opDoesNotExist
		}
		if len(r.Values) > 0 {
			c.kvs = make([]uint32, len(r.Values))
			for j, v := range r.Values {
				kv := ix.internKV(key, v)
				ix.kvs[kv].refs++
				c.kvs[j] = kv
			}
			slices.Sort(c.kvs)
		}
		out[i] = c
	}
	return out
}

// unintern drops the references intern took.
func (ix *Index[K]) unintern(creqs []creq) {
	for _, c := range creqs {
		for _, kv := range c.kvs {
			ix.kvs[kv].refs--
			ix.dropKV(kv)
		}
		ix.keys[c.key].refs--
		ix.dropKey(c.key)
	}
}

// enter records that object d matches selector id (not yet recorded).
func (ix *Index[K]) enter(rec *selRec, id ID, d uint32) {
	rec.members.add(d)
	o := &ix.objs[d]
	i, _ := slices.BinarySearch(o.sels, id)
	o.sels = slices.Insert(o.sels, i, id)
}

// matches evaluates the selector over compact labels.
func (rec *selRec) matches(lbls []uint64) bool {
	for i := range rec.creqs {
		r := &rec.creqs[i]
		kv, ok := findKey(lbls, r.key)
		switch r.op {
		case opIn:
			if !ok || !containsID(r.kvs, kv) {
				return false
			}
		case opNotIn:
			if ok && containsID(r.kvs, kv) {
				return false
			}
		case opExists:
			if !ok {
				return false
			}
		default:
			if ok {
				return false
			}
		}
	}
	return true
}

// findKey returns the kv id of key in sorted compact labels.
func findKey(lbls []uint64, key uint32) (uint32, bool) {
	if len(lbls) <= 16 {
		for _, l := range lbls {
			switch k := labelKey(l); {
			case k == key:
				return labelKV(l), true
			case k > key:
				return 0, false
			}
		}
		return 0, false
	}
	i, ok := slices.BinarySearchFunc(lbls, key, func(l uint64, key uint32) int { return cmp.Compare(labelKey(l), key) })
	if !ok {
		return 0, false
	}
	return labelKV(lbls[i]), true
}

func containsID(ids []uint32, x uint32) bool {
	if len(ids) <= 16 {
		for _, y := range ids {
			if y == x {
				return true
			}
		}
		return false
	}
	_, ok := slices.BinarySearch(ids, x)
	return ok
}

// Release drops one reference to the selector id. When the last reference goes,
// the selector and its match set are removed and Release returns true; the ID
// may then be reused by a later Add. An unknown or already removed id is a
// no-op returning false.
func (ix *Index[K]) Release(id ID) (removed bool) {
	if !ix.valid(id) {
		return false
	}
	rec := &ix.sels[id]
	rec.refs--
	if rec.refs > 0 {
		return false
	}
	if rec.unPos >= 0 {
		last := len(ix.unanchored) - 1
		moved := ix.unanchored[last]
		ix.unanchored[rec.unPos] = moved
		ix.sels[moved].unPos = rec.unPos
		ix.unanchored = ix.unanchored[:last]
	}
	ix.detach(id)
	for d := range rec.members.all {
		o := &ix.objs[d]
		if i, ok := slices.BinarySearch(o.sels, id); ok {
			o.sels = slices.Delete(o.sels, i, i+1)
		}
	}
	ix.unintern(rec.creqs)
	delete(ix.byString, rec.str)
	*rec = selRec{}
	ix.freeSels = append(ix.freeSels, id)
	ix.nSels--
	return true
}

func (ix *Index[K]) valid(id ID) bool {
	return id > 0 && int(id) < len(ix.sels) && ix.sels[id].live
}

// Selector returns the selector registered as id, or Nothing when id is
// unknown or removed.
func (ix *Index[K]) Selector(id ID) Selector {
	if !ix.valid(id) {
		return Nothing()
	}
	return ix.sels[id].sel
}

// Upsert adds obj, or replaces its labels, and returns every change of match
// sets that results, sorted by selector ID. The index keeps labels: the caller
// must not modify the map afterwards. A nil map is an object without labels.
// Labels equal to the current ones return nil at the cost of comparing the
// maps. The cost is proportional to the selectors anchored at the old and new
// labels plus the unanchored selectors, not to the number of selectors or
// objects. The returned slice belongs to the caller.
func (ix *Index[K]) Upsert(obj K, labels map[string]string) []Change[K] {
	d, ok := ix.objIDs[obj]
	if ok && maps.Equal(ix.objs[d].labels, labels) {
		ix.objs[d].labels = labels
		return nil
	}

	// The new compact labels, interning keys and pairs first seen here.
	nl := ix.scratch[:0]
	for k, v := range labels {
		key := ix.internKey(k)
		nl = append(nl, packLabel(key, ix.internKV(key, v)))
	}
	slices.Sort(nl)
	ix.scratch = nl[:0]

	if !ok {
		if n := len(ix.freeObjs); n > 0 {
			d = ix.freeObjs[n-1]
			ix.freeObjs = ix.freeObjs[:n-1]
		} else {
			d = uint32(len(ix.objs))
			ix.objs = append(ix.objs, objRec[K]{})
		}
		ix.objIDs[obj] = d
		var lbls []uint64
		if len(nl) > 0 {
			lbls = slices.Clone(nl)
		}
		ix.objs[d] = objRec[K]{key: obj, labels: labels, lbls: lbls, live: true}
		for _, l := range lbls {
			ix.addToBucket(d, l)
		}
		ix.nextGen()
		cands := ix.collect(ix.cands[:0], lbls, nil)
		sels := cands[len(cands):] // matched IDs, in the scratch after the candidates
		for _, id := range cands {
			rec := &ix.sels[id]
			if rec.matches(lbls) {
				rec.members.add(d)
				sels = append(sels, id)
			}
		}
		ix.cands = cands[:0]
		if len(sels) == 0 {
			return nil
		}
		slices.Sort(sels)
		sels = slices.Clone(sels)
		ix.objs[d].sels = sels
		changes := make([]Change[K], len(sels))
		for i, id := range sels {
			changes[i] = Change[K]{Selector: id, Object: obj, Matched: true}
		}
		return changes
	}

	o := &ix.objs[d]
	o.labels = labels
	old := o.lbls
	// Bucket updates: pairs only in old leave, pairs only in nl enter.
	i, j := 0, 0
	for i < len(old) || j < len(nl) {
		switch {
		case j == len(nl) || i < len(old) && old[i] < nl[j]:
			ix.removeFromBucket(d, old[i])
			i++
		case i == len(old) || nl[j] < old[i]:
			ix.addToBucket(d, nl[j])
			j++
		default:
			i++
			j++
		}
	}
	// Pairs of old may have been dropped just above; a dropped entry had no
	// selector referencing it, hence no anchors, and reads as empty.
	ix.nextGen()
	cands := ix.collect(ix.cands[:0], nl, old)
	changes := ix.chg[:0]
	for _, id := range cands {
		rec := &ix.sels[id]
		_, was := slices.BinarySearch(o.sels, id)
		if now := rec.matches(nl); now != was {
			changes = append(changes, Change[K]{Selector: id, Object: obj, Matched: now})
		}
	}
	ix.cands = cands[:0]
	// Keep nl in the object's own array (reusing its capacity).
	o.lbls = append(old[:0], nl...)
	if len(o.lbls) == 0 {
		o.lbls = nil
	}
	if len(changes) == 0 {
		return nil
	}
	out := slices.Clone(changes)
	clear(changes)
	ix.chg, changes = changes[:0], out
	slices.SortFunc(changes, compareChanges[K])
	for _, c := range changes {
		rec := &ix.sels[c.Selector]
		i, _ := slices.BinarySearch(o.sels, c.Selector)
		if c.Matched {
			rec.members.add(d)
			o.sels = slices.Insert(o.sels, i, c.Selector)
		} else {
			rec.members.remove(d)
			o.sels = slices.Delete(o.sels, i, i+1)
		}
	}
	return changes
}

func compareChanges[K comparable](a, b Change[K]) int { return cmp.Compare(a.Selector, b.Selector) }

func (ix *Index[K]) nextGen() {
	ix.gen++
	if ix.gen == 0 { // wrapped: forget every stamp
		for i := range ix.sels {
			ix.sels[i].stamp = 0
		}
		ix.gen = 1
	}
}

// collect appends to cands, once each, the selectors that may match the
// compact labels lbls or old: those anchored at one of their pairs or keys,
// and the unanchored ones.
func (ix *Index[K]) collect(cands []ID, lbls, old []uint64) []ID {
	for _, id := range ix.unanchored {
		ix.sels[id].stamp = ix.gen
		cands = append(cands, id)
	}
	for _, l := range lbls {
		cands = ix.collectAt(cands, l)
	}
	for _, l := range old {
		if _, found := slices.BinarySearch(lbls, l); !found {
			cands = ix.collectAt(cands, l)
		}
	}
	return cands
}

func (ix *Index[K]) collectAt(cands []ID, l uint64) []ID {
	for _, s := range ix.keys[labelKey(l)].anchors {
		if rec := &ix.sels[s.id]; rec.stamp != ix.gen {
			rec.stamp = ix.gen
			cands = append(cands, s.id)
		}
	}
	for _, s := range ix.kvs[labelKV(l)].anchors {
		if rec := &ix.sels[s.id]; rec.stamp != ix.gen {
			rec.stamp = ix.gen
			cands = append(cands, s.id)
		}
	}
	return cands
}

// Delete removes obj and returns the match sets it left, sorted by selector
// ID. An unknown obj is a no-op returning nil.
func (ix *Index[K]) Delete(obj K) []Change[K] {
	d, ok := ix.objIDs[obj]
	if !ok {
		return nil
	}
	o := &ix.objs[d]
	var changes []Change[K]
	if len(o.sels) > 0 {
		changes = make([]Change[K], len(o.sels))
		for i, id := range o.sels {
			ix.sels[id].members.remove(d)
			changes[i] = Change[K]{Selector: id, Object: obj, Matched: false}
		}
	}
	for _, l := range o.lbls {
		ix.removeFromBucket(d, l)
	}
	*o = objRec[K]{}
	delete(ix.objIDs, obj)
	ix.freeObjs = append(ix.freeObjs, d)
	return changes
}

// Has reports whether obj is in the match set of id; false when either is
// unknown.
func (ix *Index[K]) Has(id ID, obj K) bool {
	d, ok := ix.objIDs[obj]
	if !ok || !ix.valid(id) {
		return false
	}
	_, found := slices.BinarySearch(ix.objs[d].sels, id)
	return found
}

// Matches returns the objects in the match set of id, in no particular order;
// an unknown id yields nothing. The index must not be modified during the
// iteration.
func (ix *Index[K]) Matches(id ID) iter.Seq[K] {
	return func(yield func(K) bool) {
		if !ix.valid(id) {
			return
		}
		for d := range ix.sels[id].members.all {
			if !yield(ix.objs[d].key) {
				return
			}
		}
	}
}

// MatchCount returns the size of the match set of id; 0 for an unknown id.
func (ix *Index[K]) MatchCount(id ID) int {
	if !ix.valid(id) {
		return 0
	}
	return ix.sels[id].members.len()
}

// SelectorsOf returns the IDs of the selectors matching obj, sorted, in a new
// slice; nil when obj is unknown or matched by no selector.
func (ix *Index[K]) SelectorsOf(obj K) []ID {
	d, ok := ix.objIDs[obj]
	if !ok || len(ix.objs[d].sels) == 0 {
		return nil
	}
	return slices.Clone(ix.objs[d].sels)
}

// Labels returns the labels last given for obj by Upsert (the same map, which
// the caller must not modify) and true; nil and false when obj is unknown.
func (ix *Index[K]) Labels(obj K) (map[string]string, bool) {
	d, ok := ix.objIDs[obj]
	if !ok {
		return nil, false
	}
	return ix.objs[d].labels, true
}

// Len returns the number of objects in the index.
func (ix *Index[K]) Len() int { return len(ix.objIDs) }

// SelectorCount returns the number of registered selectors (distinct canonical
// selectors, not references).
func (ix *Index[K]) SelectorCount() int { return ix.nSels }

// --- interning and buckets ---

// internKey returns the id of key k, creating its entry if needed.
func (ix *Index[K]) internKey(k string) uint32 {
	if id, ok := ix.keyIDs[k]; ok {
		return id
	}
	e := keyEntry{key: k, vals: make(map[string]uint32, 1), check: initialCheck}
	var id uint32
	if n := len(ix.freeKeys); n > 0 {
		id = ix.freeKeys[n-1]
		ix.freeKeys = ix.freeKeys[:n-1]
		ix.keys[id] = e
	} else {
		id = uint32(len(ix.keys))
		ix.keys = append(ix.keys, e)
	}
	ix.keyIDs[k] = id
	return id
}

// internKV returns the id of the pair (key, v), creating its entry if needed.
func (ix *Index[K]) internKV(key uint32, v string) uint32 {
	if id, ok := ix.keys[key].vals[v]; ok {
		return id
	}
	e := kvEntry{key: key, val: v, check: initialCheck}
	var id uint32
	if n := len(ix.freeKVs); n > 0 {
		id = ix.freeKVs[n-1]
		ix.freeKVs = ix.freeKVs[:n-1]
		ix.kvs[id] = e
	} else {
		id = uint32(len(ix.kvs))
		ix.kvs = append(ix.kvs, e)
	}
	ix.keys[key].vals[v] = id
	return id
}

// dropKV forgets pair kv when no object carries it and no selector names it
// (anchors imply a reference).
func (ix *Index[K]) dropKV(kv uint32) {
	e := &ix.kvs[kv]
	if e.objs.len() > 0 || e.refs > 0 {
		return
	}
	delete(ix.keys[e.key].vals, e.val)
	*e = kvEntry{}
	ix.freeKVs = append(ix.freeKVs, kv)
}

// dropKey forgets key when no object carries it, no selector names it and
// it has no pair left.
func (ix *Index[K]) dropKey(key uint32) {
	e := &ix.keys[key]
	if e.count > 0 || e.refs > 0 || len(e.vals) > 0 {
		return
	}
	delete(ix.keyIDs, e.key)
	*e = keyEntry{}
	ix.freeKeys = append(ix.freeKeys, key)
}

func (ix *Index[K]) addToBucket(d uint32, l uint64) {
	kv, key := &ix.kvs[labelKV(l)], &ix.keys[labelKey(l)]
	kv.objs.add(d)
	key.count++
	if n := kv.objs.len(); n >= kv.check {
		for kv.check <= n {
			kv.check *= 2
		}
		if len(kv.anchors) > 0 {
			ix.reanchor(kv.anchors)
		}
	}
	if key.count >= key.check {
		for key.check <= key.count {
			key.check *= 2
		}
		if len(key.anchors) > 0 {
			ix.reanchor(key.anchors)
		}
	}
}

func (ix *Index[K]) removeFromBucket(d uint32, l uint64) {
	ix.kvs[labelKV(l)].objs.remove(d)
	ix.keys[labelKey(l)].count--
	ix.dropKV(labelKV(l))
	ix.dropKey(labelKey(l))
}

// --- anchors ---

// reqCost is the number of objects that can satisfy the positive requirement r.
func (ix *Index[K]) reqCost(r *creq) int {
	if r.op == opExists {
		return ix.keys[r.key].count
	}
	n := 0
	for _, kv := range r.kvs {
		n += ix.kvs[kv].objs.len()
	}
	return n
}

// bestAnchor returns the index of the positive requirement with the fewest
// candidate objects (ties: In before Exists, fewer values, canonical order)
// and its cost; -1 when creqs has no positive requirement.
func (ix *Index[K]) bestAnchor(creqs []creq) (best, cost int) {
	best = -1
	for i := range creqs {
		r := &creqs[i]
		if !r.positive() {
			continue
		}
		c := ix.reqCost(r)
		if best < 0 || c < cost || c == cost && anchorTieBetter(r, &creqs[best]) {
			best, cost = i, c
		}
	}
	return best, cost
}

func anchorTieBetter(r, o *creq) bool {
	if r.op != o.op {
		return r.op == opIn
	}
	return len(r.kvs) < len(o.kvs)
}

// attach anchors selector id on its requirement reqIdx.
func (ix *Index[K]) attach(id ID, reqIdx int) {
	rec := &ix.sels[id]
	rec.anchorReq = int32(reqIdx)
	r := &rec.creqs[reqIdx]
	if r.op == opExists {
		ke := &ix.keys[r.key]
		rec.anchors = append(rec.anchors, anchorRef{key: r.key, kv: -1, pos: int32(len(ke.anchors))})
		ke.anchors = append(ke.anchors, anchorSlot{id: id, ref: 0})
		return
	}
	for _, kv := range r.kvs {
		e := &ix.kvs[kv]
		rec.anchors = append(rec.anchors, anchorRef{key: r.key, kv: int64(kv), pos: int32(len(e.anchors))})
		e.anchors = append(e.anchors, anchorSlot{id: id, ref: int32(len(rec.anchors) - 1)})
	}
}

// detach removes every anchor of selector id.
func (ix *Index[K]) detach(id ID) {
	rec := &ix.sels[id]
	for _, a := range rec.anchors {
		var list *[]anchorSlot
		if a.kv >= 0 {
			list = &ix.kvs[a.kv].anchors
		} else {
			list = &ix.keys[a.key].anchors
		}
		last := len(*list) - 1
		if int(a.pos) != last {
			moved := (*list)[last]
			(*list)[a.pos] = moved
			ix.sels[moved.id].anchors[moved.ref].pos = a.pos
		}
		(*list)[last] = anchorSlot{}
		*list = (*list)[:last]
	}
	rec.anchors = rec.anchors[:0]
	rec.anchorReq = -1
}

// reanchor moves the selectors anchored on a bucket that has grown to a
// requirement at least twice as selective, if they have one.
func (ix *Index[K]) reanchor(list []anchorSlot) {
	ids := make([]ID, len(list))
	for i, s := range list {
		ids[i] = s.id
	}
	for _, id := range ids {
		rec := &ix.sels[id]
		cur := ix.reqCost(&rec.creqs[rec.anchorReq])
		best, c := ix.bestAnchor(rec.creqs)
		if best != int(rec.anchorReq) && 2*c < cur {
			ix.detach(id)
			ix.attach(id, best)
		}
	}
}
