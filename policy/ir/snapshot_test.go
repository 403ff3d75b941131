package ir_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

func addrSet(id string, members ...string) ir.AddressSet {
	return irtest.DescribedSet(id, "set "+id, members...)
}

// ruleList is list id of NetworkPolicy ns/<id>.
func ruleList(id string, dir ir.Direction, rules ...ir.Rule) ir.RuleList {
	return irtest.List(id, "NetworkPolicy", "ns", id, dir, rules...)
}

func tcp(port uint16) ir.PortMatch { return irtest.Port(ir.TCP, port, port) }

// baseSnapshot is a small valid snapshot at generation 1: pods a and b, b's
// ingress allows TCP/80 and the named port "http" from a's set.
func baseSnapshot() *ir.Snapshot {
	return &ir.Snapshot{
		Generation: 1,
		AddressSets: []ir.AddressSet{
			addrSet("pods-a", "10.0.0.1/32", "fd00::1/128"),
			addrSet("pods-all", "10.0.0.1/32", "10.0.0.2/32"),
		},
		PortSets: []ir.PortSet{irtest.PortSet("tcp-http", ir.TCP, "http", "10.0.0.2:8080")},
		RuleLists: []ir.RuleList{
			ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(80), irtest.Named(ir.TCP, "tcp-http")))),
			ruleList("np-b-out", ir.Egress, irtest.BareRule(0, ir.Allow, irtest.Peers("pods-all"), irtest.AllPorts)),
		},
		Endpoints: []ir.Endpoint{
			irtest.Endpoint("ns/a", []string{"10.0.0.1", "fd00::1"}),
			irtest.Endpoint("ns/b", []string{"10.0.0.2"}, irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np-b-in")), irtest.Egress(irtest.Tier(ir.TierNetworkPolicy, "np-b-out"))),
		},
	}
}

// irCmp compares IR values; netip types are compared by value.
var irCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func TestValidate(t *testing.T) {
	require.NoError(t, baseSnapshot().Validate())
	require.NoError(t, (&ir.Snapshot{}).Validate(), "the empty snapshot is valid")

	tests := []struct {
		name  string
		tweak func(s *ir.Snapshot)
		want  []string // substrings of the error
	}{
		{
			name:  "duplicate address set",
			tweak: func(s *ir.Snapshot) { s.AddressSets = append(s.AddressSets, addrSet("pods-a")) },
			want:  []string{`address set "pods-a": duplicate ID`},
		},
		{
			name:  "duplicate port set",
			tweak: func(s *ir.Snapshot) { s.PortSets = append(s.PortSets, irtest.PortSet("tcp-http", ir.TCP, "http")) },
			want:  []string{`port set "tcp-http": duplicate ID`},
		},
		{
			name:  "duplicate rule list",
			tweak: func(s *ir.Snapshot) { s.RuleLists = append(s.RuleLists, ruleList("np-b-in", ir.Ingress)) },
			want:  []string{`rule list "np-b-in": duplicate ID`},
		},
		{
			name:  "duplicate endpoint",
			tweak: func(s *ir.Snapshot) { s.Endpoints = append(s.Endpoints, irtest.Endpoint("ns/a", []string{"10.0.0.9"})) },
			want:  []string{`endpoint "ns/a": duplicate ID`},
		},
		{
			name: "address shared by two endpoints",
			tweak: func(s *ir.Snapshot) {
				s.Endpoints = append(s.Endpoints, irtest.Endpoint("ns/z", []string{s.Endpoints[0].IPs[0].String()}))
			},
			want: []string{`endpoint "ns/z": address ` + baseSnapshot().Endpoints[0].IPs[0].String() + ` is also endpoint "` + baseSnapshot().Endpoints[0].ID + `"'s`},
		},
		{
			name:  "overlapping members",
			tweak: func(s *ir.Snapshot) { s.AddressSets[1].Members = irtest.Prefixes("10.0.0.2/32", "10.0.0.0/24") },
			want:  []string{`address set "pods-all": members 10.0.0.0/24 and 10.0.0.2/32 overlap`},
		},
		{
			name:  "identical members",
			tweak: func(s *ir.Snapshot) { s.AddressSets[1].Members = irtest.Prefixes("fd00::1/128", "fd00::1/128") },
			want:  []string{`address set "pods-all": members fd00::1/128 and fd00::1/128 overlap`},
		},
		{
			name:  "rule names a missing address set",
			tweak: func(s *ir.Snapshot) { s.RuleLists[0].Rules[0].Peers = []string{"pods-a", "nope"} },
			want:  []string{`rule list "np-b-in" rule 0: unknown address set "nope"`},
		},
		{
			name:  "rule names a missing port set",
			tweak: func(s *ir.Snapshot) { s.RuleLists[0].Rules[0].Ports[1].NamedSet = "nope" },
			want:  []string{`rule list "np-b-in" rule 0: unknown port set "nope"`},
		},
		{
			name:  "named port of the wrong protocol",
			tweak: func(s *ir.Snapshot) { s.RuleLists[0].Rules[0].Ports[1].Protocol = ir.UDP },
			want:  []string{`rule list "np-b-in" rule 0: port set "tcp-http" is TCP, match is UDP`},
		},
		{
			name: "empty port range",
			tweak: func(s *ir.Snapshot) {
				s.RuleLists[0].Rules[0].Ports[0] = ir.PortMatch{Protocol: ir.TCP, Port: 90, EndPort: 80}
			},
			want: []string{`rule list "np-b-in" rule 0: port range 90-80 is empty`},
		},
		{
			name:  "unknown action",
			tweak: func(s *ir.Snapshot) { s.RuleLists[1].Rules[0].Action = "Log" },
			want:  []string{`rule list "np-b-out" rule 0: unknown action "Log"`},
		},
		{
			name:  "endpoint names a missing rule list",
			tweak: func(s *ir.Snapshot) { s.Endpoints[0].Egress = []ir.Tier{irtest.Tier(ir.TierAdmin, "gone")} },
			want:  []string{`endpoint "ns/a": Egress tier Admin: unknown rule list "gone"`},
		},
		{
			name: "endpoint uses a list of the other direction",
			tweak: func(s *ir.Snapshot) {
				s.Endpoints[1].Ingress = []ir.Tier{irtest.Tier(ir.TierNetworkPolicy, "np-b-out")}
			},
			want: []string{`endpoint "ns/b": Ingress tier NetworkPolicy: rule list "np-b-out" is for Egress`},
		},
		{
			name: "every problem is reported",
			tweak: func(s *ir.Snapshot) {
				s.RuleLists[0].Rules[0].Peers = []string{"x1"}
				s.RuleLists[1].Rules[0].Peers = []string{"x2"}
				s.Endpoints[0].Ingress = []ir.Tier{irtest.Tier(ir.TierBaseline, "x3")}
			},
			want: []string{`"x1"`, `"x2"`, `"x3"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSnapshot()
			tc.tweak(s)
			err := s.Validate()
			require.ErrorIs(t, err, ir.ErrInvalid)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		delta ir.Delta
		want  func(s *ir.Snapshot) // the expected result, from the base snapshot
	}{
		{
			name:  "empty delta advances the generation",
			delta: ir.Delta{Base: 1, Generation: 2},
			want:  func(s *ir.Snapshot) { s.Generation = 2 },
		},
		{
			name: "add a set, a list that uses it, an endpoint that uses the list",
			delta: ir.Delta{
				Base: 1, Generation: 5,
				AddedAddressSets: []ir.AddressSet{addrSet("net-ext", "192.0.2.0/24")},
				AddedPortSets:    []ir.PortSet{irtest.PortSet("sctp-sig", ir.SCTP, "sig", "10.0.0.3:3868")},
				RuleLists:        []ir.RuleList{ruleList("np-c-in", ir.Ingress, irtest.BareRule(2, ir.Allow, irtest.Peers("net-ext"), irtest.Ports(irtest.Named(ir.SCTP, "sctp-sig"))))},
				Endpoints:        []ir.Endpoint{irtest.Endpoint("ns/c", []string{"10.0.0.3"}, irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np-c-in")))},
			},
			want: func(s *ir.Snapshot) {
				s.Generation = 5
				s.AddressSets = append([]ir.AddressSet{addrSet("net-ext", "192.0.2.0/24")}, s.AddressSets...)
				s.PortSets = append([]ir.PortSet{irtest.PortSet("sctp-sig", ir.SCTP, "sig", "10.0.0.3:3868")}, s.PortSets...)
				s.RuleLists = append(s.RuleLists, ruleList("np-c-in", ir.Ingress, irtest.BareRule(2, ir.Allow, irtest.Peers("net-ext"), irtest.Ports(irtest.Named(ir.SCTP, "sctp-sig")))))
				s.Endpoints = append(s.Endpoints, irtest.Endpoint("ns/c", []string{"10.0.0.3"}, irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np-c-in"))))
			},
		},
		{
			name: "change members",
			delta: ir.Delta{
				Base: 1, Generation: 2,
				AddressSetChanges: []ir.AddressSetChange{{ID: "pods-all", Added: irtest.Prefixes("10.0.0.3/32", "fd00::3/128"), Removed: irtest.Prefixes("10.0.0.1/32")}},
				PortSetChanges:    []ir.PortSetChange{{ID: "tcp-http", Added: []netip.AddrPort{netip.MustParseAddrPort("[fd00::2]:8080")}}},
			},
			want: func(s *ir.Snapshot) {
				s.Generation = 2
				s.AddressSets[1].Members = irtest.Prefixes("10.0.0.2/32", "10.0.0.3/32", "fd00::3/128")
				s.PortSets[0] = irtest.PortSet("tcp-http", ir.TCP, "http", "10.0.0.2:8080", "[fd00::2]:8080")
			},
		},
		{
			name: "a set's members move in one delta without overlapping",
			delta: ir.Delta{
				Base: 1, Generation: 2,
				AddressSetChanges: []ir.AddressSetChange{{ID: "pods-all", Added: irtest.Prefixes("10.0.0.0/24"), Removed: irtest.Prefixes("10.0.0.1/32", "10.0.0.2/32")}},
			},
			want: func(s *ir.Snapshot) {
				s.Generation = 2
				s.AddressSets[1].Members = irtest.Prefixes("10.0.0.0/24")
			},
		},
		{
			name: "remove in dependency order: endpoint, list, set",
			delta: ir.Delta{
				Base: 1, Generation: 2,
				RemovedEndpoints:   []string{"ns/b"},
				RemovedRuleLists:   []string{"np-b-in", "np-b-out"},
				RemovedAddressSets: []string{"pods-a", "pods-all"},
				RemovedPortSets:    []string{"tcp-http"},
			},
			want: func(s *ir.Snapshot) {
				*s = ir.Snapshot{Generation: 2, Endpoints: s.Endpoints[:1]}
			},
		},
		{
			name: "replace a rule list and an endpoint",
			delta: ir.Delta{
				Base: 1, Generation: 2,
				RuleLists: []ir.RuleList{ruleList("np-b-in", ir.Ingress)},
				Endpoints: []ir.Endpoint{irtest.Endpoint("ns/a", []string{"10.0.0.1"}, irtest.Egress(irtest.Tier(ir.TierNetworkPolicy, "np-b-out")))},
			},
			want: func(s *ir.Snapshot) {
				s.Generation = 2
				s.RuleLists[0].Rules = nil
				s.Endpoints[0] = irtest.Endpoint("ns/a", []string{"10.0.0.1"}, irtest.Egress(irtest.Tier(ir.TierNetworkPolicy, "np-b-out")))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSnapshot()
			require.NoError(t, s.Apply(&tc.delta))
			want := baseSnapshot()
			tc.want(want)
			if diff := cmp.Diff(want, s, irCmp); diff != "" {
				t.Errorf("after Apply (-want +got):\n%s", diff)
			}
			assert.NoError(t, s.Validate())
		})
	}
}

// TestApplyRejects checks that Apply refuses deltas that do not fit and
// leaves the snapshot exactly as it was.
func TestApplyRejects(t *testing.T) {
	tests := []struct {
		name  string
		delta ir.Delta
		want  string
		kind  error // ir.ErrInvalid unless set
	}{
		{name: "wrong base", delta: ir.Delta{Base: 0, Generation: 2}, want: "delta 0→2 does not apply to generation 1", kind: ir.ErrStaleBase},
		{name: "base ahead", delta: ir.Delta{Base: 2, Generation: 3}, want: "delta 2→3 does not apply to generation 1", kind: ir.ErrStaleBase},
		{
			name:  "adding an existing address set",
			delta: ir.Delta{Base: 1, Generation: 2, AddedAddressSets: []ir.AddressSet{addrSet("pods-a")}},
			want:  `address set "pods-a": added but exists`,
		},
		{
			name:  "adding an address set twice",
			delta: ir.Delta{Base: 1, Generation: 2, AddedAddressSets: []ir.AddressSet{addrSet("x"), addrSet("x")}},
			want:  `address set "x": duplicate ID`,
		},
		{
			name:  "adding an existing port set",
			delta: ir.Delta{Base: 1, Generation: 2, AddedPortSets: []ir.PortSet{irtest.PortSet("tcp-http", ir.TCP, "http")}},
			want:  `port set "tcp-http": added but exists`,
		},
		{
			name:  "changing a missing address set",
			delta: ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{{ID: "nope", Added: irtest.Prefixes("10.9.0.0/16")}}},
			want:  `address set "nope": changed but does not exist`,
		},
		{
			name:  "changing a missing port set",
			delta: ir.Delta{Base: 1, Generation: 2, PortSetChanges: []ir.PortSetChange{{ID: "nope"}}},
			want:  `port set "nope": changed but does not exist`,
		},
		{
			name:  "removing a missing address set",
			delta: ir.Delta{Base: 1, Generation: 2, RemovedAddressSets: []string{"nope"}},
			want:  `address set "nope": removed but does not exist`,
		},
		{
			name:  "removing a missing port set",
			delta: ir.Delta{Base: 1, Generation: 2, RemovedPortSets: []string{"nope"}},
			want:  `port set "nope": removed but does not exist`,
		},
		{
			name:  "removing a missing rule list",
			delta: ir.Delta{Base: 1, Generation: 2, RemovedRuleLists: []string{"nope"}},
			want:  `rule list "nope": removed but does not exist`,
		},
		{
			name:  "removing a missing endpoint",
			delta: ir.Delta{Base: 1, Generation: 2, RemovedEndpoints: []string{"ns/nope"}},
			want:  `endpoint "ns/nope": removed but does not exist`,
		},
		{
			name:  "removing an absent member",
			delta: ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{{ID: "pods-a", Removed: irtest.Prefixes("10.0.0.9/32")}}},
			want:  `address set "pods-a": removed member 10.0.0.9/32 is absent`,
		},
		{
			name:  "adding a present member",
			delta: ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{{ID: "pods-a", Added: irtest.Prefixes("fd00::1/128")}}},
			want:  `address set "pods-a": added member fd00::1/128 is present`,
		},
		{
			name:  "removing an absent port member",
			delta: ir.Delta{Base: 1, Generation: 2, PortSetChanges: []ir.PortSetChange{{ID: "tcp-http", Removed: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:80")}}}},
			want:  `port set "tcp-http": removed member 10.0.0.2:80 is absent`,
		},
		{
			name:  "adding a present port member",
			delta: ir.Delta{Base: 1, Generation: 2, PortSetChanges: []ir.PortSetChange{{ID: "tcp-http", Added: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:8080")}}}},
			want:  `port set "tcp-http": added member 10.0.0.2:8080 is present`,
		},
		{
			name:  "removing an address set still used by a rule",
			delta: ir.Delta{Base: 1, Generation: 2, RemovedAddressSets: []string{"pods-a"}},
			want:  `rule list "np-b-in" rule 0: address set "pods-a" is removed but still used`,
		},
		{
			name:  "removing a port set still used by a rule",
			delta: ir.Delta{Base: 1, Generation: 2, RemovedPortSets: []string{"tcp-http"}},
			want:  `rule list "np-b-in" rule 0: port set "tcp-http" is removed but still used`,
		},
		{
			name:  "removing a rule list still used by an endpoint",
			delta: ir.Delta{Base: 1, Generation: 2, RemovedRuleLists: []string{"np-b-out"}},
			want:  `endpoint "ns/b": Egress tier NetworkPolicy: unknown rule list "np-b-out"`,
		},
		{
			name:  "endpoint naming a missing rule list",
			delta: ir.Delta{Base: 1, Generation: 2, Endpoints: []ir.Endpoint{irtest.Endpoint("ns/c", []string{"10.0.0.3"}, irtest.Ingress(irtest.Tier(ir.TierAdmin, "anp-x")))}},
			want:  `endpoint "ns/c": Ingress tier Admin: unknown rule list "anp-x"`,
		},
		{
			name:  "rule naming a missing address set",
			delta: ir.Delta{Base: 1, Generation: 2, RuleLists: []ir.RuleList{ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("ghost"), irtest.AllPorts))}},
			want:  `rule list "np-b-in" rule 0: unknown address set "ghost"`,
		},
		{
			name:  "rule naming a missing port set",
			delta: ir.Delta{Base: 1, Generation: 2, RuleLists: []ir.RuleList{ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.AllPeers, irtest.Ports(irtest.Named(ir.UDP, "udp-dns"))))}},
			want:  `rule list "np-b-in" rule 0: unknown port set "udp-dns"`,
		},
		{
			name:  "named port protocol mismatch",
			delta: ir.Delta{Base: 1, Generation: 2, RuleLists: []ir.RuleList{ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.AllPeers, irtest.Ports(irtest.Named(ir.SCTP, "tcp-http"))))}},
			want:  `port set "tcp-http" is TCP, match is SCTP`,
		},
		{
			name:  "overlapping members after a change",
			delta: ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{{ID: "pods-all", Added: irtest.Prefixes("10.0.0.0/30")}}},
			want:  `address set "pods-all": members 10.0.0.0/30 and 10.0.0.1/32 overlap`,
		},
		{
			name:  "overlapping members in an added set",
			delta: ir.Delta{Base: 1, Generation: 2, AddedAddressSets: []ir.AddressSet{addrSet("net-x", "fd00::/16", "fd00:1::/32")}},
			want:  `address set "net-x": members fd00::/16 and fd00:1::/32 overlap`,
		},
		{
			name: "one bad part spoils the whole delta",
			delta: ir.Delta{
				Base: 1, Generation: 2,
				AddedAddressSets:  []ir.AddressSet{addrSet("fine", "192.0.2.0/24")},
				AddressSetChanges: []ir.AddressSetChange{{ID: "pods-all", Added: irtest.Prefixes("10.0.0.3/32")}},
				Endpoints:         []ir.Endpoint{irtest.Endpoint("ns/c", []string{"10.0.0.3"})},
				RemovedEndpoints:  []string{"ns/zzz"},
			},
			want: `endpoint "ns/zzz": removed but does not exist`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSnapshot()
			err := s.Apply(&tc.delta)
			kind := tc.kind
			if kind == nil {
				kind = ir.ErrInvalid
			}
			require.ErrorIs(t, err, kind)
			assert.ErrorContains(t, err, tc.want)
			if diff := cmp.Diff(baseSnapshot(), s, irCmp); diff != "" {
				t.Errorf("a rejected delta changed the snapshot (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyReportsEveryMisfit(t *testing.T) {
	s := baseSnapshot()
	err := s.Apply(&ir.Delta{
		Base: 1, Generation: 2,
		AddedAddressSets:   []ir.AddressSet{addrSet("pods-a")},
		RemovedRuleLists:   []string{"r-nope"},
		RemovedEndpoints:   []string{"e-nope"},
		RemovedAddressSets: []string{"s-nope"},
	})
	require.Error(t, err)
	for _, w := range []string{`"pods-a"`, `"r-nope"`, `"e-nope"`, `"s-nope"`} {
		assert.ErrorContains(t, err, w)
	}
}

// TestApplyDoesNotAlias checks that the snapshot owns what it took from the
// delta: changing the delta afterwards changes nothing.
func TestApplyDoesNotAlias(t *testing.T) {
	s := baseSnapshot()
	d := &ir.Delta{
		Base: 1, Generation: 2,
		AddedAddressSets: []ir.AddressSet{addrSet("net-ext", "192.0.2.0/24")},
		RuleLists:        []ir.RuleList{ruleList("np-c-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("net-ext"), irtest.Ports(tcp(53))))},
		Endpoints:        []ir.Endpoint{irtest.Endpoint("ns/c", []string{"10.0.0.3"}, irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np-c-in")))},
	}
	require.NoError(t, s.Apply(d))
	want := s.Clone()
	d.AddedAddressSets[0].Members[0] = netip.MustParsePrefix("0.0.0.0/0")
	d.RuleLists[0].Rules[0].Peers[0] = "changed"
	d.RuleLists[0].Rules[0].Ports[0].Port = 1
	d.Endpoints[0].IPs[0] = netip.MustParseAddr("10.9.9.9")
	d.Endpoints[0].Ingress[0].RuleLists[0] = "changed"
	if diff := cmp.Diff(want, s, irCmp); diff != "" {
		t.Errorf("changing the delta changed the snapshot (-want +got):\n%s", diff)
	}
}

func TestClone(t *testing.T) {
	s := baseSnapshot()
	c := s.Clone()
	if diff := cmp.Diff(s, c, irCmp); diff != "" {
		t.Fatalf("clone differs (-orig +clone):\n%s", diff)
	}
	c.Generation = 9
	c.AddressSets[0].Members[0] = netip.MustParsePrefix("10.9.9.9/32")
	c.PortSets[0].Members[0] = netip.MustParseAddrPort("10.9.9.9:1")
	c.RuleLists[0].Rules[0].Peers[0] = "x"
	c.RuleLists[0].Rules[0].Ports[0].Port = 1
	c.Endpoints[1].IPs[0] = netip.MustParseAddr("10.9.9.9")
	c.Endpoints[1].Ingress[0].RuleLists[0] = "x"
	c.Endpoints[1].Egress[0].Kind = ir.TierAdmin
	if diff := cmp.Diff(baseSnapshot(), s, irCmp); diff != "" {
		t.Errorf("changing the clone changed the original (-want +got):\n%s", diff)
	}
}

func TestSort(t *testing.T) {
	s := baseSnapshot()
	slices.Reverse(s.AddressSets)
	slices.Reverse(s.AddressSets[0].Members)
	slices.Reverse(s.RuleLists)
	slices.Reverse(s.Endpoints)
	s.PortSets = append(s.PortSets, irtest.PortSet("sctp-x", ir.SCTP, "x", "[fd00::1]:1", "10.0.0.1:2", "10.0.0.1:1"))
	s.Sort()
	want := baseSnapshot()
	want.PortSets = append([]ir.PortSet{irtest.PortSet("sctp-x", ir.SCTP, "x", "10.0.0.1:1", "10.0.0.1:2", "[fd00::1]:1")}, want.PortSets...)
	if diff := cmp.Diff(want, s, irCmp); diff != "" {
		t.Errorf("sorted (-want +got):\n%s", diff)
	}
}

func TestDeltaEmpty(t *testing.T) {
	assert.True(t, (&ir.Delta{Base: 3, Generation: 3}).Empty())
	for name, d := range map[string]ir.Delta{
		"added address set":  {AddedAddressSets: []ir.AddressSet{addrSet("x")}},
		"address set change": {AddressSetChanges: []ir.AddressSetChange{{ID: "x"}}},
		"removed address":    {RemovedAddressSets: []string{"x"}},
		"added port set":     {AddedPortSets: []ir.PortSet{irtest.PortSet("x", ir.TCP, "x")}},
		"port set change":    {PortSetChanges: []ir.PortSetChange{{ID: "x"}}},
		"removed port set":   {RemovedPortSets: []string{"x"}},
		"rule list":          {RuleLists: []ir.RuleList{ruleList("x", ir.Ingress)}},
		"removed rule list":  {RemovedRuleLists: []string{"x"}},
		"endpoint":           {Endpoints: []ir.Endpoint{irtest.Endpoint("x", nil)}},
		"removed endpoint":   {RemovedEndpoints: []string{"x"}},
	} {
		assert.False(t, d.Empty(), name)
	}
}

func TestEndpointTiers(t *testing.T) {
	ep := irtest.Endpoint("ns/b", nil, irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "in")), irtest.Egress(irtest.Tier(ir.TierAdmin, "out")))
	assert.Equal(t, []ir.Tier{irtest.Tier(ir.TierNetworkPolicy, "in")}, ep.Tiers(ir.Ingress))
	assert.Equal(t, []ir.Tier{irtest.Tier(ir.TierAdmin, "out")}, ep.Tiers(ir.Egress))
}
