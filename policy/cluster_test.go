package policy_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

// tierWorld is three namespaces (labelled ns=<name>) with pods:
// x/a 10.0.1.1 (app=web, named port http=80), x/b 10.0.1.2 (app=db),
// y/a 10.0.2.1, z/a 10.0.3.1. No policy.
func tierWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pt.Namespace("x", map[string]string{"ns": "x"}),
		pt.Namespace("y", map[string]string{"ns": "y"}),
		pt.Namespace("z", map[string]string{"ns": "z"}),
		pt.Pod("x", "a", pt.WithLabels(map[string]string{"app": "web"}), pt.WithIPs("10.0.1.1", "fd00::1:1"), pt.OnNode("n1"),
			pt.WithContainerPorts(pt.ContainerPort("http", 80, corev1.ProtocolTCP))),
		pt.Pod("x", "b", pt.WithLabels(map[string]string{"app": "db"}), pt.WithIPs("10.0.1.2", "fd00::1:2"), pt.OnNode("n1"),
			pt.WithContainerPorts(pt.ContainerPort("http", 8080, corev1.ProtocolTCP))),
		pt.Pod("y", "a", pt.WithIPs("10.0.2.1", "fd00::2:1"), pt.OnNode("n1")),
		pt.Pod("z", "a", pt.WithIPs("10.0.3.1", "fd00::3:1"), pt.OnNode("n1")),
	))
	return w
}

const (
	xa, xb, ya, za = "10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.3.1"
	xa6, ya6       = "fd00::1:1", "fd00::2:1"
)

// decision returns the verdict of a flow with both decisions, after a sync.
func (w *world) verdict(src, dst string, proto ir.Protocol, port uint16) memory.Verdict {
	w.t.Helper()
	w.sync()
	return w.mem.Evaluate(memory.Flow{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: proto, Port: port})
}

func TestAdminTierLowestPriorityFirst(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(
		pt.ANP("deny-y", `
			priority: 10
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {name: no-y, action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}]}`),
		pt.ANP("allow-all", `
			priority: 20
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {name: all, action: Allow, from: [{namespaces: {}}]}`),
		// An isolating NetworkPolicy that the Admin tier overrides.
		pt.NetworkPolicy("x", "deny-all", pt.WithPodSelector(pt.MatchLabels(nil))),
	))
	v := w.verdict(ya, xa, ir.TCP, 80)
	assert.False(t, v.Allowed)
	assert.Equal(t, ir.Origin{Kind: "AdminNetworkPolicy", Name: "deny-y"}, v.Ingress.Origin)
	assert.True(t, w.allowed(za, xa, ir.TCP, 80), "Admin Allow beats the NetworkPolicy")

	// Swap the priorities: the Allow now comes first.
	w.sync()
	require.NoError(t, w.add(pt.ANP("deny-y", `
		priority: 30
		subject: {namespaces: {matchLabels: {ns: x}}}
		ingress:
		- {name: no-y, action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}]}`)))
	d := w.e.Delta()
	var lists []string
	for _, rl := range d.RuleLists {
		lists = append(lists, rl.ID)
	}
	assert.Equal(t, []string{"adminnetworkpolicy:deny-y:ingress"}, lists, "a priority change re-emits only its own list")
	assert.Empty(t, d.AddedAddressSets)
	assert.Empty(t, d.AddressSetChanges)
	require.NoError(t, w.mem.Apply(t.Context(), d))
	assert.True(t, w.allowed(ya, xa, ir.TCP, 80))
}

func TestEqualPriorityANPBeforeCNPThenByName(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(
		pt.CNP("a-first-by-name", `
			tier: Admin
			priority: 5
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {action: Deny, from: [{namespaces: {}}]}`),
		pt.ANP("z-last-by-name", `
			priority: 5
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {action: Allow, from: [{namespaces: {matchLabels: {ns: "y"}}}]}`),
	))
	assert.True(t, w.allowed(ya, xa, ir.TCP, 80), "the ANP comes before the CNP at equal priority")
	assert.False(t, w.allowed(za, xa, ir.TCP, 80))

	// Same kind, same priority: by name. "a" sorts before "a-b" by name
	// (though not by list ID, where ':' follows '-').
	require.NoError(t, w.add(
		pt.ANP("a", `
			priority: 3
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {action: Allow, from: [{namespaces: {matchLabels: {ns: z}}}]}`),
		pt.ANP("a-b", `
			priority: 3
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}]}`),
	))
	assert.True(t, w.allowed(za, xa, ir.TCP, 80))
	ep, ok := w.mem.Endpoint(netip.MustParseAddr(xa))
	require.True(t, ok)
	require.Len(t, ep.Ingress, 1)
	assert.Equal(t, []string{
		"adminnetworkpolicy:a:ingress", "adminnetworkpolicy:a-b:ingress",
		"adminnetworkpolicy:z-last-by-name:ingress", "clusternetworkpolicy:a-first-by-name:ingress",
	}, ep.Ingress[0].RuleLists)
}

func TestPassHandsOverToNetworkPolicy(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(
		pt.CNP("pass-y", `
			tier: Admin
			priority: 1
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {name: to-np, action: Pass, from: [{namespaces: {matchLabels: {ns: "y"}}}]}`),
		pt.ANP("allow-rest", `
			priority: 2
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {action: Allow, from: [{namespaces: {}}]}`),
		pt.NetworkPolicy("x", "only-z", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "web"})),
			pt.WithIngress(pt.IngressRule(pt.Peers(pt.NamespacePeer(pt.MatchLabels(map[string]string{"ns": "z"})))))),
	))
	v := w.verdict(ya, xa, ir.TCP, 80)
	assert.False(t, v.Allowed, "Pass skips the later Admin Allow; the NetworkPolicy denies")
	assert.Equal(t, ir.TierNetworkPolicy, v.Ingress.Tier)
	assert.True(t, w.allowed(ya, xb, ir.TCP, 80), "x/b is not isolated: after Pass, default allow")
	assert.True(t, w.allowed(za, xa, ir.TCP, 80))
}

func TestBaselineTier(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(
		pt.BANP("default", `
			subject: {namespaces: {matchLabels: {ns: x}}}
			ingress:
			- {name: deny-all, action: Deny, from: [{namespaces: {}}]}`),
		pt.NetworkPolicy("x", "web-from-y", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "web"})),
			pt.WithIngress(pt.IngressRule(pt.Peers(pt.NamespacePeer(pt.MatchLabels(map[string]string{"ns": "y"})))))),
	))
	assert.True(t, w.allowed(ya, xa, ir.TCP, 80), "isolated pod: the NetworkPolicy decides")
	assert.False(t, w.allowed(za, xa, ir.TCP, 80), "isolated pod: the NetworkPolicy denies")
	v := w.verdict(ya, xb, ir.TCP, 80)
	assert.False(t, v.Allowed, "a pod no NetworkPolicy selects gets the baseline")
	assert.Equal(t, ir.Origin{Kind: "BaselineAdminNetworkPolicy", Name: "default"}, v.Ingress.Origin)

	// Baseline CNPs come before the BANP whatever their priority; Pass
	// there means no decision: default allow.
	require.NoError(t, w.add(pt.CNP("pass-y", `
		tier: Baseline
		priority: 1000
		subject: {namespaces: {matchLabels: {ns: x}}}
		ingress:
		- {action: Pass, from: [{namespaces: {matchLabels: {ns: "y"}}}]}`)))
	assert.True(t, w.allowed(ya, xb, ir.TCP, 80), "Baseline Pass: no decision, default allow")
	assert.False(t, w.allowed(za, xb, ir.TCP, 80))
	require.NoError(t, w.add(pt.CNP("allow-z", `
		tier: Baseline
		priority: 7
		subject: {namespaces: {matchLabels: {ns: x}}}
		ingress:
		- {action: Accept, from: [{pods: {namespaceSelector: {matchLabels: {ns: z}}, podSelector: {}}}]}`)))
	assert.True(t, w.allowed(za, xb, ir.TCP, 80))
	w.e.DeleteBaselineAdminNetworkPolicy("default")
	w.e.DeleteClusterNetworkPolicy("allow-z")
	w.e.DeleteClusterNetworkPolicy("pass-y")
	w.e.DeleteClusterNetworkPolicy("unknown")
	assert.True(t, w.allowed(za, xb, ir.TCP, 80), "default allow")
}

func TestEgressAllowStillNeedsIngressAtTheDestination(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(
		pt.ANP("x-out", `
			priority: 1
			subject: {namespaces: {matchLabels: {ns: x}}}
			egress:
			- {action: Allow, to: [{namespaces: {}}]}`),
		pt.NetworkPolicy("y", "deny-in", pt.WithPodSelector(pt.MatchLabels(nil))),
		pt.ANP("y-in", `
			priority: 2
			subject: {namespaces: {matchLabels: {ns: z}}}
			ingress:
			- {action: Deny, from: [{namespaces: {matchLabels: {ns: x}}}]}`),
	))
	assert.False(t, w.allowed(xa, ya, ir.TCP, 80), "the destination's NetworkPolicy denies")
	assert.False(t, w.allowed(xa, za, ir.TCP, 80), "the destination's Admin tier denies")
	require.NoError(t, w.add(pt.NetworkPolicy("x", "deny-out", pt.WithPodSelector(pt.MatchLabels(nil)),
		pt.WithPolicyTypes(networkingv1.PolicyTypeEgress))))
	assert.True(t, w.allowed(xa, xb, ir.TCP, 80), "Admin egress Allow beats the source's NetworkPolicy")
	assert.False(t, w.allowed(xa, "10.9.9.9", ir.TCP, 80), "no Admin rule matches a non-pod: the NetworkPolicy denies")
}

func TestNodePeersFollowLabelsAndAddresses(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(
		pt.Node("n1", map[string]string{"role": "control"}, "192.168.0.1", "fd00:ff::1"),
		pt.Node("n2", map[string]string{"role": "worker"}, "192.168.0.2"),
		pt.CNP("no-control", `
			tier: Admin
			priority: 1
			subject: {namespaces: {}}
			egress:
			- {name: control-plane, action: Deny, to: [{nodes: {matchLabels: {role: control}}}]}`),
		// A pod labelled like the node must never match a nodes peer, and
		// the empty pod selector must never match a node.
		pt.Pod("z", "lookalike", pt.WithLabels(map[string]string{"role": "control"}), pt.WithIPs("10.0.3.9"), pt.OnNode("n1")),
		pt.CNP("pods-only", `
			tier: Admin
			priority: 2
			subject: {namespaces: {}}
			egress:
			- {action: Deny, to: [{pods: {namespaceSelector: {}, podSelector: {}}}]}`),
	))
	assert.False(t, w.allowed(xa, "192.168.0.1", ir.TCP, 6443))
	assert.False(t, w.allowed(xa6, "fd00:ff::1", ir.TCP, 6443))
	assert.True(t, w.allowed(xa, "192.168.0.2", ir.TCP, 6443), "a worker is neither a control node nor a pod")
	assert.False(t, w.allowed(xa, "10.0.3.9", ir.TCP, 80), "denied by pods-only, not by the node rule")
	v := w.verdict(xa, "10.0.3.9", ir.TCP, 80)
	assert.Equal(t, "pods-only", v.Egress.Origin.Name)
	w.sync()

	// Relabel: only set members change.
	require.NoError(t, w.add(pt.Node("n2", map[string]string{"role": "control"}, "192.168.0.2")))
	d := w.e.Delta()
	assert.Empty(t, d.RuleLists)
	assert.Empty(t, d.Endpoints)
	require.Len(t, d.AddressSetChanges, 1)
	require.NoError(t, w.mem.Apply(t.Context(), d))
	assert.False(t, w.allowed(xa, "192.168.0.2", ir.TCP, 6443))

	// New address: the old one leaves the set.
	require.NoError(t, w.add(pt.Node("n2", map[string]string{"role": "control"}, "192.168.0.22")))
	assert.True(t, w.allowed(xa, "192.168.0.2", ir.TCP, 6443))
	assert.False(t, w.allowed(xa, "192.168.0.22", ir.TCP, 6443))
	w.e.DeleteNode("n2")
	w.e.DeleteNode("unknown")
	assert.True(t, w.allowed(xa, "192.168.0.22", ir.TCP, 6443))
	w.e.UpsertNode(nil)
}

func TestNetworksMatchPodIPs(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(pt.CNP("no-y-net", `
		tier: Admin
		priority: 1
		subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {app: web}}}}
		egress:
		- {action: Deny, to: [{networks: [10.0.2.0/24, "fd00::2:0/112"]}]}`)))
	assert.False(t, w.allowed(xa, ya, ir.TCP, 80), "a pod IP inside the network")
	assert.False(t, w.allowed(xa6, ya6, ir.TCP, 80), "IPv6")
	assert.True(t, w.allowed(xa, za, ir.TCP, 80))
	assert.True(t, w.allowed(xb, ya, ir.TCP, 80), "x/b is not a subject")
}

func TestClusterPorts(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(pt.ANP("ports", `
		priority: 1
		subject: {namespaces: {matchLabels: {ns: x}}}
		ingress:
		- {name: named, action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}], ports: [{namedPort: http}]}
		- {name: range, action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], ports: [{portRange: {protocol: SCTP, start: 100, end: 200}}]}
		- {name: number, action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], ports: [{portNumber: {protocol: UDP, port: 53}}]}`)))
	assert.False(t, w.allowed(ya, xa, ir.TCP, 80), "http is 80 on x/a")
	assert.True(t, w.allowed(ya, xa, ir.TCP, 8080))
	assert.False(t, w.allowed(ya, xb, ir.TCP, 8080), "http is 8080 on x/b")
	assert.True(t, w.allowed(ya, xb, ir.TCP, 80))
	assert.False(t, w.allowed(za, xa, ir.SCTP, 100))
	assert.False(t, w.allowed(za, xa, ir.SCTP, 200))
	assert.True(t, w.allowed(za, xa, ir.SCTP, 201))
	assert.True(t, w.allowed(za, xa, ir.TCP, 150))
	assert.False(t, w.allowed(za, xa, ir.UDP, 53))
	assert.True(t, w.allowed(za, xa, ir.TCP, 53))

	require.NoError(t, w.add(pt.CNP("protocols", `
		tier: Admin
		priority: 0
		subject: {namespaces: {matchLabels: {ns: "y"}}}
		egress:
		- {action: Deny, to: [{namespaces: {}}], protocols: [{destinationNamedPort: http}]}
		- {action: Deny, to: [{networks: [0.0.0.0/0]}], protocols: [{tcp: {destinationPort: {range: {start: 1000, end: 1002}}}}, {sctp: {destinationPort: {number: 9}}}]}`)))
	assert.False(t, w.allowed(ya, xb, ir.TCP, 8080))
	assert.True(t, w.allowed(ya, "10.9.9.9", ir.TCP, 80), "a named port never matches a non-pod")
	assert.True(t, w.allowed(ya, "10.9.9.9", ir.TCP, 8080))
	assert.False(t, w.allowed(ya, "10.9.9.9", ir.TCP, 1001))
	assert.True(t, w.allowed(ya, "10.9.9.9", ir.TCP, 1003))
	assert.False(t, w.allowed(ya, "10.9.9.9", ir.SCTP, 9))
	assert.True(t, w.allowed(ya, "10.9.9.9", ir.UDP, 9))
}

func TestLabelChangesTouchSetMembersOnly(t *testing.T) {
	w := tierWorld(t)
	require.NoError(t, w.add(pt.CNP("deny-db", `
		tier: Admin
		priority: 1
		subject: {namespaces: {matchLabels: {ns: x}}}
		ingress:
		- {action: Deny, from: [{pods: {namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {app: db}}}}]}
		- {action: Deny, from: [{namespaces: {matchLabels: {team: red}}}]}`)))
	assert.True(t, w.allowed(ya, xa, ir.TCP, 80))
	w.sync()
	require.NoError(t, w.add(pt.Pod("y", "a", pt.WithLabels(map[string]string{"app": "db"}), pt.WithIPs("10.0.2.1", "fd00::2:1"), pt.OnNode("n1"))))
	d := w.e.Delta()
	assert.Empty(t, d.RuleLists)
	assert.Empty(t, d.Endpoints)
	assert.Len(t, d.AddressSetChanges, 1)
	require.NoError(t, w.mem.Apply(t.Context(), d))
	assert.False(t, w.allowed(ya, xa, ir.TCP, 80))

	require.NoError(t, w.add(pt.Namespace("z", map[string]string{"ns": "z", "team": "red"})))
	d = w.e.Delta()
	assert.Empty(t, d.RuleLists)
	assert.Empty(t, d.Endpoints)
	assert.Len(t, d.AddressSetChanges, 1)
	require.NoError(t, w.mem.Apply(t.Context(), d))
	assert.False(t, w.allowed(za, xa, ir.TCP, 80))

	// A subject change of a namespace label re-computes endpoints only.
	require.NoError(t, w.add(pt.Namespace("y", map[string]string{"ns": "x"})))
	d = w.e.Delta()
	assert.Empty(t, d.RuleLists)
	assert.NotEmpty(t, d.Endpoints)
}
