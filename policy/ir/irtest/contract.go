package irtest

import (
	"net/netip"

	"github.com/palisade-net/palisade/policy/ir"
)

// ContractCase is an edge case of the IR contract. Every validator and
// every backend (ir.Snapshot.Validate, ir.CheckDelta, ir.Snapshot.Apply,
// backend/memory, the compilers of backend/nftables and backend/iptables,
// and backendtest for other backends) must accept it exactly when Want is
// empty, and otherwise fail with an error that wraps ir.ErrInvalid and
// contains Want (which names the object and field at fault).
type ContractCase struct {
	Name string
	// Snapshot is checked whole when Delta is nil; otherwise it is the
	// valid state Delta applies to.
	Snapshot *ir.Snapshot
	Delta    *ir.Delta
	Want     string
}

// ContractBase is the valid snapshot the contract cases start from: pods
// ns/a (10.0.0.1, no policy) and ns/b (10.0.0.2 and fd00::2, ingress
// isolated by np-in, under the Admin list anp-in), a hosts set of both, an
// ipBlock set 10.1.0.0/16 and a named port.
func ContractBase() *ir.Snapshot {
	s := &ir.Snapshot{
		Generation: 1,
		AddressSets: []ir.AddressSet{
			AddrSet("net", "10.1.0.0/16"),
			HostSet("pods", "10.0.0.1/32", "10.0.0.2/32"),
		},
		PortSets: []ir.PortSet{PortSet("tcp-http", ir.TCP, "http", "10.0.0.2:8080")},
		RuleLists: []ir.RuleList{
			List("anp-in", "AdminNetworkPolicy", "", "a", ir.Ingress,
				Rule(0, ir.Pass, Peers("pods")), Rule(1, ir.Deny, Peers("net"), Ports(Port(ir.TCP, 22, 22)))),
			List("np-in", "NetworkPolicy", "ns", "b", ir.Ingress,
				Rule(0, ir.Allow, Peers("pods"), Ports(Port(ir.TCP, 80, 80), Named(ir.TCP, "tcp-http"))),
				Rule(1, ir.Allow, Peers("net"), Ports(Port(ir.UDP, 0, 0), Port(ir.SCTP, 1000, 2000)))),
		},
		Endpoints: []ir.Endpoint{
			Endpoint("ns/a", []string{"10.0.0.1"}),
			Endpoint("ns/b", []string{"10.0.0.2", "fd00::2"},
				Ingress(Tier(ir.TierAdmin, "anp-in"), Tier(ir.TierNetworkPolicy, "np-in"))),
		},
	}
	return s
}

// ContractCases returns the edge cases, fresh on every call.
func ContractCases() []ContractCase {
	snap := func(name, want string, tweak func(s *ir.Snapshot)) ContractCase {
		s := ContractBase()
		tweak(s)
		return ContractCase{Name: name, Snapshot: s, Want: want}
	}
	delta := func(name, want string, d ir.Delta) ContractCase {
		d.Base, d.Generation = 1, 2
		return ContractCase{Name: name, Snapshot: ContractBase(), Delta: &d, Want: want}
	}
	port := func(s *ir.Snapshot, pm ir.PortMatch) { s.RuleLists[1].Rules[0].Ports[0] = pm }
	list := func(id string, dir ir.Direction, rules ...ir.Rule) ir.RuleList {
		return List(id, "NetworkPolicy", "ns", id, dir, rules...)
	}
	return []ContractCase{
		snap("the base", "", func(*ir.Snapshot) {}),
		snap("the empty snapshot", "", func(s *ir.Snapshot) { *s = ir.Snapshot{} }),
		snap("lists that log allowed connections", "", func(s *ir.Snapshot) {
			s.RuleLists[0].LogAllowed, s.RuleLists[1].LogAllowed = true, true
		}),
		snap("single port", "", func(s *ir.Snapshot) { port(s, Port(ir.TCP, 443, 443)) }),
		snap("every port of a protocol", "", func(s *ir.Snapshot) { port(s, Port(ir.SCTP, 0, 0)) }),
		snap("port 65535", "", func(s *ir.Snapshot) { port(s, Port(ir.UDP, 65535, 65535)) }),
		snap("the whole port range", "", func(s *ir.Snapshot) { port(s, Port(ir.TCP, 1, 65535)) }),

		snap("EndPort 0 with a port", `rule list "np-in" rule 0: port range 80-0 is empty`,
			func(s *ir.Snapshot) { port(s, ir.PortMatch{Protocol: ir.TCP, Port: 80}) }),
		snap("EndPort below Port", `rule list "np-in" rule 0: port range 90-80 is empty`,
			func(s *ir.Snapshot) { port(s, Port(ir.TCP, 90, 80)) }),
		snap("EndPort without Port", `rule list "np-in" rule 0: port range 0-100`,
			func(s *ir.Snapshot) { port(s, Port(ir.TCP, 0, 100)) }),
		snap("named port with a range", `rule list "np-in" rule 0: named port "tcp-http" with a port range 8080-8080`,
			func(s *ir.Snapshot) {
				port(s, ir.PortMatch{Protocol: ir.TCP, Port: 8080, EndPort: 8080, NamedSet: "tcp-http"})
			}),
		snap("unknown protocol in a port match", `rule list "np-in" rule 0: unknown protocol 1`,
			func(s *ir.Snapshot) { port(s, Port(1, 0, 0)) }),
		snap("unknown protocol of a port set", `port set "tcp-http": unknown protocol 47`,
			func(s *ir.Snapshot) { s.PortSets[0].Protocol = 47 }),
		snap("AllPeers with peers", `rule list "np-in" rule 0: AllPeers with peers`,
			func(s *ir.Snapshot) { s.RuleLists[1].Rules[0].AllPeers = true }),
		snap("AllPorts with port matches", `rule list "np-in" rule 0: AllPorts with port matches`,
			func(s *ir.Snapshot) { s.RuleLists[1].Rules[0].AllPorts = true }),
		snap("unknown direction", `rule list "np-in": unknown direction "Inbound"`,
			func(s *ir.Snapshot) { s.RuleLists[1].Direction = "Inbound" }),
		snap("unknown action", `rule list "anp-in" rule 0: unknown action "Log"`,
			func(s *ir.Snapshot) { s.RuleLists[0].Rules[0].Action = "Log" }),
		snap("unknown tier kind", `endpoint "ns/b": Ingress: unknown tier kind "Sideways"`,
			func(s *ir.Snapshot) { s.Endpoints[1].Ingress[0].Kind = "Sideways" }),
		snap("Deny rule in a NetworkPolicy tier", `endpoint "ns/b": Ingress tier NetworkPolicy: rule list "anp-in" has rules other than Allow`,
			func(s *ir.Snapshot) { s.Endpoints[1].Ingress[1].RuleLists = []string{"anp-in"} }),
		snap("list of the other direction", `endpoint "ns/a": Egress tier Admin: rule list "anp-in" is for Ingress`,
			func(s *ir.Snapshot) { s.Endpoints[0].Egress = []ir.Tier{Tier(ir.TierAdmin, "anp-in")} }),
		snap("unmasked member", `address set "net": member 10.1.2.3/16 has host bits set (10.1.0.0/16)`,
			func(s *ir.Snapshot) { s.AddressSets[0].Members = Prefixes("10.1.2.3/16") }),
		snap("IPv4-mapped member", `address set "net": member ::ffff:10.1.0.0/112 is an IPv4-mapped IPv6 prefix`,
			func(s *ir.Snapshot) { s.AddressSets[0].Members = Prefixes("::ffff:10.1.0.0/112") }),
		snap("invalid member", `address set "net": invalid member invalid Prefix`,
			func(s *ir.Snapshot) { s.AddressSets[0].Members = []netip.Prefix{{}} }),
		snap("overlapping members", `address set "net": members 10.0.0.0/8 and 10.1.0.0/16 overlap`,
			func(s *ir.Snapshot) { s.AddressSets[0].Members = Prefixes("10.1.0.0/16", "10.0.0.0/8") }),
		snap("prefix in a hosts set", `address set "pods": holds hosts only, but has 10.0.0.0/31`,
			func(s *ir.Snapshot) { s.AddressSets[1].Members = Prefixes("10.0.0.0/31") }),
		snap("duplicate port set member", `port set "tcp-http": member 10.0.0.2:8080 appears twice`,
			func(s *ir.Snapshot) { s.PortSets[0].Members = append(s.PortSets[0].Members, AddrPort("10.0.0.2:8080")) }),
		snap("IPv4-mapped port set member", `port set "tcp-http": member [::ffff:10.0.0.2]:8080 has an IPv4-mapped IPv6 address`,
			func(s *ir.Snapshot) { s.PortSets[0].Members = []netip.AddrPort{AddrPort("[::ffff:10.0.0.2]:8080")} }),
		snap("IPv4-mapped endpoint address", `endpoint "ns/a": address ::ffff:10.0.0.1 is IPv4-mapped IPv6`,
			func(s *ir.Snapshot) { s.Endpoints[0].IPs = []netip.Addr{Addr("::ffff:10.0.0.1")} }),
		snap("zoned endpoint address", `endpoint "ns/a": address fe80::1%eth0 has a zone`,
			func(s *ir.Snapshot) { s.Endpoints[0].IPs = []netip.Addr{Addr("fe80::1%eth0")} }),
		snap("invalid endpoint address", `endpoint "ns/a": invalid address`,
			func(s *ir.Snapshot) { s.Endpoints[0].IPs = []netip.Addr{{}} }),
		snap("address twice in one endpoint", `endpoint "ns/b": address 10.0.0.2 appears twice`,
			func(s *ir.Snapshot) { s.Endpoints[1].IPs = append(s.Endpoints[1].IPs, Addr("10.0.0.2")) }),
		snap("address of an unrestricted endpoint shared", `endpoint "ns/c": address 10.0.0.1 is also endpoint "ns/a"'s`,
			func(s *ir.Snapshot) { s.Endpoints = append(s.Endpoints, Endpoint("ns/c", []string{"10.0.0.1"})) }),
		snap("duplicate rule list", `rule list "np-in": duplicate ID`,
			func(s *ir.Snapshot) { s.RuleLists = append(s.RuleLists, s.RuleLists[1].Clone()) }),
		snap("duplicate endpoint", `endpoint "ns/a": duplicate ID`,
			func(s *ir.Snapshot) { s.Endpoints = append(s.Endpoints, Endpoint("ns/a", []string{"10.0.0.9"})) }),
		snap("empty endpoint ID", `endpoint: upserted with an empty ID`,
			func(s *ir.Snapshot) { s.Endpoints[0].ID = "" }),
		snap("address set ID with a space", `address set "my set": ID must be 1 to 24 bytes of [a-z0-9-]`,
			func(s *ir.Snapshot) {
				s.AddressSets[0].ID = "my set"
				s.RuleLists[0].Rules[1].Peers = []string{"my set"}
				s.RuleLists[1].Rules[1].Peers = []string{"my set"}
			}),
		snap("port set ID of 25 bytes", `port set "tcp-0123456789abcdefghijk": ID must be 1 to 24 bytes`,
			func(s *ir.Snapshot) {
				s.PortSets[0].ID = "tcp-0123456789abcdefghijk"
				s.RuleLists[1].Rules[0].Ports[1].NamedSet = s.PortSets[0].ID
			}),
		snap("dangling peer", `rule list "np-in" rule 1: unknown address set "gone"`,
			func(s *ir.Snapshot) { s.RuleLists[1].Rules[1].Peers = []string{"gone"} }),

		delta("member swap", "", ir.Delta{AddressSetChanges: []ir.AddressSetChange{
			{ID: "pods", Removed: Prefixes("10.0.0.1/32"), Added: Prefixes("10.0.0.1/32", "10.0.0.3/32")}}}),
		delta("address moves to a new endpoint", "", ir.Delta{
			RemovedEndpoints: []string{"ns/a"},
			Endpoints:        []ir.Endpoint{Endpoint("ns/c", []string{"10.0.0.1"})}}),
		delta("addresses swapped between endpoints", "", ir.Delta{Endpoints: []ir.Endpoint{
			Endpoint("ns/a", []string{"10.0.0.2"}), Endpoint("ns/b", []string{"10.0.0.1"})}}),
		delta("a removed set with the lists that use it", "", ir.Delta{
			RemovedAddressSets: []string{"net"},
			RuleLists: []ir.RuleList{
				List("anp-in", "AdminNetworkPolicy", "", "a", ir.Ingress, Rule(0, ir.Pass, Peers("pods"))),
				list("np-in", ir.Ingress, Rule(0, ir.Allow, Peers("pods")))}}),
		delta("EndPort 0 in a delta", `rule list "np-x" rule 0: port range 80-0 is empty`, ir.Delta{
			RuleLists: []ir.RuleList{list("np-x", ir.Ingress, Rule(0, ir.Allow, Ports(ir.PortMatch{Protocol: ir.TCP, Port: 80})))}}),
		delta("added member present", `address set "pods": added member 10.0.0.1/32 is present`, ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "pods", Added: Prefixes("10.0.0.1/32")}}}),
		delta("removed member absent", `address set "pods": removed member 10.0.0.9/32 is absent`, ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "pods", Removed: Prefixes("10.0.0.9/32")}}}),
		delta("member added twice", `address set "pods": member 10.0.0.9/32 added twice`, ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "pods", Added: Prefixes("10.0.0.9/32", "10.0.0.9/32")}}}),
		delta("set changed twice", `address set "pods": changed twice`, ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "pods", Added: Prefixes("10.0.0.8/32")}, {ID: "pods", Added: Prefixes("10.0.0.9/32")}}}),
		delta("overlapping prefix added", `address set "net": members 10.1.0.0/16 and 10.1.2.0/24 overlap`, ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "net", Added: Prefixes("10.1.2.0/24")}}}),
		delta("prefix added to a hosts set", `address set "pods": holds hosts only, but has 10.0.1.0/24`, ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "pods", Added: Prefixes("10.0.1.0/24")}}}),
		delta("port set member added twice", `port set "tcp-http": added member 10.0.0.2:8080 is present`, ir.Delta{
			PortSetChanges: []ir.PortSetChange{{ID: "tcp-http", Added: []netip.AddrPort{AddrPort("10.0.0.2:8080")}}}}),
		delta("set removed while a list uses it", `rule list "np-in" rule 1: address set "net" is removed but still used`, ir.Delta{
			RemovedAddressSets: []string{"net"},
			RuleLists:          []ir.RuleList{List("anp-in", "AdminNetworkPolicy", "", "a", ir.Ingress, Rule(0, ir.Pass, Peers("pods")))}}),
		delta("port set removed while a list uses it", `rule list "np-in" rule 0: port set "tcp-http" is removed but still used`, ir.Delta{
			RemovedPortSets: []string{"tcp-http"}}),
		delta("list removed while an endpoint uses it", `endpoint "ns/b": Ingress tier Admin: unknown rule list "anp-in"`, ir.Delta{
			RemovedRuleLists: []string{"anp-in"}}),
		delta("list turned to Deny under a NetworkPolicy tier", `endpoint "ns/b": Ingress tier NetworkPolicy: rule list "np-in" has rules other than Allow`, ir.Delta{
			RuleLists: []ir.RuleList{list("np-in", ir.Ingress, Rule(0, ir.Deny))}}),
		delta("list turned to the other direction", `endpoint "ns/b": Ingress tier NetworkPolicy: rule list "np-in" is for Egress`, ir.Delta{
			RuleLists: []ir.RuleList{list("np-in", ir.Egress, Rule(0, ir.Allow))}}),
		delta("endpoint takes a held address", `endpoint "ns/c": address 10.0.0.1 is also endpoint "ns/a"'s`, ir.Delta{
			Endpoints: []ir.Endpoint{Endpoint("ns/c", []string{"10.0.0.1"})}}),
		delta("endpoint upserted and removed", `endpoint "ns/a": upserted and removed in one delta`, ir.Delta{
			Endpoints: []ir.Endpoint{Endpoint("ns/a", []string{"10.0.0.1"})}, RemovedEndpoints: []string{"ns/a"}}),
		delta("list upserted and removed", `rule list "np-x": upserted and removed in one delta`, ir.Delta{
			RuleLists: []ir.RuleList{list("np-x", ir.Egress)}, RemovedRuleLists: []string{"np-x"}}),
		delta("set added and removed", `address set "x": added and removed in one delta`, ir.Delta{
			AddedAddressSets: []ir.AddressSet{AddrSet("x")}, RemovedAddressSets: []string{"x"}}),
		delta("set added twice", `address set "x": duplicate ID`, ir.Delta{
			AddedAddressSets: []ir.AddressSet{AddrSet("x"), AddrSet("x")}}),
		delta("endpoint removed twice", `endpoint "ns/a": removed twice`, ir.Delta{
			RemovedEndpoints: []string{"ns/a", "ns/a"}}),
		delta("added set exists", `address set "net": added but exists`, ir.Delta{
			AddedAddressSets: []ir.AddressSet{AddrSet("net")}}),
		delta("removed endpoint absent", `endpoint "ns/z": removed but does not exist`, ir.Delta{
			RemovedEndpoints: []string{"ns/z"}}),

		snap("endpoints with interfaces", "", func(s *ir.Snapshot) { withIfaces(s, "cali0123456789a", "veth-b") }),
		snap("interface name of 16 bytes", `endpoint "ns/a": Interface: interface name "cali0123456789ab" is 16 bytes`,
			func(s *ir.Snapshot) { withIfaces(s, "cali0123456789ab", "") }),
		snap("interface name with a slash", `endpoint "ns/b": Interface: interface name "veth/b" holds '/'`,
			func(s *ir.Snapshot) { withIfaces(s, "", "veth/b") }),
		snap("interface name with a space", `endpoint "ns/b": Interface: interface name "veth b" holds ' '`,
			func(s *ir.Snapshot) { withIfaces(s, "", "veth b") }),
		snap("interface name ..", `endpoint "ns/a": Interface: interface name ".." is not allowed`,
			func(s *ir.Snapshot) { withIfaces(s, "..", "") }),
		snap("two endpoints on one interface", `endpoint "ns/b": interface "veth0" is also endpoint "ns/a"'s`,
			func(s *ir.Snapshot) { withIfaces(s, "veth0", "veth0") }),
		ifaceDelta("endpoint takes a held interface", `endpoint "ns/c": interface "veth-a" is also endpoint "ns/a"'s`, ir.Delta{
			Endpoints: []ir.Endpoint{withIface(Endpoint("ns/c", []string{"10.0.0.3"}), "veth-a")}}),
		ifaceDelta("interfaces swapped between endpoints", "", ir.Delta{
			Endpoints: []ir.Endpoint{withIface(Endpoint("ns/a", []string{"10.0.0.1"}), "veth-b"),
				withIface(Endpoint("ns/b", []string{"10.0.0.2", "fd00::2"},
					Ingress(Tier(ir.TierAdmin, "anp-in"), Tier(ir.TierNetworkPolicy, "np-in"))), "veth-a")}}),
		ifaceDelta("interface of a removed endpoint taken", "", ir.Delta{
			RemovedEndpoints: []string{"ns/a"},
			Endpoints:        []ir.Endpoint{withIface(Endpoint("ns/c", []string{"10.0.0.3"}), "veth-a")}}),
		ifaceDelta("interface dropped from an endpoint", "", ir.Delta{
			Endpoints: []ir.Endpoint{Endpoint("ns/a", []string{"10.0.0.1"})}}),
	}
}

// withIfaces gives the base's endpoints ns/a and ns/b their interfaces.
func withIfaces(s *ir.Snapshot, a, b string) {
	s.Endpoints[0].Interface, s.Endpoints[1].Interface = a, b
}

func withIface(ep ir.Endpoint, name string) ir.Endpoint {
	ep.Interface = name
	return ep
}

// ifaceDelta is a case of a delta applied to the base with interfaces
// veth-a (ns/a) and veth-b (ns/b).
func ifaceDelta(name, want string, d ir.Delta) ContractCase {
	s := ContractBase()
	withIfaces(s, "veth-a", "veth-b")
	d.Base, d.Generation = 1, 2
	return ContractCase{Name: name, Snapshot: s, Delta: &d, Want: want}
}
