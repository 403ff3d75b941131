package iptables

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/policy/ir"
)

// newNetNS creates an anonymous network namespace, closed when the test
// ends. It skips the test when not root or when namespaces cannot be made.
func newNetNS(tb testing.TB) netns.NsHandle {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates a network namespace and programs iptables and ipsets in it")
	}
	type result struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c <- result{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if serr := netns.Set(orig); serr != nil {
			c <- result{err: serr} // the thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		c <- result{ns, err}
	}()
	r := <-c
	if r.err != nil {
		tb.Skipf("cannot create a network namespace: %v", r.err)
	}
	tb.Cleanup(func() { r.ns.Close() })
	return r.ns
}

var modes = []Mode{ModeNFT, ModeLegacy}

// newTestBackend returns a Backend of the given mode on a fresh namespace.
func newTestBackend(tb testing.TB, mode Mode) (*Backend, netns.NsHandle) {
	tb.Helper()
	ns := newNetNS(tb)
	return reopen(tb, ns, mode), ns
}

func reopen(tb testing.TB, ns netns.NsHandle, mode Mode) *Backend {
	tb.Helper()
	b, err := New(Config{NetNS: int(ns), Mode: mode})
	require.NoError(tb, err)
	tb.Cleanup(func() { b.Close() })
	return b
}

// sh runs a command inside ns and returns its output.
func sh(tb testing.TB, ns netns.NsHandle, name string, args ...string) string {
	tb.Helper()
	out, err := (&nsRunner{ns: ns}).Run(context.Background(), name, args, nil)
	require.NoError(tb, err, "%s %s", name, strings.Join(args, " "))
	return string(out)
}

func mustSync(tb testing.TB, b *Backend, snap *ir.Snapshot) (changes int, repairs []string) {
	tb.Helper()
	rep, err := b.Sync(context.Background(), snap)
	require.NoError(tb, err)
	require.Equal(tb, snap.Generation, rep.Generation)
	return rep.Changes, rep.Repairs
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
func ap(s string) netip.AddrPort {
	return netip.MustParseAddrPort(s)
}

func addrSet(id string, members ...string) ir.AddressSet {
	s := ir.AddressSet{ID: id, Description: "test set " + id}
	for _, m := range members {
		s.Members = append(s.Members, pfx(m))
	}
	return s
}

func rule(idx int, action ir.Action, tweaks ...func(*ir.Rule)) ir.Rule {
	r := ir.Rule{Index: idx, Action: action, AllPeers: true, AllPorts: true}
	for _, t := range tweaks {
		t(&r)
	}
	return r
}

func peers(ids ...string) func(*ir.Rule) {
	return func(r *ir.Rule) { r.AllPeers, r.Peers = false, ids }
}

func ports(pms ...ir.PortMatch) func(*ir.Rule) {
	return func(r *ir.Rule) { r.AllPorts, r.Ports = false, pms }
}

func port(p ir.Protocol, lo, hi uint16) ir.PortMatch {
	return ir.PortMatch{Protocol: p, Port: lo, EndPort: hi}
}

func named(p ir.Protocol, set string) ir.PortMatch { return ir.PortMatch{Protocol: p, NamedSet: set} }

func list(id, kind, ns, name string, dir ir.Direction, rules ...ir.Rule) ir.RuleList {
	return ir.RuleList{ID: id, Origin: ir.Origin{Kind: kind, Namespace: ns, Name: name}, Direction: dir, Rules: rules}
}

func endpoint(id string, ips []string, tweaks ...func(*ir.Endpoint)) ir.Endpoint {
	ep := ir.Endpoint{ID: id}
	for _, ip := range ips {
		ep.IPs = append(ep.IPs, addr(ip))
	}
	for _, t := range tweaks {
		t(&ep)
	}
	return ep
}

func ingress(tiers ...ir.Tier) func(*ir.Endpoint) {
	return func(e *ir.Endpoint) { e.Ingress = tiers }
}

func egress(tiers ...ir.Tier) func(*ir.Endpoint) {
	return func(e *ir.Endpoint) { e.Egress = tiers }
}

func tier(kind ir.TierKind, lists ...string) ir.Tier { return ir.Tier{Kind: kind, RuleLists: lists} }

// testSnapshot exercises every kind of object: /0 prefixes, an ipBlock with
// a hole, named ports, ranges, TCP/UDP/SCTP, an Admin tier with
// Allow/Deny/Pass over two lists, a NetworkPolicy tier and a Baseline tier,
// dual-stack endpoints and an unrestricted one.
func testSnapshot() *ir.Snapshot {
	return &ir.Snapshot{
		Generation: 1,
		AddressSets: []ir.AddressSet{
			addrSet("all", "0.0.0.0/0", "::/0"),
			{ID: "block-ext", Description: "192.168.0.0/16 except 192.168.1.0/24", Members: ir.Subtract(pfx("192.168.0.0/16"), []netip.Prefix{pfx("192.168.1.0/24")})},
			addrSet("frontend", "10.0.0.2/32", "10.0.0.3/32", "fd00::2/128"),
			addrSet("monitoring", "10.0.0.20/32", "fd00::20/128"),
		},
		PortSets: []ir.PortSet{
			{ID: "http-tcp", Protocol: ir.TCP, PortName: "http", Members: []netip.AddrPort{ap("10.0.0.10:8080"), ap("[fd00::10]:8080")}},
		},
		RuleLists: []ir.RuleList{
			list("anp/allow-mon/ingress", "AdminNetworkPolicy", "", "allow-mon", ir.Ingress,
				rule(0, ir.Allow, peers("monitoring"), ports(port(ir.TCP, 9090, 9090)))),
			list("anp/pass-front/ingress", "AdminNetworkPolicy", "", "pass-front", ir.Ingress,
				rule(0, ir.Pass, peers("frontend")),
				rule(1, ir.Deny, ports(port(ir.TCP, 5433, 5433)))),
			list("banp/default/ingress", "BaselineAdminNetworkPolicy", "", "default", ir.Ingress,
				rule(0, ir.Deny, peers("block-ext"))),
			list("np/default/db/egress", "NetworkPolicy", "default", "db", ir.Egress,
				rule(0, ir.Allow, peers("all"), ports(port(ir.UDP, 53, 53)))),
			list("np/default/db/ingress", "NetworkPolicy", "default", "db", ir.Ingress,
				rule(0, ir.Allow, peers("frontend"), ports(port(ir.TCP, 5432, 5432), port(ir.TCP, 6000, 6010))),
				rule(1, ir.Allow, peers("block-ext", "frontend"), ports(port(ir.UDP, 0, 0), port(ir.SCTP, 7000, 7000))),
				rule(2, ir.Allow, ports(named(ir.TCP, "http-tcp")))),
		},
		Endpoints: []ir.Endpoint{
			endpoint("default/db", []string{"10.0.0.10", "fd00::10"},
				ingress(tier(ir.TierAdmin, "anp/pass-front/ingress", "anp/allow-mon/ingress"), tier(ir.TierNetworkPolicy, "np/default/db/ingress"), tier(ir.TierBaseline, "banp/default/ingress")),
				egress(tier(ir.TierNetworkPolicy, "np/default/db/egress"))),
			endpoint("default/free", []string{"10.0.0.3"}),
			endpoint("default/web", []string{"10.0.0.2", "fd00::2"},
				ingress(tier(ir.TierBaseline, "banp/default/ingress"))),
		},
	}
}

// deltaSteps change testSnapshot step by step: a label change (set
// members), a new endpoint with an existing profile, a policy change, a new
// profile, removals.
func deltaSteps() []ir.Delta {
	return []ir.Delta{
		{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{{ID: "frontend", Added: []netip.Prefix{pfx("10.0.0.4/32")}, Removed: []netip.Prefix{pfx("10.0.0.3/32")}}}},
		{Base: 2, Generation: 3, Endpoints: []ir.Endpoint{endpoint("default/web2", []string{"10.0.0.5"}, ingress(tier(ir.TierBaseline, "banp/default/ingress")))}},
		{Base: 3, Generation: 4, RuleLists: []ir.RuleList{list("np/default/db/egress", "NetworkPolicy", "default", "db", ir.Egress,
			rule(0, ir.Allow, peers("all"), ports(port(ir.UDP, 53, 53), port(ir.TCP, 53, 53))))}},
		{Base: 4, Generation: 5,
			AddedAddressSets: []ir.AddressSet{addrSet("ext", "203.0.113.0/24")},
			AddedPortSets:    []ir.PortSet{{ID: "dns-udp", Protocol: ir.UDP, PortName: "dns", Members: []netip.AddrPort{ap("10.0.0.2:53")}}},
			RuleLists: []ir.RuleList{list("np/default/web/ingress", "NetworkPolicy", "default", "web", ir.Ingress,
				rule(0, ir.Allow, peers("ext"), ports(named(ir.UDP, "dns-udp"))))},
			Endpoints: []ir.Endpoint{endpoint("default/web", []string{"10.0.0.2", "fd00::2"},
				ingress(tier(ir.TierNetworkPolicy, "np/default/web/ingress"), tier(ir.TierBaseline, "banp/default/ingress")))},
			PortSetChanges: []ir.PortSetChange{{ID: "http-tcp", Removed: []netip.AddrPort{ap("[fd00::10]:8080")}}},
		},
		{Base: 5, Generation: 6,
			RemovedEndpoints:   []string{"default/web", "default/web2"},
			RemovedRuleLists:   []string{"np/default/web/ingress"},
			RemovedAddressSets: []string{"ext"},
			RemovedPortSets:    []string{"dns-udp"},
		},
	}
}
