package nftables

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
)

// tableExists reports whether our inet table exists.
func (c *conn) tableExists(table string) (bool, error) {
	var a attrBuf
	a.putStr(unix.NFTA_TABLE_NAME, table)
	_, err := c.execute(unix.NFT_MSG_GETTABLE, 0, unix.NFPROTO_INET, a.b)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("nftables: read table %s: %w", table, err)
	}
	return true, nil
}

// read dumps a table of ours (family inet or bridge): the table, its
// chains, sets, rules, and the elements of every set whose attributes are
// ours (a foreign set is replaced whole, its elements do not matter).
func (c *conn) read(family byte, table string) (*kernelState, error) {
	ks := &kernelState{m: newModel(), attrs: map[string]setAttrs{}}
	var a attrBuf
	a.putStr(unix.NFTA_TABLE_NAME, table)
	msgs, err := c.execute(unix.NFT_MSG_GETTABLE, 0, family, a.b)
	if errors.Is(err, unix.ENOENT) {
		return ks, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nftables: read table %s: %w", table, err)
	}
	ks.exists = true
	for _, m := range msgs {
		forAttrs(m.Data[4:], func(typ uint16, b []byte) {
			if typ == unix.NFTA_TABLE_FLAGS && len(b) == 4 {
				ks.flags = binary.BigEndian.Uint32(b)
			}
		})
	}

	a = attrBuf{}
	a.putStr(unix.NFTA_CHAIN_TABLE, table)
	if msgs, err = c.execute(unix.NFT_MSG_GETCHAIN, netlink.Dump, family, a.b); err != nil {
		return nil, fmt.Errorf("nftables: read chains: %w", err)
	}
	for _, m := range msgs {
		if ch, tbl := decodeChain(m.Data[4:]); tbl == table {
			ks.m.chains[ch.name] = ch
		}
	}

	a = attrBuf{}
	a.putStr(unix.NFTA_RULE_TABLE, table)
	if msgs, err = c.execute(unix.NFT_MSG_GETRULE, netlink.Dump, family, a.b); err != nil {
		return nil, fmt.Errorf("nftables: read rules: %w", err)
	}
	for _, m := range msgs {
		chain, tbl, r := decodeRule(m.Data[4:])
		if ch := ks.m.chains[chain]; ch != nil && tbl == table {
			ch.rules = append(ch.rules, r)
		}
	}

	a = attrBuf{}
	a.putStr(unix.NFTA_SET_TABLE, table)
	if msgs, err = c.execute(unix.NFT_MSG_GETSET, netlink.Dump, family, a.b); err != nil {
		return nil, fmt.Errorf("nftables: read sets: %w", err)
	}
	for _, m := range msgs {
		name, tbl, at := decodeSet(m.Data[4:])
		if tbl != table {
			continue
		}
		ks.attrs[name] = at
		kind, fam := kindOf(at)
		s := newSet(name, kind, fam, "")
		ks.m.sets[name] = s
		if kind == 0 {
			continue
		}
		if err := c.readElements(family, table, s); err != nil {
			return nil, err
		}
	}
	if err := c.readLimits(table, ks.m); err != nil {
		return nil, err
	}
	return ks, nil
}

// kindOf recognises the attributes of our set kinds.
func kindOf(at setAttrs) (setKind, ir.Family) {
	for _, kind := range []setKind{addrKind, hostKind, portKind, vmapKind, ifaceKind, guardKind} {
		for _, fam := range families {
			if (&setModel{kind: kind, fam: fam}).attrs() == at {
				return kind, fam
			}
		}
	}
	return 0, 0
}

func (c *conn) readElements(family byte, table string, s *setModel) error {
	var a attrBuf
	a.putStr(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	a.putStr(unix.NFTA_SET_ELEM_LIST_SET, s.name)
	msgs, err := c.execute(unix.NFT_MSG_GETSETELEM, netlink.Dump, family, a.b)
	if err != nil {
		return fmt.Errorf("nftables: read set %s: %w", s.name, err)
	}
	var elems []element
	for _, m := range msgs {
		if !decodeElementList(m.Data[4:], &elems) {
			s.broken = true
		}
	}
	fillElements(s, elems)
	return nil
}

// decodeElementList appends the elements of a set element list message
// (its attributes) to elems; false when one is not something we write.
func decodeElementList(b []byte, elems *[]element) bool {
	all := true
	forAttrs(b, func(typ uint16, b []byte) {
		if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			return
		}
		forAttrs(b, func(_ uint16, b []byte) {
			e, ok := decodeElement(b)
			all = all && ok
			*elems = append(*elems, e)
		})
	})
	return all
}

// fillElements sets s's members from the kernel's elements, marking s
// broken when they are not what we write.
func fillElements(s *setModel, elems []element) {
	alen := int(addrLen(s.fam))
	addr := func(k []byte) (netip.Addr, bool) {
		if len(k) < alen {
			return netip.Addr{}, false
		}
		a, ok := netip.AddrFromSlice(k[:alen])
		return a, ok
	}
	switch s.kind {
	case addrKind:
		ivals, ok := pairIntervals(elems, alen)
		if !ok {
			s.broken = true
		}
		for _, iv := range ivals {
			s.ivals[iv] = struct{}{}
		}
	case hostKind:
		for _, e := range elems {
			a, ok := addr(e.key)
			if !ok || len(e.key) != alen || e.end || e.data != nil || e.chain != "" {
				s.broken = true
				continue
			}
			s.hosts[a] = struct{}{}
		}
	case portKind:
		for _, e := range elems {
			a, ok := addr(e.key)
			if !ok || len(e.key) != alen+4 {
				s.broken = true
				continue
			}
			s.ports[netip.AddrPortFrom(a, binary.BigEndian.Uint16(e.key[alen:]))] = struct{}{}
		}
	case vmapKind:
		for _, e := range elems {
			a, ok := addr(e.key)
			if !ok || len(e.key) != alen || e.chain == "" {
				s.broken = true
				continue
			}
			s.jumps[a] = e.chain
		}
	case ifaceKind, guardKind:
		fillGuardElements(s, elems)
	}
}

// pairIntervals turns interval-set elements back into intervals: sorted by
// key, an end before a start of the same key, each start closed by the next
// end; a last start without an end runs to the end of the address space.
func pairIntervals(elems []element, alen int) ([]interval, bool) {
	slices.SortFunc(elems, func(a, b element) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		switch {
		case a.end == b.end:
			return 0
		case a.end:
			return -1
		}
		return 1
	})
	var out []interval
	var open *netip.Addr
	ok := true
	for _, e := range elems {
		if len(e.key) != alen {
			ok = false
			continue
		}
		a, _ := netip.AddrFromSlice(e.key)
		switch {
		case !e.end && open == nil:
			open = &a
		case e.end && open != nil:
			out = append(out, interval{lo: *open, hi: a})
			open = nil
		default:
			ok = false
		}
	}
	if open != nil {
		out = append(out, interval{lo: *open, open: true})
	}
	return out, ok
}

func decodeElement(b []byte) (element, bool) {
	var e element
	ok := true
	forAttrs(b, func(typ uint16, b []byte) {
		switch typ {
		case unix.NFTA_SET_ELEM_KEY:
			forAttrs(b, func(typ uint16, b []byte) {
				if typ == unix.NFTA_DATA_VALUE {
					e.key = slices.Clone(b)
				}
			})
		case unix.NFTA_SET_ELEM_FLAGS:
			if len(b) == 4 {
				e.end = binary.BigEndian.Uint32(b)&unix.NFT_SET_ELEM_INTERVAL_END != 0
			}
		case nftaSetElemKeyEnd:
			ok = false // a range element: not something we write
		case unix.NFTA_SET_ELEM_DATA:
			forAttrs(b, func(typ uint16, b []byte) {
				if typ == unix.NFTA_DATA_VALUE {
					e.data = slices.Clone(b)
					return
				}
				if typ != unix.NFTA_DATA_VERDICT {
					ok = false
					return
				}
				var code int32
				var chain string
				forAttrs(b, func(typ uint16, b []byte) {
					switch typ {
					case unix.NFTA_VERDICT_CODE:
						if len(b) == 4 {
							code = int32(binary.BigEndian.Uint32(b))
						}
					case unix.NFTA_VERDICT_CHAIN:
						chain = strings.TrimRight(string(b), "\x00")
					}
				})
				if code == unix.NFT_JUMP {
					e.chain = chain
				} else {
					e.chain = fmt.Sprintf("#verdict %d", code) // never one of ours
				}
			})
		}
	})
	return e, ok
}

func decodeChain(b []byte) (*chainModel, string) {
	c := &chainModel{}
	var table string
	var base baseHook
	hooked, policy, ctype := false, uint32(nfAccept), "filter"
	forAttrs(b, func(typ uint16, b []byte) {
		switch typ {
		case unix.NFTA_CHAIN_TABLE:
			table = cstring(b)
		case unix.NFTA_CHAIN_NAME:
			c.name = cstring(b)
		case unix.NFTA_CHAIN_HOOK:
			hooked = true
			forAttrs(b, func(typ uint16, b []byte) {
				if len(b) != 4 {
					return
				}
				switch typ {
				case unix.NFTA_HOOK_HOOKNUM:
					base.hook = binary.BigEndian.Uint32(b)
				case unix.NFTA_HOOK_PRIORITY:
					base.prio = int32(binary.BigEndian.Uint32(b))
				}
			})
		case unix.NFTA_CHAIN_POLICY:
			if len(b) == 4 {
				policy = binary.BigEndian.Uint32(b)
			}
		case unix.NFTA_CHAIN_TYPE:
			ctype = cstring(b)
		case nftaChainUserdata:
			c.comment = commentText(udataChainComment, b)
		}
	})
	if hooked {
		if policy != nfAccept || ctype != "filter" {
			base.hook = ^uint32(0) // not a chain we would make: replace it
		}
		c.base = &base
	}
	return c, table
}

func decodeSet(b []byte) (name, table string, at setAttrs) {
	forAttrs(b, func(typ uint16, b []byte) {
		u32 := func() uint32 {
			if len(b) != 4 {
				return 0
			}
			return binary.BigEndian.Uint32(b)
		}
		switch typ {
		case unix.NFTA_SET_TABLE:
			table = cstring(b)
		case unix.NFTA_SET_NAME:
			name = cstring(b)
		case unix.NFTA_SET_FLAGS:
			at.flags = u32()
		case unix.NFTA_SET_KEY_TYPE:
			at.keyType = u32()
		case unix.NFTA_SET_KEY_LEN:
			at.keyLen = u32()
		case unix.NFTA_SET_DATA_TYPE:
			at.dataType = u32()
		case unix.NFTA_SET_DATA_LEN:
			at.dataLen = u32()
		}
	})
	if at.dataType == typeVerdict {
		at.dataLen = 0 // the kernel reports its own verdict size
	}
	return name, table, at
}

// decodeRule returns a rule with the same key as the rule newRule built,
// when the kernel holds that rule: each expression is parsed and marshalled
// again, with counters zeroed.
func decodeRule(b []byte) (chain, table string, r *ruleModel) {
	r = &ruleModel{}
	var key strings.Builder
	forAttrs(b, func(typ uint16, b []byte) {
		switch typ {
		case unix.NFTA_RULE_TABLE:
			table = cstring(b)
		case unix.NFTA_RULE_CHAIN:
			chain = cstring(b)
		case unix.NFTA_RULE_USERDATA:
			r.udata = slices.Clone(b)
		case unix.NFTA_RULE_EXPRESSIONS:
			forAttrs(b, func(_ uint16, b []byte) {
				e := canonicalExpr(b)
				r.exprs = append(r.exprs, e)
				key.Write(e)
			})
		}
	})
	key.WriteByte(0)
	key.Write(r.udata)
	r.key = key.String()
	r.text = commentText(udataRuleComment, r.udata)
	return chain, table, r
}

// canonicalExpr re-marshals one expression (NFTA_EXPR_NAME, NFTA_EXPR_DATA).
// An expression we never write keeps its raw bytes, which match nothing of
// ours, so the rule is rewritten.
func canonicalExpr(b []byte) []byte {
	canonMemo.Lock()
	defer canonMemo.Unlock()
	if c, ok := canonMemo.m[string(b)]; ok {
		return c
	}
	c := canonicalize(b)
	if len(canonMemo.m) >= 1<<16 {
		clear(canonMemo.m)
	}
	if !bytes.Contains(b, []byte("counter\x00")) { // counters vary: not worth keeping
		canonMemo.m[string(b)] = c
	}
	return c
}

// canonMemo keeps the canonical form of expressions seen in dumps: the same
// few matches repeat across thousands of rules.
var canonMemo = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

func canonicalize(b []byte) []byte {
	e, err := decodeExpr(b)
	if err != nil {
		return append([]byte("?"), b...)
	}
	if c, ok := e.(*expr.Counter); ok {
		c.Bytes, c.Packets = 0, 0
	}
	out, err := expr.Marshal(unix.NFPROTO_INET, e)
	if err != nil {
		return append([]byte("?"), b...)
	}
	return out
}

// decodeExpr decodes one expression (NFTA_EXPR_NAME, NFTA_EXPR_DATA) of the
// kinds we write; a verdict comes back as an *expr.Verdict.
func decodeExpr(b []byte) (expr.Any, error) {
	name, data := exprAttrs(b)
	var e expr.Any
	switch name {
	case "meta":
		e = &expr.Meta{}
	case "cmp":
		e = &expr.Cmp{}
	case "payload":
		e = &expr.Payload{}
	case "lookup":
		e = &expr.Lookup{}
	case "ct":
		e = &expr.Ct{}
	case "bitwise":
		e = &expr.Bitwise{}
	case "range":
		e = &expr.Range{}
	case "counter":
		e = &expr.Counter{}
	case "immediate":
		e = &expr.Immediate{}
	case "objref":
		e = &expr.Objref{}
	case "log":
		e = &expr.Log{}
	default:
		return nil, fmt.Errorf("expression %q is not one we write", name)
	}
	if err := expr.Unmarshal(unix.NFPROTO_INET, data, e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	if x, ok := e.(*expr.Immediate); ok && x.Register == unix.NFT_REG_VERDICT && len(x.Data) == 0 {
		v := &expr.Verdict{}
		if err := expr.Unmarshal(unix.NFPROTO_INET, data, v); err != nil {
			return nil, fmt.Errorf("decode verdict: %w", err)
		}
		e = v
	}
	return e, nil
}

// exprAttrs returns the name (NFTA_EXPR_NAME) and the undecoded data
// (NFTA_EXPR_DATA) of one expression.
func exprAttrs(b []byte) (name string, data []byte) {
	forAttrs(b, func(typ uint16, v []byte) {
		switch typ {
		case unix.NFTA_EXPR_NAME:
			name = cstring(v)
		case unix.NFTA_EXPR_DATA:
			data = v
		}
	})
	return name, data
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// forAttrs calls fn for each attribute in b (the nested flag stripped).
func forAttrs(b []byte, fn func(typ uint16, data []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < 4 || l > len(b) {
			return
		}
		fn(typ, b[4:l])
		al := (l + 3) &^ 3
		if al > len(b) {
			return
		}
		b = b[al:]
	}
}
