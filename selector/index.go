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
// Internally objects are interned to dense ids and bucketed by (key, value).
// Each selector is anchored on its most selective positive requirement (In:
// the buckets of its values; Exists: the buckets of its key); selectors without
// a positive requirement are "unanchored" and checked on every Upsert. An
// object can only match a selector anchored at one of its own labels (or an
// unanchored one), so a change costs what it touches: the selectors anchored
// at the object's old and new labels, plus the unanchored ones. Anchors are
// re-chosen as buckets grow, so registration order (selectors before objects or
// after) does not leave a selector on a crowded bucket.
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

	keys map[string]*keyEntry

	sels       []selRec // indexed by ID; slot 0 unused
	freeSels   []ID
	byString   map[string]ID
	unanchored []ID
	nSels      int

	gen   uint32 // candidate de-duplication stamp, bumped per Upsert
	cands []ID   // scratch
}

type objRec[K comparable] struct {
	key    K
	labels map[string]string
	sels   []ID // selectors matching the object, sorted
	live   bool
}

type selRec struct {
	sel       Selector
	str       string
	reqs      []Requirement // sel's requirements, shared, read-only
	refs      int32
	live      bool
	nothing   bool
	stamp     uint32
	unPos     int32 // position in Index.unanchored, -1 if anchored
	anchorReq int32 // index in reqs of the anchoring requirement, -1 if none
	anchors   []anchorRef
	members   idSet
}

// anchorRef is one place a selector is anchored: a value bucket (ve != nil) or
// a key (ve == nil), at position pos of that bucket's anchor list.
type anchorRef struct {
	ke  *keyEntry
	ve  *valEntry
	pos int32
}

// anchorSlot is an entry of a bucket's anchor list: the selector and the index
// of the matching anchorRef in that selector's anchors.
type anchorSlot struct {
	id  ID
	ref int32
}

// initialCheck is the bucket size at which anchors on it are first
// re-evaluated; the threshold then doubles.
const initialCheck = 16

type keyEntry struct {
	key     string
	vals    map[string]*valEntry
	count   int // objects having the key
	anchors []anchorSlot
	check   int
}

type valEntry struct {
	val     string
	objs    idSet
	anchors []anchorSlot
	check   int
}

// NewIndex returns an empty Index.
func NewIndex[K comparable]() *Index[K] {
	return &Index[K]{
		objIDs:   make(map[K]uint32),
		keys:     make(map[string]*keyEntry),
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
// NotIn/DoesNotExist) is checked against every object. Nothing is accepted
// and never matches. Add never reports Changes: the new match set is read
// with Matches.
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
	rec := &ix.sels[id]
	*rec = selRec{
		sel:       sel,
		str:       str,
		reqs:      sel.requirements(),
		refs:      1,
		live:      true,
		nothing:   sel.IsNothing(),
		stamp:     ix.gen,
		unPos:     -1,
		anchorReq: -1,
	}
	if rec.nothing {
		return id, true
	}
	best, _ := ix.bestAnchor(rec.reqs)
	if best < 0 {
		rec.unPos = int32(len(ix.unanchored))
		ix.unanchored = append(ix.unanchored, id)
		for d := range ix.objs {
			if o := &ix.objs[d]; o.live && rec.matches(o.labels) {
				ix.enter(rec, id, uint32(d))
			}
		}
		return id, true
	}
	ix.attach(id, best)
	r := &rec.reqs[best]
	ke := ix.keys[r.Key] // attach created it
	if r.Op == Exists {
		for _, ve := range ke.vals {
			ix.scan(rec, id, &ve.objs)
		}
	} else {
		for _, v := range r.Values {
			if ve := ke.vals[v]; ve != nil {
				ix.scan(rec, id, &ve.objs)
			}
		}
	}
	return id, true
}

func (ix *Index[K]) scan(rec *selRec, id ID, bucket *idSet) {
	for d := range bucket.all {
		if rec.matches(ix.objs[d].labels) {
			ix.enter(rec, id, d)
		}
	}
}

// enter records that object d matches selector id (not yet recorded).
func (ix *Index[K]) enter(rec *selRec, id ID, d uint32) {
	rec.members.add(d)
	o := &ix.objs[d]
	i, _ := slices.BinarySearch(o.sels, id)
	o.sels = slices.Insert(o.sels, i, id)
}

func (rec *selRec) matches(labels map[string]string) bool {
	for i := range rec.reqs {
		if !rec.reqs[i].matches(labels) {
			return false
		}
	}
	return true
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
	ix.nextGen()
	cands := ix.cands[:0]
	var changes []Change[K]

	if !ok {
		if n := len(ix.freeObjs); n > 0 {
			d = ix.freeObjs[n-1]
			ix.freeObjs = ix.freeObjs[:n-1]
		} else {
			d = uint32(len(ix.objs))
			ix.objs = append(ix.objs, objRec[K]{})
		}
		ix.objIDs[obj] = d
		ix.objs[d] = objRec[K]{key: obj, labels: labels, live: true}
		for k, v := range labels {
			ix.addToBucket(d, k, v)
		}
		cands = ix.collect(cands, labels, nil)
		for _, id := range cands {
			rec := &ix.sels[id]
			if rec.matches(labels) {
				rec.members.add(d)
				changes = append(changes, Change[K]{Selector: id, Object: obj, Matched: true})
			}
		}
		ix.cands = cands[:0]
		if len(changes) == 0 {
			return nil
		}
		slices.SortFunc(changes, compareChanges[K])
		sels := make([]ID, len(changes))
		for i, c := range changes {
			sels[i] = c.Selector
		}
		ix.objs[d].sels = sels
		return changes
	}

	o := &ix.objs[d]
	old := o.labels
	for k, ov := range old {
		if nv, ok := labels[k]; !ok || nv != ov {
			ix.removeFromBucket(d, k, ov)
		}
	}
	for k, nv := range labels {
		if ov, ok := old[k]; !ok || nv != ov {
			ix.addToBucket(d, k, nv)
		}
	}
	o.labels = labels
	cands = ix.collect(cands, labels, old)
	for _, id := range cands {
		rec := &ix.sels[id]
		_, was := slices.BinarySearch(o.sels, id)
		if now := rec.matches(labels); now != was {
			changes = append(changes, Change[K]{Selector: id, Object: obj, Matched: now})
		}
	}
	ix.cands = cands[:0]
	if len(changes) == 0 {
		return nil
	}
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

// collect appends to cands, once each, the selectors that may match labels
// or old: those anchored at one of their key/value pairs or keys, and the
// unanchored ones. Pairs of old also present in labels are skipped.
func (ix *Index[K]) collect(cands []ID, labels, old map[string]string) []ID {
	for _, id := range ix.unanchored {
		ix.sels[id].stamp = ix.gen
		cands = append(cands, id)
	}
	for k, v := range labels {
		cands = ix.collectKV(cands, k, v)
	}
	for k, v := range old {
		if nv, ok := labels[k]; !ok || nv != v {
			cands = ix.collectKV(cands, k, v)
		}
	}
	return cands
}

func (ix *Index[K]) collectKV(cands []ID, k, v string) []ID {
	ke := ix.keys[k]
	if ke == nil {
		return cands
	}
	for _, s := range ke.anchors {
		if rec := &ix.sels[s.id]; rec.stamp != ix.gen {
			rec.stamp = ix.gen
			cands = append(cands, s.id)
		}
	}
	if ve := ke.vals[v]; ve != nil {
		for _, s := range ve.anchors {
			if rec := &ix.sels[s.id]; rec.stamp != ix.gen {
				rec.stamp = ix.gen
				cands = append(cands, s.id)
			}
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
	for k, v := range o.labels {
		ix.removeFromBucket(d, k, v)
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

// --- buckets and anchors ---

func (ix *Index[K]) keyEntry(k string) *keyEntry {
	ke := ix.keys[k]
	if ke == nil {
		ke = &keyEntry{key: k, vals: make(map[string]*valEntry, 1), check: initialCheck}
		ix.keys[k] = ke
	}
	return ke
}

func (ke *keyEntry) valEntry(v string) *valEntry {
	ve := ke.vals[v]
	if ve == nil {
		ve = &valEntry{val: v, check: initialCheck}
		ke.vals[v] = ve
	}
	return ve
}

func (ix *Index[K]) addToBucket(d uint32, k, v string) {
	ke := ix.keyEntry(k)
	ve := ke.valEntry(v)
	ve.objs.add(d)
	ke.count++
	if n := ve.objs.len(); n >= ve.check {
		for ve.check <= n {
			ve.check *= 2
		}
		if len(ve.anchors) > 0 {
			ix.reanchor(ve.anchors)
		}
	}
	if ke.count >= ke.check {
		for ke.check <= ke.count {
			ke.check *= 2
		}
		if len(ke.anchors) > 0 {
			ix.reanchor(ke.anchors)
		}
	}
}

func (ix *Index[K]) removeFromBucket(d uint32, k, v string) {
	ke := ix.keys[k]
	ve := ke.vals[v]
	ve.objs.remove(d)
	ke.count--
	ix.dropIfEmpty(ke, ve)
}

// dropIfEmpty forgets ve (if not nil) and then ke when they hold neither
// objects nor anchors.
func (ix *Index[K]) dropIfEmpty(ke *keyEntry, ve *valEntry) {
	if ve != nil && ve.objs.len() == 0 && len(ve.anchors) == 0 {
		delete(ke.vals, ve.val)
	}
	if len(ke.vals) == 0 && len(ke.anchors) == 0 {
		delete(ix.keys, ke.key)
	}
}

// reqCost is the number of objects that can satisfy the positive requirement r.
func (ix *Index[K]) reqCost(r *Requirement) int {
	ke := ix.keys[r.Key]
	if ke == nil {
		return 0
	}
	if r.Op == Exists {
		return ke.count
	}
	n := 0
	for _, v := range r.Values {
		if ve := ke.vals[v]; ve != nil {
			n += ve.objs.len()
		}
	}
	return n
}

// bestAnchor returns the index of the positive requirement with the fewest
// candidate objects (ties: In before Exists, fewer values, canonical order)
// and its cost; -1 when reqs has no positive requirement.
func (ix *Index[K]) bestAnchor(reqs []Requirement) (best, cost int) {
	best = -1
	for i := range reqs {
		r := &reqs[i]
		if !r.Op.positive() {
			continue
		}
		c := ix.reqCost(r)
		if best < 0 || c < cost || c == cost && anchorTieBetter(r, &reqs[best]) {
			best, cost = i, c
		}
	}
	return best, cost
}

func anchorTieBetter(r, o *Requirement) bool {
	if r.Op != o.Op {
		return r.Op == In
	}
	return len(r.Values) < len(o.Values)
}

// attach anchors selector id on its requirement reqIdx.
func (ix *Index[K]) attach(id ID, reqIdx int) {
	rec := &ix.sels[id]
	rec.anchorReq = int32(reqIdx)
	r := &rec.reqs[reqIdx]
	ke := ix.keyEntry(r.Key)
	if r.Op == Exists {
		rec.anchors = append(rec.anchors, anchorRef{ke: ke, pos: int32(len(ke.anchors))})
		ke.anchors = append(ke.anchors, anchorSlot{id: id, ref: 0})
		return
	}
	for _, v := range r.Values {
		ve := ke.valEntry(v)
		rec.anchors = append(rec.anchors, anchorRef{ke: ke, ve: ve, pos: int32(len(ve.anchors))})
		ve.anchors = append(ve.anchors, anchorSlot{id: id, ref: int32(len(rec.anchors) - 1)})
	}
}

// detach removes every anchor of selector id.
func (ix *Index[K]) detach(id ID) {
	rec := &ix.sels[id]
	for _, a := range rec.anchors {
		list := &a.ke.anchors
		if a.ve != nil {
			list = &a.ve.anchors
		}
		last := len(*list) - 1
		if int(a.pos) != last {
			moved := (*list)[last]
			(*list)[a.pos] = moved
			ix.sels[moved.id].anchors[moved.ref].pos = a.pos
		}
		(*list)[last] = anchorSlot{}
		*list = (*list)[:last]
		ix.dropIfEmpty(a.ke, a.ve)
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
		if rec.anchorReq < 0 {
			continue
		}
		cur := ix.reqCost(&rec.reqs[rec.anchorReq])
		best, c := ix.bestAnchor(rec.reqs)
		if best != int(rec.anchorReq) && 2*c < cur {
			ix.detach(id)
			ix.attach(id, best)
		}
	}
}
