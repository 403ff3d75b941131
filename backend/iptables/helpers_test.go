package iptables

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// newNetNS is a fresh network namespace for the test (backendtest.NewNetNS).
func newNetNS(tb testing.TB) netns.NsHandle {
	return backendtest.NewNetNS(tb, "programs iptables and ipsets")
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

// testSnapshot is irtest.Exercise with plain address sets.
func testSnapshot() *ir.Snapshot { return irtest.Exercise(false) }

// deltaSteps change testSnapshot step by step: a label change (set
// members), a new endpoint with an existing profile, a policy change, a new
// profile, removals.
func deltaSteps() []ir.Delta {
	return []ir.Delta{
		{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{{ID: "frontend", Added: []netip.Prefix{irtest.Prefix("10.0.0.4/32")}, Removed: []netip.Prefix{irtest.Prefix("10.0.0.3/32")}}}},
		{Base: 2, Generation: 3, Endpoints: []ir.Endpoint{irtest.Endpoint("default/web2", []string{"10.0.0.5"}, irtest.Ingress(irtest.Tier(ir.TierBaseline, "banp/default/ingress")))}},
		{Base: 3, Generation: 4, RuleLists: []ir.RuleList{irtest.List("np/default/db/egress", "NetworkPolicy", "default", "db", ir.Egress,
			irtest.Rule(0, ir.Allow, irtest.Peers("all"), irtest.Ports(irtest.Port(ir.UDP, 53, 53), irtest.Port(ir.TCP, 53, 53))))}},
		{Base: 4, Generation: 5,
			AddedAddressSets: []ir.AddressSet{irtest.AddrSet("ext", "203.0.113.0/24")},
			AddedPortSets:    []ir.PortSet{{ID: "dns-udp", Protocol: ir.UDP, PortName: "dns", Members: []netip.AddrPort{irtest.AddrPort("10.0.0.2:53")}}},
			RuleLists: []ir.RuleList{irtest.List("np/default/web/ingress", "NetworkPolicy", "default", "web", ir.Ingress,
				irtest.Rule(0, ir.Allow, irtest.Peers("ext"), irtest.Ports(irtest.Named(ir.UDP, "dns-udp"))))},
			Endpoints: []ir.Endpoint{irtest.Endpoint("default/web", []string{"10.0.0.2", "fd00::2"},
				irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np/default/web/ingress"), irtest.Tier(ir.TierBaseline, "banp/default/ingress")))},
			PortSetChanges: []ir.PortSetChange{{ID: "http-tcp", Removed: []netip.AddrPort{irtest.AddrPort("[fd00::10]:8080")}}},
		},
		{Base: 5, Generation: 6,
			RemovedEndpoints:   []string{"default/web", "default/web2"},
			RemovedRuleLists:   []string{"np/default/web/ingress"},
			RemovedAddressSets: []string{"ext"},
			RemovedPortSets:    []string{"dns-udp"},
		},
	}
}
