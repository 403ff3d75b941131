package nftables

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/policy/ir"
)

// newNetNS creates an anonymous network namespace and closes it when the test
// ends (the kernel removes it with its last reference). It skips the test
// when not root or when namespaces cannot be created.
func newNetNS(tb testing.TB) netns.NsHandle {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates a network namespace and programs nftables in it")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		tb.Skipf("cannot read the current network namespace: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		tb.Skipf("cannot create a network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// This thread stays in the new namespace: keep it locked so the
		// runtime discards it when the goroutine ends.
		runtime.LockOSThread()
		tb.Fatalf("cannot return to the original namespace: %v", err)
	}
	tb.Cleanup(func() { ns.Close() })
	return ns
}

// inNS runs fn on a thread switched to ns.
func inNS(tb testing.TB, ns netns.NsHandle, fn func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			tb.Errorf("get namespace: %v", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			tb.Errorf("enter namespace: %v", err)
			return
		}
		fn()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	<-done
}

// newTestBackend returns a Backend on a fresh namespace.
func newTestBackend(tb testing.TB) (*Backend, netns.NsHandle) {
	tb.Helper()
	ns := newNetNS(tb)
	b, err := New(Config{NetNS: int(ns), TableName: "palisade-test"})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = b.Close() })
	return b, ns
}

// reopen returns a second Backend on the same namespace and table (a
// restart).
func reopen(tb testing.TB, ns netns.NsHandle) *Backend {
	tb.Helper()
	b, err := New(Config{NetNS: int(ns), TableName: "palisade-test"})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// kernelModel reads the table back.
func kernelModel(tb testing.TB, b *Backend) *kernelState {
	tb.Helper()
	ks, err := b.c.read(b.cfg.TableName)
	require.NoError(tb, err)
	return ks
}

// requireKernelEquals checks that the kernel holds exactly what a fresh build
// of snap describes.
func requireKernelEquals(tb testing.TB, b *Backend, snap *ir.Snapshot) {
	tb.Helper()
	want, err := build(snap, b.cfg.Priority)
	require.NoError(tb, err)
	have := kernelModel(tb, b)
	require.Empty(tb, diffModels(have, want.m, nil), "kernel state differs from the snapshot")
}

func mustSync(tb testing.TB, b *Backend, snap *ir.Snapshot) (changes int, repairs []string) {
	tb.Helper()
	rep, err := b.Sync(context.Background(), snap)
	require.NoError(tb, err)
	require.Equal(tb, snap.Generation, rep.Generation)
	return rep.Changes, rep.Repairs
}

// --- IR builders ---

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

// hostSet is an address set of pod addresses (Hosts).
func hostSet(id string, members ...string) ir.AddressSet {
	s := addrSet(id, members...)
	s.Hosts = true
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

// testSnapshot exercises every kind of object: sets of pod addresses (hash
// sets), adjacent and open intervals, ipBlock-like prefixes with a hole, named ports, ranges, TCP/UDP/SCTP, an
// Admin tier with Allow/Deny/Pass over two lists, a NetworkPolicy tier and
// a Baseline tier, dual-stack endpoints and an unrestricted one.
func testSnapshot() *ir.Snapshot {
	s := &ir.Snapshot{
		Generation: 1,
		AddressSets: []ir.AddressSet{
			addrSet("all", "0.0.0.0/0", "::/0"),
			{ID: "block-ext", Description: "192.168.0.0/16 except 192.168.1.0/24", Members: ir.Subtract(pfx("192.168.0.0/16"), []netip.Prefix{pfx("192.168.1.0/24")})},
			hostSet("frontend", "10.0.0.2/32", "10.0.0.3/32", "fd00::2/128"),
			hostSet("monitoring", "10.0.0.20/32", "fd00::20/128"),
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
	return s
}
