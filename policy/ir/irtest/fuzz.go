package irtest

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/palisade-net/palisade/policy/ir"
)

// Fuzz inputs: FromBytes turns any byte string into a snapshot over a small
// fixed address space, so that a fuzz target can compare what backends make
// of the same IR. Most inputs give valid IR; some give the edge cases of the
// contract (a port range with EndPort 0, overlapping members, a Deny rule in
// a list a NetworkPolicy tier uses), which the validator must reject.

// FuzzNodeIPs are the node's addresses in the fuzz address space.
var FuzzNodeIPs = []netip.Addr{Addr("10.0.0.254"), Addr("fd00::fe")}

// FuzzAddrs are the addresses flows are drawn from: six pod addresses per
// family (endpoints take them in order), addresses outside every pod
// range, and the node's.
var FuzzAddrs = func() []netip.Addr {
	var out []netip.Addr
	for i := 1; i <= 6; i++ {
		out = append(out, Addr(fmt.Sprintf("10.0.0.%d", i)), Addr(fmt.Sprintf("fd00::%d", i)))
	}
	out = append(out, Addr("10.1.2.3"), Addr("192.168.1.1"), Addr("fd01::1"))
	return append(out, FuzzNodeIPs...)
}()

// FuzzPorts are the destination ports flows are drawn from; they sit on
// and around the bounds of the ranges FromBytes writes.
var FuzzPorts = []uint16{1, 22, 79, 80, 81, 1000, 1500, 2000, 8080, 65535}

var fuzzPrefixes = Prefixes("10.0.0.0/30", "10.0.0.4/31", "10.1.0.0/16", "192.168.0.0/16", "0.0.0.0/0",
	"fd00::/126", "fd00::4/127", "fd01::/16", "::/0", "10.0.0.0/8")

var fuzzRanges = [][2]uint16{{80, 80}, {22, 22}, {0, 0}, {1000, 2000}, {79, 81}, {1, 65535}, {65535, 65535}, {8080, 8080}}

// byteReader hands out the bytes of a fuzz input, then the same bytes
// again, scrambled by the round (zeros for an empty input).
type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) next() int {
	if len(r.b) == 0 {
		return 0
	}
	round := r.i / len(r.b)
	v := r.b[r.i%len(r.b)] ^ byte(round*151)
	r.i++
	return int(v)
}

func (r *byteReader) pick(n int) int { return r.next() % n }

// FromBytes builds a snapshot (generation 1) from a fuzz input. The same
// input always gives the same snapshot.
func FromBytes(data []byte) *ir.Snapshot {
	r := &byteReader{b: data}
	s := &ir.Snapshot{Generation: 1}

	// Address sets: pod sets of hosts, and prefix sets kept disjoint
	// unless the input asks for an overlap.
	for i := range 1 + r.pick(4) {
		set := ir.AddressSet{ID: fmt.Sprintf("set%d", i), Hosts: r.pick(2) == 0}
		for range r.pick(5) {
			var p netip.Prefix
			if set.Hosts || r.pick(2) == 0 {
				p = ir.HostPrefix(FuzzAddrs[r.pick(len(FuzzAddrs))])
			} else {
				p = fuzzPrefixes[r.pick(len(fuzzPrefixes))]
			}
			overlaps := slices.ContainsFunc(set.Members, p.Overlaps)
			if overlaps && r.pick(16) != 15 {
				continue
			}
			set.Members = append(set.Members, p)
		}
		s.AddressSets = append(s.AddressSets, set)
	}

	// Port sets: named ports on pod addresses.
	for i := range r.pick(3) {
		set := ir.PortSet{ID: fmt.Sprintf("named%d", i), Protocol: ir.Protocols[r.pick(3)], PortName: "p"}
		for range r.pick(4) {
			ap := netip.AddrPortFrom(FuzzAddrs[r.pick(12)], FuzzPorts[r.pick(len(FuzzPorts))])
			if !slices.Contains(set.Members, ap) {
				set.Members = append(set.Members, ap)
			}
		}
		s.PortSets = append(s.PortSets, set)
	}

	// Rule lists: NetworkPolicy lists hold Allow rules (a Deny one now and
	// then), the others any action.
	type listInfo struct {
		id   string
		dir  ir.Direction
		kind ir.TierKind
	}
	var lists []listInfo
	kinds := []ir.TierKind{ir.TierAdmin, ir.TierNetworkPolicy, ir.TierBaseline}
	for i := range 1 + r.pick(6) {
		li := listInfo{id: fmt.Sprintf("list%d", i), dir: []ir.Direction{ir.Ingress, ir.Egress}[r.pick(2)], kind: kinds[r.pick(3)]}
		rl := ir.RuleList{ID: li.id, Origin: ir.Origin{Kind: string(li.kind), Name: li.id}, Direction: li.dir, Priority: int32(i)}
		for j := range 1 + r.pick(3) {
			rule := ir.Rule{Index: j, Action: ir.Allow}
			if li.kind != ir.TierNetworkPolicy || r.pick(32) == 31 {
				rule.Action = []ir.Action{ir.Allow, ir.Deny, ir.Pass}[r.pick(3)]
			}
			if r.pick(3) == 0 {
				rule.AllPeers = true
			} else {
				for range 1 + r.pick(2) {
					rule.Peers = append(rule.Peers, s.AddressSets[r.pick(len(s.AddressSets))].ID)
				}
			}
			if r.pick(3) == 0 {
				rule.AllPorts = true
			} else {
				for range 1 + r.pick(2) {
					rule.Ports = append(rule.Ports, fuzzPort(r, s.PortSets))
				}
			}
			rl.Rules = append(rl.Rules, rule)
		}
		s.RuleLists = append(s.RuleLists, rl)
		lists = append(lists, li)
	}

	// Endpoints: pod i holds the i-th IPv4 address and maybe the i-th
	// IPv6 one; each direction gets some of the tiers, in order.
	for i := range 1 + r.pick(6) {
		ep := ir.Endpoint{ID: fmt.Sprintf("ns/pod%d", i), IPs: []netip.Addr{FuzzAddrs[2*i]}}
		if r.pick(2) == 0 {
			ep.IPs = append(ep.IPs, FuzzAddrs[2*i+1])
		}
		for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
			var tiers []ir.Tier
			for _, kind := range kinds {
				if r.pick(2) == 0 {
					continue
				}
				t := ir.Tier{Kind: kind}
				for _, li := range lists {
					if li.dir == dir && li.kind == kind && r.pick(2) == 0 {
						t.RuleLists = append(t.RuleLists, li.id)
					}
				}
				tiers = append(tiers, t)
			}
			if dir == ir.Ingress {
				ep.Ingress = tiers
			} else {
				ep.Egress = tiers
			}
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	s.Sort()
	return s
}

func fuzzPort(r *byteReader, named []ir.PortSet) ir.PortMatch {
	proto := ir.Protocols[r.pick(3)]
	switch c := r.pick(64); {
	case c == 63:
		// The edge case the contract rejects: a port without EndPort.
		return ir.PortMatch{Protocol: proto, Port: FuzzPorts[r.pick(len(FuzzPorts))]}
	case c >= 48 && len(named) > 0:
		set := named[r.pick(len(named))]
		return ir.PortMatch{Protocol: set.Protocol, NamedSet: set.ID}
	default:
		rg := fuzzRanges[r.pick(len(fuzzRanges))]
		return ir.PortMatch{Protocol: proto, Port: rg[0], EndPort: rg[1]}
	}
}
