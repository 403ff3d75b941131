package backendtest

import (
	"context"
	"net/netip"
	"testing"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// ForgedDrops reads a backend's count of packets dropped by source
// validation.
type ForgedDrops func(ctx context.Context, b backend.Backend) (uint64, error)

// RunSourceValidation checks a backend's source validation
// (ir.Endpoint.Interface) with real traffic, in a lab of two nodes with
// routed veths and again with a bridge, IPv4 and IPv6. On node 0, pod a's
// egress allows UDP to pod b only; pod d (node 0) and pod c (node 1) accept
// UDP from b only; b and e are unrestricted. Then, with every endpoint's
// interface given:
//
//   - a forging b's address reaches neither d (same node) nor c (other
//     node), and an external address forged towards b (unrestricted) does
//     not arrive either;
//   - a's and b's own addresses still work, on pairs that had not talked
//     before (so ARP and IPv6 neighbour discovery run under the check);
//   - drops reports at least one dropped packet per forgery (when not nil).
//
// Then a's and e's interfaces are dropped from the IR (a small change
// through Sync) and the same forgeries arrive: the holes source validation closes,
// shown open without it, so that the first part cannot pass vacuously.
func RunSourceValidation(t *testing.T, newBackend Factory, drops ForgedDrops) {
	for _, topo := range []lab.Topology{lab.Routed, lab.Bridge} {
		t.Run(string(topo), func(t *testing.T) {
			runSourceValidation(t, newBackend, drops, topo)
		})
	}
}

type sourcePod struct {
	name string
	node int
	ips  []string
}

var sourcePods = []sourcePod{
	{"x/a", 0, []string{"10.244.0.10", "fd00::10"}},
	{"x/b", 0, []string{"10.244.0.11", "fd00::11"}},
	{"x/d", 0, []string{"10.244.0.12", "fd00::12"}},
	{"x/e", 0, []string{"10.244.0.13", "fd00::13"}},
	{"x/c", 1, []string{"10.244.1.10", "fd00::1:10"}},
}

func runSourceValidation(t *testing.T, newBackend Factory, drops ForgedDrops, topo lab.Topology) {
	ctx := context.Background()
	NewNetNS(t, "runs a lab") // skips without root
	l, err := lab.New(ctx, lab.Config{Nodes: 2, Topology: topo})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	ifaces := map[string]string{}
	for _, p := range sourcePods {
		spec := lab.PodSpec{Name: p.name, Node: p.node}
		for _, s := range p.ips {
			spec.IPs = append(spec.IPs, netip.MustParseAddr(s))
		}
		if err := l.AddPod(ctx, spec); err != nil {
			t.Fatalf("lab pod %s: %v", p.name, err)
		}
		ifaces[p.name] = l.HostLink(p.name)
		if ifaces[p.name] == "" {
			t.Fatalf("lab: no host link for %s", p.name)
		}
	}
	var bes [2]backend.Backend
	for node := range bes {
		ns, err := l.NodeNS(node)
		if err != nil {
			t.Fatal(err)
		}
		if bes[node], err = newBackend(t, node, ns); err != nil {
			t.Fatalf("backend of node %d: %v", node, err)
		}
		b := bes[node]
		t.Cleanup(func() {
			if err := b.Cleanup(context.Background()); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			if c, ok := b.(interface{ Close() error }); ok {
				_ = c.Close()
			}
		})
	}
	gen := uint64(0)
	sync := func(guarded map[string]bool) {
		t.Helper()
		gen++
		for node, b := range bes {
			snap := sourceSnapshot(node, gen, ifaces, guarded)
			if err := snap.Validate(); err != nil {
				t.Fatalf("snapshot of node %d: %v", node, err)
			}
			if _, err := b.Sync(ctx, snap); err != nil {
				t.Fatalf("Sync of node %d: %v", node, err)
			}
		}
	}
	type forgery struct {
		src, from, dst string
		port           uint16
		why            string
	}
	forgeries := []forgery{
		{"x/a", "10.244.0.11", "10.244.0.12", 7001, "a as b to d (same node): skips a's egress, passes d's ingress"},
		{"x/a", "fd00::11", "fd00::12", 7001, "the same, IPv6 (1)"},
		{"x/a", "10.244.0.11", "10.244.1.10", 7002, "a as b to c (other node)"},
		{"x/a", "fd00::11", "fd00::1:10", 7002, "the same, IPv6 (2)"},
		{"x/a", "203.0.113.9", "10.244.0.11", 7003, "a as an external host to b"},
		{"x/e", "2001:db8::9", "fd00::11", 7003, "e as an external host to b, IPv6"},
	}
	own := []forgery{
		{"x/a", "10.244.0.10", "10.244.0.11", 7004, "a's own address to b (a's egress allows b)"},
		{"x/a", "fd00::10", "fd00::11", 7004, "a's own address to b, IPv6 (a's egress is isolated)"},
		{"x/e", "fd00::13", "fd00::11", 7008, "e's own address to b, IPv6"},
		{"x/b", "10.244.0.11", "10.244.0.12", 7005, "b's own address to d (d admits b)"},
		{"x/b", "fd00::11", "fd00::12", 7005, "the same, IPv6 (4)"},
		{"x/b", "10.244.0.11", "10.244.1.10", 7006, "b's own address to c on the other node"},
		{"x/b", "fd00::11", "fd00::1:10", 7006, "the same, IPv6 (5)"},
	}
	try := func(f forgery) bool {
		t.Helper()
		arrived, err := l.Forge(ctx, lab.Forgery{Src: f.src, From: netip.MustParseAddr(f.from), Dst: netip.MustParseAddr(f.dst), Port: f.port})
		if err != nil {
			t.Fatalf("%s: %v", f.why, err)
		}
		return arrived
	}
	dropped := func() uint64 {
		t.Helper()
		if drops == nil {
			return 0
		}
		var n uint64
		for _, b := range bes {
			c, err := drops(ctx, b)
			if err != nil {
				t.Fatalf("reading the drop counter: %v", err)
			}
			n += c
		}
		return n
	}

	all := map[string]bool{"x/a": true, "x/b": true, "x/c": true, "x/d": true, "x/e": true}
	sync(all)
	for _, f := range own {
		if !try(f) {
			t.Errorf("with source validation, %s: nothing arrived", f.why)
		}
	}
	before := dropped()
	for _, f := range forgeries {
		if try(f) {
			t.Errorf("with source validation, %s: it arrived", f.why)
		}
	}
	if drops != nil {
		if n := dropped() - before; n < uint64(len(forgeries)) {
			t.Errorf("the drop counter rose by %d for %d forgeries", n, len(forgeries))
		}
	}

	// Without a's and e's interfaces, their forgeries go through: the
	// checks above were not vacuous, and one endpoint's change leaves the
	// others guarded.
	sync(map[string]bool{"x/b": true, "x/c": true, "x/d": true})
	for _, f := range forgeries {
		if !try(f) {
			t.Errorf("without source validation of %s, %s: nothing arrived (the lab or the policy, not the check, stops it)", f.src, f.why)
		}
	}
	if try(forgery{"x/b", "203.0.113.7", "10.244.0.10", 7007, "b as an external host to a"}) {
		t.Errorf("b, still guarded, forged an external address towards a, and it arrived")
	}
}

// sourceSnapshot is node's IR: its pods as endpoints, with their host
// links as interfaces when guarded.
func sourceSnapshot(node int, gen uint64, ifaces map[string]string, guarded map[string]bool) *ir.Snapshot {
	s := &ir.Snapshot{
		Generation:  gen,
		AddressSets: []ir.AddressSet{irtest.HostSet("pod-b", "10.244.0.11/32", "fd00::11/128")},
		RuleLists: []ir.RuleList{
			irtest.List("a-out", "NetworkPolicy", "x", "a", ir.Egress,
				irtest.Rule(0, ir.Allow, irtest.Peers("pod-b"), irtest.Ports(irtest.Port(ir.UDP, 0, 0)))),
			irtest.List("from-b", "NetworkPolicy", "x", "from-b", ir.Ingress,
				irtest.Rule(0, ir.Allow, irtest.Peers("pod-b"), irtest.Ports(irtest.Port(ir.UDP, 0, 0)))),
		},
	}
	for _, p := range sourcePods {
		if p.node != node {
			continue
		}
		var tweak func(*ir.Endpoint)
		switch p.name {
		case "x/a":
			tweak = irtest.Egress(irtest.Tier(ir.TierNetworkPolicy, "a-out"))
		case "x/c", "x/d":
			tweak = irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "from-b"))
		default:
			tweak = func(*ir.Endpoint) {}
		}
		ep := irtest.Endpoint(p.name, p.ips, tweak)
		if guarded[p.name] {
			ep.Interface = ifaces[p.name]
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	s.Sort()
	return s
}
