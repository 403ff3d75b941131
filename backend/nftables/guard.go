package nftables

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
)

// Source validation: a packet that arrives on an endpoint's interface
// (ir.Endpoint.Interface) must carry one of the endpoint's addresses as its
// source. The check lives in two places, with the same sets:
//
//	table inet palisade                          table bridge palisade
//	chain source-guard (prerouting, -300)        chain source-guard (prerouting, -300)
//	  iifname . ip saddr @guard-v4 accept          iifname . ip saddr @guard-v4 accept
//	  iifname . ip6 saddr @guard-v6 accept         iifname . ip6 saddr @guard-v6 accept
//	  iifname != @guard-ifaces accept              iifname != @guard-ifaces accept
//	  ip6 saddr fe80::/10 accept                   ether type arp accept
//	  ip6 saddr :: accept                          ip6 saddr fe80::/10 accept
//	  counter drop                                 ip6 saddr :: accept
//	                                               counter drop
//
// A pod's own packet costs one lookup; one from elsewhere (the node's
// uplink) two.
//
// (ip and ip6 matches carry the family check nft adds: meta nfproto in the
// inet table, meta protocol in the bridge one.) In the bridge table a frame
// from an endpoint's port that is neither ARP nor IPv4/IPv6 with a source
// of the endpoint is dropped: a VLAN-tagged or other encapsulated frame
// would otherwise carry a forged source past the check.
//
// A routed veth's packets meet the inet chain with iifname the veth. A
// bridge port's packets meet the bridge chain first, with iifname the port
// (in the inet hooks, through br_netfilter, the input interface is the
// bridge and the port is lost). Each interface is in both tables' sets, so
// the backend need not know the topology: a routed veth never meets the
// bridge hook and a bridged packet never carries a port name in the inet
// one. Priority -300 (raw) runs before connection tracking (-200): a forged
// packet is dropped before it creates an entry. The objects exist only while
// some endpoint has an Interface.

// Fixed names of the source validation objects (in both tables).
const (
	chainSourceGuard = "source-guard"
	setGuardIfaces   = "guard-ifaces"
	// guardPriority is NF_IP_PRI_RAW: before conntrack (-200).
	guardPriority = -300
)

func guardSetName(fam ir.Family) string { return "guard-v" + famDigit(fam) }

// ifAddr is an element of a guard set: an interface and an address it may
// send from.
type ifAddr = ir.SourcePair

// nft datatype of an interface name, and the size of its key.
const (
	typeIfname = 41
	ifnameLen  = 16
)

// guardApply turns ch, the source validation change of a delta, into
// element changes once the delta's endpoints are applied, creating the
// guard objects on first use and deleting them when no endpoint has an
// interface any more. owners is the state's interface → endpoint map,
// already updated.
func (s *state) guardApply(ch *ir.SourceChange, t *tx) {
	if len(s.ifOwner) > 0 && s.bm == nil {
		s.guardOn(t)
	}
	if s.bm == nil {
		return
	}
	for _, m := range []*model{s.m, s.bm} {
		tt := t
		if m == s.bm {
			tt = t.bridge()
		}
		ifaces := m.sets[setGuardIfaces]
		for _, name := range ch.RemovedInterfaces {
			delete(ifaces.ifaces, name)
			tt.delIface(ifaces, name)
		}
		for _, p := range ch.RemovedPairs {
			set := m.sets[guardSetName(famOf(p.Addr))]
			delete(set.pairs, p)
			tt.delPair(set, p)
		}
		for _, name := range ch.AddedInterfaces {
			ifaces.ifaces[name] = struct{}{}
			tt.addIface(ifaces, name)
		}
		for _, p := range ch.AddedPairs {
			set := m.sets[guardSetName(famOf(p.Addr))]
			set.pairs[p] = struct{}{}
			tt.addPair(set, p)
		}
	}
	if len(s.ifOwner) == 0 {
		s.guardOff(t)
	}
}

// guardOn creates the guard objects: sets and chain in our inet table, and
// the bridge table with the same.
func (s *state) guardOn(t *tx) {
	s.bm = newModel()
	bt := t.bridge()
	bt.createTable()
	for _, m := range []*model{s.m, s.bm} {
		tt := t
		if m == s.bm {
			tt = bt
		}
		for _, set := range guardSets() {
			m.sets[set.name] = set
			tt.createSet(set)
		}
		c := guardChain(m == s.bm)
		m.chains[c.name] = c
		tt.createChain(c)
		tt.writeRules(c, false, 0)
	}
}

// guardOff deletes the guard objects (the elements are gone already).
func (s *state) guardOff(t *tx) {
	if c := s.m.chains[chainSourceGuard]; c != nil {
		t.deleteChain(c.name, len(c.rules))
		delete(s.m.chains, c.name)
	}
	for _, set := range guardSets() {
		delete(s.m.sets, set.name)
		t.deleteSet(set.name)
	}
	s.bm = nil
	t.bridge().deleteTable()
}

func guardSets() []*setModel {
	return []*setModel{
		newSet(setGuardIfaces, ifaceKind, ir.IPv4, "source validation: endpoint interfaces"),
		newSet(guardSetName(ir.IPv4), guardKind, ir.IPv4, "source validation: interface . IPv4 source it may use"),
		newSet(guardSetName(ir.IPv6), guardKind, ir.IPv6, "source validation: interface . IPv6 source it may use"),
	}
}

// guardChain is the source-guard base chain of the inet table, or with
// bridge of the bridge table.
func guardChain(bridge bool) *chainModel {
	c := &chainModel{name: chainSourceGuard, base: &baseHook{hook: unix.NF_INET_PRE_ROUTING, prio: guardPriority},
		comment: "palisade: source validation, an endpoint sends from its own addresses only"}
	famOK := matchNFProto
	if bridge {
		famOK = matchEtherType
		c.comment = "palisade: source validation of bridge ports, an endpoint sends from its own addresses only"
	}
	// The pod's own source first: the common case is one lookup. Then
	// what is not from an endpoint interface, then what neighbour
	// discovery needs.
	c.rules = []*ruleModel{
		mustRule(join(famOK(ir.IPv4), matchIfaceAddr(ir.IPv4, guardSetName(ir.IPv4)), accept()), "IPv4 source of the interface's endpoint"),
		mustRule(join(famOK(ir.IPv6), matchIfaceAddr(ir.IPv6, guardSetName(ir.IPv6)), accept()), "IPv6 source of the interface's endpoint"),
		mustRule(join(matchIfaceSet(setGuardIfaces, true), accept()), "not an endpoint interface"),
	}
	if bridge {
		c.rules = append(c.rules, mustRule(join(matchEtherArp(), accept()), "ARP"))
	}
	c.rules = append(c.rules,
		mustRule(join(famOK(ir.IPv6), matchIPv6LinkLocalSrc(), accept()), "IPv6 link-local source (neighbour discovery)"),
		mustRule(join(famOK(ir.IPv6), matchIPv6UnspecifiedSrc(), accept()), "IPv6 unspecified source (duplicate address detection)"),
		mustRule(join(counter(), drop()), "source validation: forged source address"),
	)
	return c
}

// --- expressions ---

// matchIfaceSet matches when the input interface is (with invert: is not)
// in set.
func matchIfaceSet(set string, invert bool) frag {
	return memo(fmt.Sprintf("iifset %s %t", set, invert), func() frag {
		op := " @"
		if invert {
			op = " != @"
		}
		return frag{
			exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1},
				&expr.Lookup{SourceRegister: reg1, SetName: set, Invert: invert},
			},
			text: "iifname" + op + set,
		}
	})
}

// matchIfaceAddr matches when (input interface, source address) is in set.
// The family must have been checked before.
func matchIfaceAddr(fam ir.Family, set string) frag {
	return memo("iifaddr "+famDigit(fam)+" "+set, func() frag {
		return frag{
			exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1},
				loadAddr(fam, srcAddr, concatReg(reg32_00+ifnameLen/4)),
				&expr.Lookup{SourceRegister: reg1, SetName: set},
			},
			text: "iifname . " + fieldText(fam, srcAddr) + " @" + set,
		}
	})
}

// matchIPv6LinkLocalSrc matches a source in fe80::/10 (the family must have
// been checked), as nft writes a prefix: the whole address, masked.
func matchIPv6LinkLocalSrc() frag {
	return memo("ip6 saddr fe80::/10", func() frag {
		mask, val := make([]byte, 16), make([]byte, 16)
		mask[0], mask[1], val[0], val[1] = 0xff, 0xc0, 0xfe, 0x80
		return frag{
			exprs: []expr.Any{
				loadAddr(ir.IPv6, srcAddr, reg1),
				&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 16, Mask: mask, Xor: make([]byte, 16)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: val},
			},
			text: "ip6 saddr fe80::/10",
		}
	})
}

// matchIPv6UnspecifiedSrc matches the source :: (the family must have been
// checked).
func matchIPv6UnspecifiedSrc() frag {
	return memo("ip6 saddr ::", func() frag {
		return frag{
			exprs: []expr.Any{
				loadAddr(ir.IPv6, srcAddr, reg1),
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: make([]byte, 16)},
			},
			text: "ip6 saddr ::",
		}
	})
}

// matchEtherType checks the packet's protocol in a bridge chain, as nft
// does (meta protocol) before an ip or ip6 header field there (and does
// not print).
func matchEtherType(fam ir.Family) frag {
	return memo("meta protocol "+famDigit(fam), func() frag {
		typ, name := []byte{0x08, 0x00}, "ip"
		if fam == ir.IPv6 {
			typ, name = []byte{0x86, 0xdd}, "ip6"
		}
		return frag{
			exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: reg1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: typ},
			},
			text: "meta protocol " + name,
		}
	})
}

// matchEtherArp matches ARP frames (a bridge chain), as nft writes `ether
// type arp`.
func matchEtherArp() frag {
	return memo("ether type arp", func() frag {
		return frag{
			exprs: []expr.Any{
				&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseLLHeader, Offset: 12, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{0x08, 0x06}},
			},
			text: "ether type arp",
		}
	})
}

// --- elements ---

func (ar *arena) ifname(name string) []byte {
	k := ar.take(ifnameLen)
	clear(k)
	copy(k, name)
	return k
}

func (ar *arena) pair(p ifAddr) []byte {
	a := p.Addr.AsSlice()
	k := ar.take(ifnameLen + len(a))
	clear(k[:ifnameLen])
	copy(k, p.Interface)
	copy(k[ifnameLen:], a)
	return k
}

func (t *tx) addIface(s *setModel, name string) {
	if t != nil {
		o := t.ops(s)
		o.addIf = append(o.addIf, name)
	}
}

func (t *tx) delIface(s *setModel, name string) {
	if t != nil {
		o := t.ops(s)
		o.delIf = append(o.delIf, name)
	}
}

func (t *tx) addPair(s *setModel, p ifAddr) {
	if t != nil {
		o := t.ops(s)
		o.addPr = append(o.addPr, p)
	}
}

func (t *tx) delPair(s *setModel, p ifAddr) {
	if t != nil {
		o := t.ops(s)
		o.delPr = append(o.delPr, p)
	}
}

// fillGuardElements reads the elements of an ifaceKind or guardKind set.
func fillGuardElements(s *setModel, elems []element) {
	alen := int(addrLen(s.fam))
	for _, e := range elems {
		switch {
		case e.end || e.data != nil || e.chain != "":
			s.broken = true
		case s.kind == ifaceKind && len(e.key) == ifnameLen:
			s.ifaces[cstring(e.key)] = struct{}{}
		case s.kind == guardKind && len(e.key) == ifnameLen+alen:
			a, _ := netip.AddrFromSlice(e.key[ifnameLen:])
			s.pairs[ifAddr{Interface: cstring(e.key[:ifnameLen]), Addr: a}] = struct{}{}
		default:
			s.broken = true
		}
	}
}

// diffBridge records in t (when not nil) what turns our bridge table as
// found into want (nil: no table), and returns one line per difference.
func diffBridge(have *kernelState, want *model, t *tx) []string {
	switch {
	case want == nil && have.exists:
		t.bridge().deleteTable()
		return []string{"bridge table unexpected"}
	case want == nil:
		return nil
	}
	notes := diffModels(have, want, t.bridge())
	for i := range notes {
		notes[i] = "bridge table: " + notes[i]
	}
	return notes
}

// ForgedDrops returns the number of packets the source validation dropped
// (a forged source on an endpoint's interface) since the guard chains were
// created, summed over the inet and bridge tables. It is 0 while no
// endpoint has an interface, and an error before the first Sync.
func (b *Backend) ForgedDrops(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.st == nil:
		return 0, fmt.Errorf("nftables: ForgedDrops before the first Sync: %w", backend.ErrNotSynced)
	case b.st.bm == nil:
		return 0, nil
	}
	cr, ok := b.c.(counterReader)
	if !ok {
		return 0, errors.New("nftables: ForgedDrops: the connection reads no counters")
	}
	var total uint64
	for _, fam := range []byte{unix.NFPROTO_INET, unix.NFPROTO_BRIDGE} {
		counts, err := cr.ruleCounters(fam, b.cfg.TableName, chainSourceGuard)
		if err != nil {
			return 0, err
		}
		if len(counts) > 0 {
			total += counts[len(counts)-1] // the final counter drop
		}
	}
	return total, nil
}

// counterReader reads the packet counters of a chain's rules, in order (0
// for a rule without a counter).
type counterReader interface {
	ruleCounters(family byte, table, chain string) ([]uint64, error)
}

func (c *conn) ruleCounters(family byte, table, chain string) ([]uint64, error) {
	var a attrBuf
	a.putStr(unix.NFTA_RULE_TABLE, table)
	a.putStr(unix.NFTA_RULE_CHAIN, chain)
	msgs, err := c.execute(unix.NFT_MSG_GETRULE, netlink.Dump, family, a.b)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nftables: read counters of %s: %w", chain, err)
	}
	var out []uint64
	for _, m := range msgs {
		var packets uint64
		var tbl, ch string
		forAttrs(m.Data[4:], func(typ uint16, b []byte) {
			switch typ {
			case unix.NFTA_RULE_TABLE:
				tbl = cstring(b)
			case unix.NFTA_RULE_CHAIN:
				ch = cstring(b)
			case unix.NFTA_RULE_EXPRESSIONS:
				forAttrs(b, func(_ uint16, b []byte) {
					if e, err := decodeExpr(b); err == nil {
						if cnt, ok := e.(*expr.Counter); ok {
							packets = cnt.Packets
						}
					}
				})
			}
		})
		if tbl == table && ch == chain {
			out = append(out, packets)
		}
	}
	return out, nil
}

// setUserdata is a set's userdata: its comment and, for a set keyed by an
// interface name alone, the key's byte order as nft records it (host
// order, which for a string is its bytes as they are): without it nft
// prints every name as "".
func setUserdata(s *setModel) []byte {
	var ud []byte
	if s.kind == ifaceKind {
		ud = append(ud, udataSetKeyByteorder, 4)
		ud = binary.NativeEndian.AppendUint32(ud, byteorderHost)
	}
	if s.comment != "" {
		ud = append(ud, comment(udataSetComment, s.comment)...)
	}
	return ud
}

// libnftnl's set userdata type for the key byte order, and nft's value for
// host order.
const (
	udataSetKeyByteorder = 0
	byteorderHost        = 1
)
