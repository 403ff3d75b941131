package nftables

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// fakeKernel is a kernelConn over an in-memory table, in the manner of
// knftables' Fake: it decodes the very netlink messages the backend sends
// (with the decoders the read path uses on dumps), applies a batch to a copy
// and keeps it only when every message succeeds, refuses what the kernel
// refuses (a missing object, deleting a chain that still has rules or is
// jumped to, a set a rule still looks up), counts generations and honours a
// generation-checked batch. read answers from the table as a dump would.
type fakeKernel struct {
	mu      sync.Mutex
	gen     uint32
	tbl     *fakeTable // nil: no table
	br      *fakeTable // the bridge family's table (source validation)
	commits int
}

type fakeTable struct {
	name   string
	flags  uint32
	sets   map[string]*fakeSet
	chains map[string]*chainModel
}

type fakeSet struct {
	attrs setAttrs
	elems map[string]element // by key and interval end
}

func elemKey(e element) string { return fmt.Sprintf("%x/%t", e.key, e.end) }

func newFakeBackend(f *fakeKernel, table string) *Backend {
	return &Backend{cfg: Config{TableName: table}, c: f}
}

func (f *fakeKernel) close() error { return nil }

func (f *fakeKernel) generation() (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen, nil
}

// bump records a change made behind the backend's back (drift).
func (f *fakeKernel) bump(change func(t *fakeTable)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.tbl)
	f.gen++
}

func (f *fakeKernel) commit(msgs []netlink.Message, gen uint32, checkGen bool) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if checkGen && gen != f.gen {
		return f.gen, errGenChanged
	}
	t, br := f.tbl.clone(), f.br.clone()
	for i, m := range msgs {
		var err error
		if m.Data[0] == unix.NFPROTO_BRIDGE {
			br, err = apply(br, m)
		} else {
			t, err = apply(t, m)
		}
		if err != nil {
			return f.gen, fmt.Errorf("nftables: batch rejected: message %d: %w", i, err)
		}
	}
	f.tbl, f.br = t, br
	f.gen++
	f.commits++
	return f.gen, nil
}

func (t *fakeTable) clone() *fakeTable {
	if t == nil {
		return nil
	}
	c := &fakeTable{name: t.name, flags: t.flags, sets: map[string]*fakeSet{}, chains: map[string]*chainModel{}}
	for n, s := range t.sets {
		c.sets[n] = &fakeSet{attrs: s.attrs, elems: maps.Clone(s.elems)}
	}
	for n, ch := range t.chains {
		cc := *ch
		cc.rules = slices.Clone(ch.rules)
		c.chains[n] = &cc
	}
	return c
}

// apply applies one message of a batch to t.
func apply(t *fakeTable, m netlink.Message) (*fakeTable, error) {
	typ := int(m.Header.Type) & 0xff
	attrs := m.Data[4:]
	if typ != unix.NFT_MSG_NEWTABLE && t == nil {
		return nil, unix.ENOENT
	}
	switch typ {
	case unix.NFT_MSG_NEWTABLE:
		var name string
		var flags uint32
		forAttrs(attrs, func(typ uint16, b []byte) {
			switch typ {
			case unix.NFTA_TABLE_NAME:
				name = cstring(b)
			case unix.NFTA_TABLE_FLAGS:
				flags = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			}
		})
		if t == nil {
			t = &fakeTable{name: name, sets: map[string]*fakeSet{}, chains: map[string]*chainModel{}}
		}
		t.flags = flags
	case unix.NFT_MSG_DELTABLE:
		return nil, nil
	case unix.NFT_MSG_NEWSET:
		name, _, at := decodeSet(attrs)
		if _, ok := t.sets[name]; ok {
			return nil, unix.EEXIST // we never re-create a set that exists
		}
		t.sets[name] = &fakeSet{attrs: at, elems: map[string]element{}}
	case unix.NFT_MSG_DELSET:
		name, _, _ := decodeSet(attrs)
		if t.sets[name] == nil {
			return nil, unix.ENOENT
		}
		if t.looksUp(name) {
			return nil, unix.EBUSY
		}
		delete(t.sets, name)
	case unix.NFT_MSG_NEWCHAIN:
		c, _ := decodeChain(attrs)
		if _, ok := t.chains[c.name]; ok {
			return nil, unix.EEXIST
		}
		t.chains[c.name] = c
	case unix.NFT_MSG_DELCHAIN:
		c, _ := decodeChain(attrs)
		have := t.chains[c.name]
		switch {
		case have == nil:
			return nil, unix.ENOENT
		case len(have.rules) > 0 || t.jumpsTo(c.name):
			return nil, unix.EBUSY
		}
		delete(t.chains, c.name)
	case unix.NFT_MSG_DELRULE: // a flush of the chain: we delete no single rule
		chain, _, _ := decodeRule(attrs)
		c := t.chains[chain]
		if c == nil {
			return nil, unix.ENOENT
		}
		c.rules = nil
	case unix.NFT_MSG_NEWRULE:
		chain, _, r := decodeRule(attrs)
		c := t.chains[chain]
		if c == nil {
			return nil, unix.ENOENT
		}
		if err := t.checkRefs(r); err != nil {
			return nil, err
		}
		c.rules = append(c.rules, r)
	case unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM:
		var setName string
		forAttrs(attrs, func(typ uint16, b []byte) {
			if typ == unix.NFTA_SET_ELEM_LIST_SET {
				setName = cstring(b)
			}
		})
		s := t.sets[setName]
		if s == nil {
			return nil, unix.ENOENT
		}
		var elems []element
		if !decodeElementList(attrs, &elems) {
			return nil, unix.EINVAL
		}
		if typ == unix.NFT_MSG_DELSETELEM && len(elems) == 0 {
			clear(s.elems) // a flush
		}
		for _, e := range elems {
			k := elemKey(e)
			_, has := s.elems[k]
			switch {
			case typ == unix.NFT_MSG_DELSETELEM && !has:
				return nil, unix.ENOENT
			case typ == unix.NFT_MSG_DELSETELEM:
				delete(s.elems, k)
			case has:
				return nil, unix.EEXIST
			case e.chain != "" && t.chains[e.chain] == nil:
				return nil, unix.ENOENT
			default:
				s.elems[k] = e
			}
		}
	default:
		return nil, fmt.Errorf("message type %d: %w", typ, unix.EOPNOTSUPP)
	}
	return t, nil
}

// checkRefs refuses a rule that looks up a missing set or jumps to a
// missing chain.
func (t *fakeTable) checkRefs(r *ruleModel) error {
	for _, b := range r.exprs {
		e, err := decodeExpr(b)
		if err != nil {
			return unix.EINVAL
		}
		if set, ok := lookupSet(e); ok && t.sets[set] == nil {
			return unix.ENOENT
		}
		if chain, ok := jumpTarget(e); ok && t.chains[chain] == nil {
			return unix.ENOENT
		}
	}
	return nil
}

func lookupSet(e expr.Any) (string, bool) {
	l, ok := e.(*expr.Lookup)
	if !ok {
		return "", false
	}
	return l.SetName, true
}

func jumpTarget(e expr.Any) (string, bool) {
	v, ok := e.(*expr.Verdict)
	if !ok || (v.Kind != expr.VerdictJump && v.Kind != expr.VerdictGoto) {
		return "", false
	}
	return v.Chain, true
}

func (t *fakeTable) looksUp(set string) bool {
	for _, c := range t.chains {
		for _, r := range c.rules {
			for _, b := range r.exprs {
				if e, err := decodeExpr(b); err == nil {
					if s, ok := lookupSet(e); ok && s == set {
						return true
					}
				}
			}
		}
	}
	return false
}

func (t *fakeTable) jumpsTo(chain string) bool {
	for _, c := range t.chains {
		for _, r := range c.rules {
			for _, b := range r.exprs {
				if e, err := decodeExpr(b); err == nil {
					if target, ok := jumpTarget(e); ok && target == chain {
						return true
					}
				}
			}
		}
	}
	for _, s := range t.sets {
		for _, e := range s.elems {
			if e.chain == chain {
				return true
			}
		}
	}
	return false
}

func (f *fakeKernel) tableExists(table string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tbl != nil && f.tbl.name == table, nil
}

func (f *fakeKernel) read(family byte, table string) (*kernelState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ks := &kernelState{m: newModel(), attrs: map[string]setAttrs{}}
	t := f.tbl
	if family == unix.NFPROTO_BRIDGE {
		t = f.br
	}
	if t == nil || t.name != table {
		return ks, nil
	}
	ks.exists, ks.flags = true, t.flags
	for name, c := range t.chains {
		cc := *c
		cc.rules = slices.Clone(c.rules)
		ks.m.chains[name] = &cc
	}
	for name, fs := range t.sets {
		ks.attrs[name] = fs.attrs
		kind, fam := kindOf(fs.attrs)
		s := newSet(name, kind, fam, "")
		ks.m.sets[name] = s
		if kind != 0 {
			fillElements(s, slices.Collect(maps.Values(fs.elems)))
		}
	}
	return ks, nil
}

var _ kernelConn = (*fakeKernel)(nil)
