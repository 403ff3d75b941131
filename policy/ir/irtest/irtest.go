// Package irtest builds IR values by hand for tests of backends and of the IR itself.
package irtest

import (
	"net/netip"

	"github.com/palisade-net/palisade/policy/ir"
)

// Prefix parses s as a prefix and panics if it is not one.
func Prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// Addr parses s as an address and panics if it is not one.
func Addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// AddrPort parses s as an address and port and panics if it is not one.
func AddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Prefixes parses each of ss as a prefix. The result is empty but not nil
// when ss is.
func Prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, Prefix(s))
	}
	return out
}

// AddrSet is address set id of the given prefixes, described as
// "test set <id>".
func AddrSet(id string, members ...string) ir.AddressSet {
	return DescribedSet(id, "test set "+id, members...)
}

// HostSet is AddrSet for a set of pod addresses (Hosts).
func HostSet(id string, members ...string) ir.AddressSet {
	s := AddrSet(id, members...)
	s.Hosts = true
	return s
}

// DescribedSet is address set id of the given prefixes with the given
// description.
func DescribedSet(id, description string, members ...string) ir.AddressSet {
	return ir.AddressSet{ID: id, Description: description, Members: Prefixes(members...)}
}

// PortSet is port set id of the given address:port members, for the named
// port name of protocol proto.
func PortSet(id string, proto ir.Protocol, name string, members ...string) ir.PortSet {
	ps := ir.PortSet{ID: id, Protocol: proto, PortName: name}
	for _, m := range members {
		ps.Members = append(ps.Members, AddrPort(m))
	}
	return ps
}

// Rule is rule idx with the given action, matching all peers and all ports
// until tweaks (such as Peers and Ports) narrow it.
func Rule(idx int, action ir.Action, tweaks ...func(*ir.Rule)) ir.Rule {
	r := ir.Rule{Index: idx, Action: action, AllPeers: true, AllPorts: true}
	for _, t := range tweaks {
		t(&r)
	}
	return r
}

// BareRule is rule idx with the given action, matching no peers and no
// ports until tweaks (such as AllPeers, Peers, AllPorts and Ports) say
// otherwise.
func BareRule(idx int, action ir.Action, tweaks ...func(*ir.Rule)) ir.Rule {
	r := ir.Rule{Index: idx, Action: action}
	for _, t := range tweaks {
		t(&r)
	}
	return r
}

// AllPeers makes a rule match every peer.
func AllPeers(r *ir.Rule) { r.AllPeers = true }

// AllPorts makes a rule match every port.
func AllPorts(r *ir.Rule) { r.AllPorts = true }

// Peers makes a rule match the peers in the given address sets only
// (clearing AllPeers).
func Peers(ids ...string) func(*ir.Rule) {
	return func(r *ir.Rule) { r.AllPeers, r.Peers = false, ids }
}

// Ports makes a rule match the given ports only (clearing AllPorts).
func Ports(pms ...ir.PortMatch) func(*ir.Rule) {
	return func(r *ir.Rule) { r.AllPorts, r.Ports = false, pms }
}

// Port matches ports lo to hi of protocol p (lo == hi for one port; 0, 0
// for every port).
func Port(p ir.Protocol, lo, hi uint16) ir.PortMatch {
	return ir.PortMatch{Protocol: p, Port: lo, EndPort: hi}
}

// Named matches the ports of protocol p held by port set set (a named
// port).
func Named(p ir.Protocol, set string) ir.PortMatch { return ir.PortMatch{Protocol: p, NamedSet: set} }

// List is rule list id for direction dir, from the policy of the given kind,
// namespace and name.
func List(id, kind, ns, name string, dir ir.Direction, rules ...ir.Rule) ir.RuleList {
	return ir.RuleList{ID: id, Origin: ir.Origin{Kind: kind, Namespace: ns, Name: name}, Direction: dir, Rules: rules}
}

// Endpoint is endpoint id with the given addresses, changed by each tweak in
// order (such as Ingress and Egress).
func Endpoint(id string, ips []string, tweaks ...func(*ir.Endpoint)) ir.Endpoint {
	ep := ir.Endpoint{ID: id}
	for _, ip := range ips {
		ep.IPs = append(ep.IPs, Addr(ip))
	}
	for _, t := range tweaks {
		t(&ep)
	}
	return ep
}

// Ingress sets an endpoint's ingress tiers.
func Ingress(tiers ...ir.Tier) func(*ir.Endpoint) {
	return func(e *ir.Endpoint) { e.Ingress = tiers }
}

// Egress sets an endpoint's egress tiers.
func Egress(tiers ...ir.Tier) func(*ir.Endpoint) {
	return func(e *ir.Endpoint) { e.Egress = tiers }
}

// Tier is a tier of the given kind over the given rule lists, in order.
func Tier(kind ir.TierKind, lists ...string) ir.Tier { return ir.Tier{Kind: kind, RuleLists: lists} }

// Exercise returns a snapshot at generation 1 that exercises every kind of
// object: /0 prefixes, an ipBlock with a hole, pod sets (marked Hosts when
// hostSets), named ports, ranges, TCP/UDP/SCTP, an Admin tier with
// Allow/Deny/Pass over two lists, a NetworkPolicy tier and a Baseline tier,
// dual-stack endpoints and an unrestricted one.
func Exercise(hostSets bool) *ir.Snapshot {
	s := &ir.Snapshot{
		Generation: 1,
		AddressSets: []ir.AddressSet{
			AddrSet("all", "0.0.0.0/0", "::/0"),
			{ID: "block-ext", Description: "192.168.0.0/16 except 192.168.1.0/24", Members: ir.Subtract(Prefix("192.168.0.0/16"), []netip.Prefix{Prefix("192.168.1.0/24")})},
			AddrSet("frontend", "10.0.0.2/32", "10.0.0.3/32", "fd00::2/128"),
			AddrSet("monitoring", "10.0.0.20/32", "fd00::20/128"),
		},
		PortSets: []ir.PortSet{
			{ID: "http-tcp", Protocol: ir.TCP, PortName: "http", Members: []netip.AddrPort{AddrPort("10.0.0.10:8080"), AddrPort("[fd00::10]:8080")}},
		},
		RuleLists: []ir.RuleList{
			List("anp/allow-mon/ingress", "AdminNetworkPolicy", "", "allow-mon", ir.Ingress,
				Rule(0, ir.Allow, Peers("monitoring"), Ports(Port(ir.TCP, 9090, 9090)))),
			List("anp/pass-front/ingress", "AdminNetworkPolicy", "", "pass-front", ir.Ingress,
				Rule(0, ir.Pass, Peers("frontend")),
				Rule(1, ir.Deny, Ports(Port(ir.TCP, 5433, 5433)))),
			List("banp/default/ingress", "BaselineAdminNetworkPolicy", "", "default", ir.Ingress,
				Rule(0, ir.Deny, Peers("block-ext"))),
			List("np/default/db/egress", "NetworkPolicy", "default", "db", ir.Egress,
				Rule(0, ir.Allow, Peers("all"), Ports(Port(ir.UDP, 53, 53)))),
			List("np/default/db/ingress", "NetworkPolicy", "default", "db", ir.Ingress,
				Rule(0, ir.Allow, Peers("frontend"), Ports(Port(ir.TCP, 5432, 5432), Port(ir.TCP, 6000, 6010))),
				Rule(1, ir.Allow, Peers("block-ext", "frontend"), Ports(Port(ir.UDP, 0, 0), Port(ir.SCTP, 7000, 7000))),
				Rule(2, ir.Allow, Ports(Named(ir.TCP, "http-tcp")))),
		},
		Endpoints: []ir.Endpoint{
			Endpoint("default/db", []string{"10.0.0.10", "fd00::10"},
				Ingress(Tier(ir.TierAdmin, "anp/pass-front/ingress", "anp/allow-mon/ingress"), Tier(ir.TierNetworkPolicy, "np/default/db/ingress"), Tier(ir.TierBaseline, "banp/default/ingress")),
				Egress(Tier(ir.TierNetworkPolicy, "np/default/db/egress"))),
			Endpoint("default/free", []string{"10.0.0.3"}),
			Endpoint("default/web", []string{"10.0.0.2", "fd00::2"},
				Ingress(Tier(ir.TierBaseline, "banp/default/ingress"))),
		},
	}
	if hostSets {
		for i := range s.AddressSets {
			if id := s.AddressSets[i].ID; id == "frontend" || id == "monitoring" {
				s.AddressSets[i].Hosts = true
			}
		}
	}
	return s
}
