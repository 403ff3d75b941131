package memory_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

type flowCase struct {
	name string
	flow memory.Flow
	want memory.Verdict
}

func allow(egress, ingress memory.Decision) memory.Verdict {
	return memory.Verdict{Allowed: true, Egress: egress, Ingress: ingress}
}

func deny(egress, ingress memory.Decision) memory.Verdict {
	return memory.Verdict{Allowed: false, Egress: egress, Ingress: ingress}
}

const (
	adminT    = ir.TierAdmin
	npT       = ir.TierNetworkPolicy
	baselineT = ir.TierBaseline
)

// TestEvaluate traces flows through hand-built snapshots and checks the
// verdict and the decision of each end. Every case is also run through
// Explain, whose verdict must be the same.
func TestEvaluate(t *testing.T) {
	scenarios := []struct {
		name  string
		cfg   memory.Config
		snap  *ir.Snapshot
		cases []flowCase
	}{
		{
			name: "no policy",
			snap: snapshot(podA(), podB()),
			cases: []flowCase{
				{"pod to pod", flow(ipA, ipB, ir.TCP, 80), allow(noDecision("ns/a"), noDecision("ns/b"))},
				{"pod to pod v6", flow(ipA6, ipB6, ir.UDP, 53), allow(noDecision("ns/a"), noDecision("ns/b"))},
				{"outside to outside", flow(ext, "198.51.100.1", ir.TCP, 80), allow(notEnforced(), notEnforced())},
				{"outside to pod", flow(ext, ipA, ir.SCTP, 3868), allow(notEnforced(), noDecision("ns/a"))},
				{"v4-mapped addresses are their v4 address", flow("::ffff:"+ipA, "::ffff:"+ipB, ir.TCP, 80), allow(noDecision("ns/a"), noDecision("ns/b"))},
			},
		},
		{
			name: "NetworkPolicy ingress",
			snap: snapshot(setA(), setC(),
				ruleList("np-b", ir.Ingress,
					irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(80))),
					irtest.BareRule(3, ir.Allow, irtest.Peers("pods-c"), irtest.Ports(port(ir.UDP, 53)))),
				ruleList("np-b2", ir.Ingress, irtest.BareRule(1, ir.Allow, irtest.AllPeers, irtest.Ports(tcp(443)))),
				podA(), podB(irtest.Ingress(np("np-b", "np-b2"))), podC()),
			cases: []flowCase{
				{"allowed peer and port", flow(ipA, ipB, ir.TCP, 80), allow(noDecision("ns/a"), by("ns/b", npT, "np-b", 0, ir.Allow))},
				{"allowed over IPv6", flow(ipA6, ipB6, ir.TCP, 80), allow(noDecision("ns/a"), by("ns/b", npT, "np-b", 0, ir.Allow))},
				{"other port", flow(ipA, ipB, ir.TCP, 81), deny(noDecision("ns/a"), isolated("ns/b"))},
				{"other protocol", flow(ipA, ipB, ir.UDP, 80), deny(noDecision("ns/a"), isolated("ns/b"))},
				{"other peer", flow(ipC, ipB, ir.TCP, 80), deny(noDecision("ns/c"), isolated("ns/b"))},
				{"rule index is the source index", flow(ipC, ipB, ir.UDP, 53), allow(noDecision("ns/c"), by("ns/b", npT, "np-b", 3, ir.Allow))},
				{"second list of the tier", flow(ext, ipB, ir.TCP, 443), allow(notEnforced(), by("ns/b", npT, "np-b2", 1, ir.Allow))},
				{"second list, IPv6 outside", flow("2001:db8::1", ipB6, ir.TCP, 443), allow(notEnforced(), by("ns/b", npT, "np-b2", 1, ir.Allow))},
				{"ingress policy does not restrict egress", flow(ipB, ipC, ir.TCP, 9), allow(noDecision("ns/b"), noDecision("ns/c"))},
			},
		},
		{
			name: "isolation without rules",
			snap: snapshot(ruleList("np-deny-in", ir.Ingress), ruleList("np-deny-out", ir.Egress),
				podA(irtest.Ingress(np("np-deny-in")), irtest.Egress(np("np-deny-out"))), podB()),
			cases: []flowCase{
				{"into isolated pod", flow(ipB, ipA, ir.TCP, 80), deny(noDecision("ns/b"), isolated("ns/a"))},
				{"out of isolated pod", flow(ipA, ipB, ir.TCP, 80), deny(isolated("ns/a"), noDecision("ns/b"))},
				{"out of isolated pod to outside", flow(ipA6, "2001:db8::1", ir.UDP, 53), deny(isolated("ns/a"), notEnforced())},
			},
		},
		{
			name: "both ends are checked independently",
			snap: snapshot(setA(), setB(),
				ruleList("np-a-out", ir.Egress, irtest.BareRule(0, ir.Allow, irtest.Peers("pods-b"), irtest.Ports(tcp(80)))),
				ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(443)))),
				podA(irtest.Egress(np("np-a-out"))), podB(irtest.Ingress(np("np-b-in"))), podC()),
			cases: []flowCase{
				{"egress allows, ingress denies", flow(ipA, ipB, ir.TCP, 80), deny(by("ns/a", npT, "np-a-out", 0, ir.Allow), isolated("ns/b"))},
				{"ingress allows, egress denies", flow(ipA, ipB, ir.TCP, 443), deny(isolated("ns/a"), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"egress denies, destination unrestricted", flow(ipA, ipC, ir.TCP, 80), deny(isolated("ns/a"), noDecision("ns/c"))},
				{"reverse direction: b's egress and a's ingress unrestricted", flow(ipB, ipA, ir.TCP, 80), allow(noDecision("ns/b"), noDecision("ns/a"))},
			},
		},
		{
			name: "Admin egress denies, peer's Admin ingress allows",
			snap: snapshot(setA(), setB(),
				ruleList("anp-egress", ir.Egress, irtest.BareRule(0, ir.Deny, irtest.Peers("pods-b"), irtest.AllPorts)),
				ruleList("anp-ingress", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.AllPorts)),
				podA(irtest.Egress(admin("anp-egress"))), podB(irtest.Ingress(admin("anp-ingress")))),
			cases: []flowCase{
				{"denied at the source", flow(ipA, ipB, ir.TCP, 80), deny(by("ns/a", adminT, "anp-egress", 0, ir.Deny), by("ns/b", adminT, "anp-ingress", 0, ir.Allow))},
				{"reverse", flow(ipB, ipA, ir.TCP, 80), allow(noDecision("ns/b"), noDecision("ns/a"))},
			},
		},
		{
			name: "ipBlock except punches no hole in another peer",
			snap: snapshot(setA(),
				ipBlock("net-4", "0.0.0.0/0", "10.0.0.0/8"),
				ipBlock("net-6", "fd00::/16", "fd00::/64"),
				ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("net-4", "pods-a", "net-6"), irtest.Ports(tcp(80)))),
				podA(), podB(irtest.Ingress(np("np-b-in"))), podC()),
			cases: []flowCase{
				{"pod inside the except, in the pod set", flow(ipA, ipB, ir.TCP, 80), allow(noDecision("ns/a"), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"pod inside the except, not in the pod set", flow(ipC, ipB, ir.TCP, 80), deny(noDecision("ns/c"), isolated("ns/b"))},
				{"outside address inside the except", flow("10.9.9.9", ipB, ir.TCP, 80), deny(notEnforced(), isolated("ns/b"))},
				{"outside address in the block", flow(ext, ipB, ir.TCP, 80), allow(notEnforced(), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"top of the v4 space", flow("255.255.255.255", ipB, ir.TCP, 80), allow(notEnforced(), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"v6 pod inside the except, in the pod set", flow(ipA6, ipB6, ir.TCP, 80), allow(noDecision("ns/a"), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"v6 outside address inside the except", flow("fd00::99", ipB6, ir.TCP, 80), deny(notEnforced(), isolated("ns/b"))},
				{"v6 outside address in the block", flow("fd00:1::5", ipB6, ir.TCP, 80), allow(notEnforced(), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"v6 outside the block", flow("2001:db8::1", ipB6, ir.TCP, 80), deny(notEnforced(), isolated("ns/b"))},
			},
		},
		{
			name: "egress to an ipBlock, any port of a protocol",
			snap: snapshot(ipBlock("net-ext", "192.0.2.0/24", "192.0.2.128/25"),
				ruleList("np-a-out", ir.Egress, irtest.BareRule(0, ir.Allow, irtest.Peers("net-ext"), irtest.Ports(port(ir.UDP, 0)))),
				podA(irtest.Egress(np("np-a-out")))),
			cases: []flowCase{
				{"in the block", flow(ipA, ext, ir.UDP, 53), allow(by("ns/a", npT, "np-a-out", 0, ir.Allow), notEnforced())},
				{"port 0 means every port: highest", flow(ipA, ext, ir.UDP, 65535), allow(by("ns/a", npT, "np-a-out", 0, ir.Allow), notEnforced())},
				{"port 0 means every port: lowest", flow(ipA, ext, ir.UDP, 1), allow(by("ns/a", npT, "np-a-out", 0, ir.Allow), notEnforced())},
				{"port 0 is of one protocol only", flow(ipA, ext, ir.TCP, 53), deny(isolated("ns/a"), notEnforced())},
				{"in the except", flow(ipA, "192.0.2.200", ir.UDP, 53), deny(isolated("ns/a"), notEnforced())},
				{"wrong family", flow(ipA6, "2001:db8::1", ir.UDP, 53), deny(isolated("ns/a"), notEnforced())},
			},
		},
		{
			name: "port ranges, SCTP, all ports, empty matches",
			snap: snapshot(setC(),
				ruleList("np-b-in", ir.Ingress,
					irtest.BareRule(0, ir.Allow, irtest.AllPeers, irtest.Ports(irtest.Port(ir.TCP, 1000, 2000))),
					irtest.BareRule(1, ir.Allow, irtest.AllPeers, irtest.Ports(port(ir.SCTP, 3868))),
					irtest.BareRule(2, ir.Allow, irtest.Peers("pods-c"), irtest.AllPorts),
					irtest.BareRule(3, ir.Allow, irtest.AllPorts),  // no peers: matches nothing
					irtest.BareRule(4, ir.Allow, irtest.AllPeers)), // no ports: matches nothing
				podA(), podB(irtest.Ingress(np("np-b-in"))), podC()),
			cases: []flowCase{
				{"below the range", flow(ext, ipB, ir.TCP, 999), deny(notEnforced(), isolated("ns/b"))},
				{"range start", flow(ext, ipB, ir.TCP, 1000), allow(notEnforced(), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"range end", flow(ext, ipB, ir.TCP, 2000), allow(notEnforced(), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"above the range", flow(ext, ipB, ir.TCP, 2001), deny(notEnforced(), isolated("ns/b"))},
				{"range is TCP only", flow(ext, ipB, ir.UDP, 1500), deny(notEnforced(), isolated("ns/b"))},
				{"SCTP port", flow(ext, ipB, ir.SCTP, 3868), allow(notEnforced(), by("ns/b", npT, "np-b-in", 1, ir.Allow))},
				{"SCTP port over IPv6", flow("2001:db8::1", ipB6, ir.SCTP, 3868), allow(notEnforced(), by("ns/b", npT, "np-b-in", 1, ir.Allow))},
				{"SCTP, other port", flow(ext, ipB, ir.SCTP, 3869), deny(notEnforced(), isolated("ns/b"))},
				{"SCTP number over TCP", flow(ext, ipB, ir.TCP, 3868), deny(notEnforced(), isolated("ns/b"))},
				{"all ports, UDP", flow(ipC, ipB, ir.UDP, 7), allow(noDecision("ns/c"), by("ns/b", npT, "np-b-in", 2, ir.Allow))},
				{"all ports, SCTP", flow(ipC, ipB, ir.SCTP, 1), allow(noDecision("ns/c"), by("ns/b", npT, "np-b-in", 2, ir.Allow))},
				{"empty peers and empty ports match nothing", flow(ipA, ipB, ir.UDP, 7), deny(noDecision("ns/a"), isolated("ns/b"))},
			},
		},
		{
			name: "named ports resolve at the destination",
			snap: snapshot(
				irtest.PortSet("tcp-http", ir.TCP, "http", ipB+":8080", "["+ipB6+"]:8080", ipC+":9000"),
				irtest.PortSet("udp-dns", ir.UDP, "dns", ipB+":53"),
				ruleList("np-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.AllPeers, irtest.Ports(irtest.Named(ir.TCP, "tcp-http"), irtest.Named(ir.UDP, "udp-dns")))),
				ruleList("np-a-out", ir.Egress, irtest.BareRule(0, ir.Allow, irtest.AllPeers, irtest.Ports(irtest.Named(ir.TCP, "tcp-http")))),
				podA(irtest.Egress(np("np-a-out"))), podB(irtest.Ingress(np("np-in"))), podC(irtest.Ingress(np("np-in")))),
			cases: []flowCase{
				{"b's http", flow(ipA, ipB, ir.TCP, 8080), allow(by("ns/a", npT, "np-a-out", 0, ir.Allow), by("ns/b", npT, "np-in", 0, ir.Allow))},
				{"b's http over IPv6", flow(ipA6, ipB6, ir.TCP, 8080), allow(by("ns/a", npT, "np-a-out", 0, ir.Allow), by("ns/b", npT, "np-in", 0, ir.Allow))},
				{"c's http number is not b's http", flow(ipA, ipB, ir.TCP, 9000), deny(isolated("ns/a"), isolated("ns/b"))},
				{"c's http", flow(ipA, ipC, ir.TCP, 9000), allow(by("ns/a", npT, "np-a-out", 0, ir.Allow), by("ns/c", npT, "np-in", 0, ir.Allow))},
				{"b's http number is not c's http", flow(ipA, ipC, ir.TCP, 8080), deny(isolated("ns/a"), isolated("ns/c"))},
				{"named port of the other protocol", flow(ipA, ipB, ir.UDP, 8080), deny(isolated("ns/a"), isolated("ns/b"))},
				{"UDP named port at ingress, TCP only at egress", flow(ipA, ipB, ir.UDP, 53), deny(isolated("ns/a"), by("ns/b", npT, "np-in", 0, ir.Allow))},
				{"UDP named port from outside", flow(ext, ipB, ir.UDP, 53), allow(notEnforced(), by("ns/b", npT, "np-in", 0, ir.Allow))},
				{"named port never matches a non-pod destination", flow(ipA, ext, ir.TCP, 8080), deny(isolated("ns/a"), notEnforced())},
			},
		},
		{
			name: "Admin, NetworkPolicy and Baseline tiers",
			snap: snapshot(setA(), setC(),
				ruleList("anp-1", ir.Ingress,
					irtest.BareRule(0, ir.Deny, irtest.Peers("pods-c"), irtest.AllPorts),
					irtest.BareRule(1, ir.Pass, irtest.Peers("pods-a"), irtest.Ports(tcp(22))),
					irtest.BareRule(2, ir.Allow, irtest.AllPeers, irtest.Ports(tcp(8443)))),
				ruleList("anp-2", ir.Ingress,
					irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(22))),
					irtest.BareRule(1, ir.Deny, irtest.AllPeers, irtest.Ports(tcp(23)))),
				ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(80), tcp(23)))),
				ruleList("banp-all", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.AllPeers, irtest.AllPorts)),
				podA(), podB(irtest.Ingress(admin("anp-1", "anp-2"), np("np-b-in"), baseline("banp-all"))), podC()),
			cases: []flowCase{
				{"Admin Deny wins over a later Admin Allow", flow(ipC, ipB, ir.TCP, 8443), deny(noDecision("ns/c"), by("ns/b", adminT, "anp-1", 0, ir.Deny))},
				{"Admin Allow although NetworkPolicy would deny", flow(ipA, ipB, ir.TCP, 8443), allow(noDecision("ns/a"), by("ns/b", adminT, "anp-1", 2, ir.Allow))},
				{"Pass skips the rest of the Admin tier, NetworkPolicy denies", flow(ipA, ipB, ir.TCP, 22), deny(noDecision("ns/a"), isolated("ns/b"))},
				{"without the Pass, the second Admin list decides", flow(ext, ipB, ir.TCP, 23), deny(notEnforced(), by("ns/b", adminT, "anp-2", 1, ir.Deny))},
				{"Admin Deny wins over a NetworkPolicy allow", flow(ipA, ipB, ir.TCP, 23), deny(noDecision("ns/a"), by("ns/b", adminT, "anp-2", 1, ir.Deny))},
				{"no Admin match, NetworkPolicy allows", flow(ipA, ipB, ir.TCP, 80), allow(noDecision("ns/a"), by("ns/b", npT, "np-b-in", 0, ir.Allow))},
				{"isolated: Baseline is never reached", flow(ext, ipB, ir.TCP, 80), deny(notEnforced(), isolated("ns/b"))},
			},
		},
		{
			name: "Baseline tier",
			snap: snapshot(setA(), setC(),
				ruleList("anp-pass-a", ir.Ingress, irtest.BareRule(0, ir.Pass, irtest.Peers("pods-a"), irtest.AllPorts)),
				ruleList("banp-b", ir.Ingress,
					irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(80))),
					irtest.BareRule(1, ir.Deny, irtest.AllPeers, irtest.AllPorts),
					irtest.BareRule(2, ir.Allow, irtest.AllPeers, irtest.AllPorts)),
				ruleList("banp-pass", ir.Ingress,
					irtest.BareRule(0, ir.Pass, irtest.Peers("pods-a"), irtest.AllPorts),
					irtest.BareRule(1, ir.Deny, irtest.AllPeers, irtest.AllPorts)),
				ruleList("banp-deny-c", ir.Ingress, irtest.BareRule(0, ir.Deny, irtest.Peers("pods-c"), irtest.AllPorts)),
				podA(irtest.Ingress(baseline("banp-deny-c"))),
				podB(irtest.Ingress(admin("anp-pass-a"), baseline("banp-b"))),
				podC(irtest.Ingress(baseline("banp-pass")))),
			cases: []flowCase{
				{"Admin Pass, then Baseline allows", flow(ipA, ipB, ir.TCP, 80), allow(noDecision("ns/a"), by("ns/b", baselineT, "banp-b", 0, ir.Allow))},
				{"Admin Pass, then Baseline denies", flow(ipA, ipB, ir.TCP, 81), deny(noDecision("ns/a"), by("ns/b", baselineT, "banp-b", 1, ir.Deny))},
				{"no Admin match, Baseline first match denies", flow(ipC, ipB, ir.TCP, 80), deny(noDecision("ns/c"), by("ns/b", baselineT, "banp-b", 1, ir.Deny))},
				{"Baseline Pass: no tier decides, allowed", flow(ipA, ipC, ir.TCP, 80), allow(noDecision("ns/a"), noDecision("ns/c"))},
				{"Baseline Pass is per peer", flow(ipB, ipC, ir.TCP, 80), deny(noDecision("ns/b"), by("ns/c", baselineT, "banp-pass", 1, ir.Deny))},
				{"Baseline without a match: allowed", flow(ipB, ipA, ir.TCP, 80), allow(noDecision("ns/b"), noDecision("ns/a"))},
				{"Baseline match denies", flow(ipC, ipA, ir.TCP, 80), deny(noDecision("ns/c"), by("ns/a", baselineT, "banp-deny-c", 0, ir.Deny))},
			},
		},
		{
			name: "first match within an Admin list, egress",
			snap: snapshot(
				ruleList("anp-allow-first", ir.Egress, irtest.BareRule(0, ir.Allow, irtest.AllPeers, irtest.Ports(tcp(80))), irtest.BareRule(1, ir.Deny, irtest.AllPeers, irtest.AllPorts)),
				ruleList("anp-deny-first", ir.Egress, irtest.BareRule(0, ir.Deny, irtest.AllPeers, irtest.AllPorts), irtest.BareRule(1, ir.Allow, irtest.AllPeers, irtest.Ports(tcp(80)))),
				podB(irtest.Egress(admin("anp-allow-first"))), podC(irtest.Egress(admin("anp-deny-first")))),
			cases: []flowCase{
				{"Allow before Deny: allowed port", flow(ipB, ext, ir.TCP, 80), allow(by("ns/b", adminT, "anp-allow-first", 0, ir.Allow), notEnforced())},
				{"Allow before Deny: other port", flow(ipB, ext, ir.TCP, 81), deny(by("ns/b", adminT, "anp-allow-first", 1, ir.Deny), notEnforced())},
				{"Deny before Allow", flow(ipC, ext, ir.TCP, 80), deny(by("ns/c", adminT, "anp-deny-first", 0, ir.Deny), notEnforced())},
				{"egress Admin of the source, unrestricted destination", flow(ipB, ipC, ir.TCP, 80), allow(by("ns/b", adminT, "anp-allow-first", 0, ir.Allow), noDecision("ns/c"))},
			},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			b := memory.New(sc.cfg)
			_, err := b.Sync(context.Background(), sc.snap)
			require.NoError(t, err)
			for _, tc := range sc.cases {
				t.Run(tc.name, func(t *testing.T) {
					got := b.Evaluate(tc.flow)
					if diff := cmp.Diff(tc.want, got); diff != "" {
						t.Errorf("Evaluate(%s) (-want +got):\n%s", tc.flow, diff)
					}
					explained, _ := b.Explain(tc.flow)
					if diff := cmp.Diff(got, explained); diff != "" {
						t.Errorf("Explain(%s) disagrees with Evaluate (-evaluate +explain):\n%s", tc.flow, diff)
					}
				})
			}
		})
	}
}

// TestEvaluateNodeAndSelf checks the two verdicts reached without the
// tiers: node to local pod, and a pod to itself.
func TestEvaluateNodeAndSelf(t *testing.T) {
	snap := snapshot(ruleList("np-deny-in", ir.Ingress), ruleList("np-deny-out", ir.Egress),
		podA(irtest.Ingress(np("np-deny-in")), irtest.Egress(np("np-deny-out"))))
	const nodeReason = "traffic from the node to its local pods is always allowed"
	const selfReason = "traffic of a pod to itself never leaves the pod"
	tests := []struct {
		name    string
		nodeIPs []string
		flow    memory.Flow
		allowed bool
		reason  string
	}{
		{"node to pod", []string{"10.0.0.254", "fd00::fe"}, flow("10.0.0.254", ipA, ir.TCP, 8080), true, nodeReason},
		{"node to pod over IPv6", []string{"10.0.0.254", "fd00::fe"}, flow("fd00::fe", ipA6, ir.UDP, 53), true, nodeReason},
		{"v4-mapped node address", []string{"10.0.0.254"}, flow("::ffff:10.0.0.254", ipA, ir.SCTP, 1), true, nodeReason},
		{"no node addresses configured", nil, flow("10.0.0.254", ipA, ir.TCP, 8080), false, ""},
		{"another address", []string{"10.0.0.254"}, flow("10.0.0.253", ipA, ir.TCP, 8080), false, ""},
		{"pod to node is egress like any other", []string{"10.0.0.254"}, flow(ipA, "10.0.0.254", ir.TCP, 10250), false, ""},
		{"node to outside is not enforced", []string{"10.0.0.254"}, flow("10.0.0.254", ext, ir.TCP, 80), true, ""},
		{"pod to itself", nil, flow(ipA, ipA, ir.TCP, 80), true, selfReason},
		{"pod to itself over IPv6", nil, flow(ipA6, ipA6, ir.SCTP, 9), true, selfReason},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg memory.Config
			for _, s := range tc.nodeIPs {
				cfg.NodeIPs = append(cfg.NodeIPs, netip.MustParseAddr(s))
			}
			b := memory.New(cfg)
			_, err := b.Sync(context.Background(), snap)
			require.NoError(t, err)
			v := b.Evaluate(tc.flow)
			assert.Equal(t, tc.allowed, v.Allowed)
			assert.Equal(t, tc.reason, v.Reason)
			ev, traces := b.Explain(tc.flow)
			assert.Equal(t, v, ev)
			if tc.reason != "" {
				assert.Empty(t, traces, "a verdict reached without the tiers has no trace")
			}
		})
	}
}

// TestExplain checks the trace of every rule list that applies at each end.
func TestExplain(t *testing.T) {
	rules := map[string][]ir.Rule{
		"anp-1": {
			irtest.BareRule(0, ir.Deny, irtest.Peers("pods-c"), irtest.AllPorts),
			irtest.BareRule(1, ir.Pass, irtest.Peers("pods-a"), irtest.Ports(tcp(22))),
			irtest.BareRule(2, ir.Allow, irtest.AllPeers, irtest.Ports(tcp(8443))),
		},
		"anp-2":     {irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(22)))},
		"np-b-in":   {irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(80)))},
		"np-b-in2":  {irtest.BareRule(4, ir.Allow, irtest.AllPeers, irtest.Ports(tcp(22)))},
		"banp-all":  {irtest.BareRule(0, ir.Allow, irtest.AllPeers, irtest.AllPorts)},
		"np-a-out":  {irtest.BareRule(0, ir.Allow, irtest.Peers("pods-b"), irtest.Ports(irtest.Port(ir.TCP, 1, 100)))},
		"np-a-out2": nil,
	}
	snap := snapshot(setA(), setB(), setC(),
		ruleList("anp-1", ir.Ingress, rules["anp-1"]...),
		ruleList("anp-2", ir.Ingress, rules["anp-2"]...),
		ruleList("np-b-in", ir.Ingress, rules["np-b-in"]...),
		ruleList("np-b-in2", ir.Ingress, rules["np-b-in2"]...),
		ruleList("banp-all", ir.Ingress, rules["banp-all"]...),
		ruleList("np-a-out", ir.Egress, rules["np-a-out"]...),
		ruleList("np-a-out2", ir.Egress),
		podA(irtest.Egress(np("np-a-out", "np-a-out2"))),
		podB(irtest.Ingress(admin("anp-1", "anp-2"), np("np-b-in", "np-b-in2"), baseline("banp-all"))))
	b := memory.New(memory.Config{})
	_, err := b.Sync(context.Background(), snap)
	require.NoError(t, err)

	list := func(ep string, dir ir.Direction, tier ir.TierKind, id string, evaluated bool, matches ...[2]bool) memory.ListTrace {
		lt := memory.ListTrace{Endpoint: ep, Direction: dir, Tier: tier, RuleList: id, Origin: originOf(id), Evaluated: evaluated}
		for i, m := range matches {
			lt.Rules = append(lt.Rules, memory.RuleTrace{Rule: rules[id][i], PeerMatched: m[0], PortMatched: m[1]})
		}
		return lt
	}
	yy, yn, ny, nn := [2]bool{true, true}, [2]bool{true, false}, [2]bool{false, true}, [2]bool{false, false}

	tests := []struct {
		name   string
		flow   memory.Flow
		want   memory.Verdict
		traces []memory.ListTrace
	}{
		{
			name: "Pass skips the second Admin list, NetworkPolicy decides, Baseline not reached",
			flow: flow(ipA, ipB, ir.TCP, 22),
			want: allow(by("ns/a", npT, "np-a-out", 0, ir.Allow), by("ns/b", npT, "np-b-in2", 4, ir.Allow)),
			traces: []memory.ListTrace{
				list("ns/a", ir.Egress, npT, "np-a-out", true, yy),
				list("ns/a", ir.Egress, npT, "np-a-out2", true),
				list("ns/b", ir.Ingress, adminT, "anp-1", true, ny, yy, yn),
				list("ns/b", ir.Ingress, adminT, "anp-2", false, yy),
				list("ns/b", ir.Ingress, npT, "np-b-in", true, yn),
				list("ns/b", ir.Ingress, npT, "np-b-in2", true, yy),
				list("ns/b", ir.Ingress, baselineT, "banp-all", false, yy),
			},
		},
		{
			name: "Admin Deny decides: every later list is traced but not evaluated",
			flow: flow(ipC, ipB, ir.TCP, 8443),
			want: deny(notEnforced(), by("ns/b", adminT, "anp-1", 0, ir.Deny)),
			traces: []memory.ListTrace{
				list("ns/b", ir.Ingress, adminT, "anp-1", true, yy, nn, yy),
				list("ns/b", ir.Ingress, adminT, "anp-2", false, nn),
				list("ns/b", ir.Ingress, npT, "np-b-in", false, nn),
				list("ns/b", ir.Ingress, npT, "np-b-in2", false, yn),
				list("ns/b", ir.Ingress, baselineT, "banp-all", false, yy),
			},
		},
		{
			name: "NetworkPolicy denies for lack of a match; egress denies too",
			flow: flow(ipA6, ipB6, ir.TCP, 443),
			want: deny(isolated("ns/a"), isolated("ns/b")),
			traces: []memory.ListTrace{
				list("ns/a", ir.Egress, npT, "np-a-out", true, yn),
				list("ns/a", ir.Egress, npT, "np-a-out2", true),
				list("ns/b", ir.Ingress, adminT, "anp-1", true, ny, yn, yn),
				list("ns/b", ir.Ingress, adminT, "anp-2", true, yn),
				list("ns/b", ir.Ingress, npT, "np-b-in", true, yn),
				list("ns/b", ir.Ingress, npT, "np-b-in2", true, yn),
				list("ns/b", ir.Ingress, baselineT, "banp-all", false, yy),
			},
		},
		{
			name:   "unenforced ends have no trace",
			flow:   flow(ext, "198.51.100.7", ir.UDP, 53),
			want:   allow(notEnforced(), notEnforced()),
			traces: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, traces := b.Explain(tc.flow)
			if diff := cmp.Diff(tc.want, v); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.traces, traces); diff != "" {
				t.Errorf("traces (-want +got):\n%s", diff)
			}
			assert.Equal(t, b.Evaluate(tc.flow), v)
		})
	}
}

func TestDecisionString(t *testing.T) {
	tests := []struct {
		d    memory.Decision
		want string
	}{
		{notEnforced(), "not enforced here"},
		{noDecision("ns/a"), "allowed (no policy decides)"},
		{isolated("ns/a"), "denied (isolated by NetworkPolicy, no rule matched)"},
		{by("ns/a", npT, "np-x", 2, ir.Allow), "allowed by NetworkPolicy/ns/x rule 2"},
		{by("ns/a", adminT, "anp-x", 1, ir.Deny), "denied by AdminNetworkPolicy/x rule 1 (Admin tier)"},
		{by("ns/a", baselineT, "banp-x", 0, ir.Allow), "allowed by BaselineAdminNetworkPolicy/x rule 0 (Baseline tier)"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, tc.d.String())
	}
	assert.Equal(t, "10.0.0.1 -> fd00::2 SCTP/3868", flow(ipA, ipB6, ir.SCTP, 3868).String())
}
