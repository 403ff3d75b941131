package policy_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

// world is an engine and a memory backend kept in step through deltas.
type world struct {
	t   *testing.T
	e   policy.Engine
	mem *memory.Backend
}

func newWorld(t *testing.T, cfg policy.Config) *world {
	return &world{t: t, e: policy.New(cfg), mem: memory.New(memory.Config{})}
}

// add upserts objects; validation errors are returned by the last one.
func (w *world) add(objs ...any) error {
	var err error
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			w.e.UpsertNamespace(o)
		case *corev1.Pod:
			err = w.e.UpsertPod(o)
		case *networkingv1.NetworkPolicy:
			err = w.e.UpsertNetworkPolicy(o)
		case *v1alpha1.AdminNetworkPolicy:
			err = w.e.UpsertAdminNetworkPolicy(o)
		case *v1alpha1.BaselineAdminNetworkPolicy:
			err = w.e.UpsertBaselineAdminNetworkPolicy(o)
		case *v1beta1.ClusterNetworkPolicy:
			err = w.e.UpsertClusterNetworkPolicy(o)
		case *corev1.Node:
			w.e.UpsertNode(o)
		default:
			w.t.Fatalf("unknown object %T", o)
		}
	}
	return err
}

// sync applies the engine's delta to the backend.
func (w *world) sync() {
	w.t.Helper()
	require.NoError(w.t, w.mem.Apply(context.Background(), w.e.Delta()))
}

func (w *world) allowed(src, dst string, proto ir.Protocol, port uint16) bool {
	w.t.Helper()
	w.sync()
	return w.mem.Evaluate(memory.Flow{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: proto, Port: port}).Allowed
}

func pod(ns, name string, labels map[string]string, ips ...string) *corev1.Pod {
	return pt.Pod(ns, name, pt.WithLabels(labels), pt.WithIPs(ips...), pt.OnNode("n1"))
}

func TestNamedPortsResolvePerDestinationPod(t *testing.T) {
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pt.Pod("x", "a", pt.WithLabels(map[string]string{"app": "web"}), pt.WithIPs("10.0.0.1"),
			pt.WithContainerPorts(pt.ContainerPort("http", 80, corev1.ProtocolTCP))),
		pt.Pod("x", "b", pt.WithLabels(map[string]string{"app": "web"}), pt.WithIPs("10.0.0.2"),
			pt.WithContainerPorts(pt.ContainerPort("http", 8080, corev1.ProtocolTCP), pt.ContainerPort("dns", 53, corev1.ProtocolUDP))),
		pod("x", "client", nil, "10.0.0.3"),
		pt.NetworkPolicy("x", "web", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "web"})),
			pt.WithIngress(pt.IngressRule(pt.Ports(pt.NamedPort("http"))))),
		pt.NetworkPolicy("x", "client", pt.WithPodSelector(pt.MatchLabels(nil)),
			pt.WithPolicyTypes(networkingv1.PolicyTypeEgress),
			pt.WithEgress(pt.EgressRule(pt.Ports(pt.NamedPort("dns", pt.WithProtocol(corev1.ProtocolUDP)))))),
	))
	assert.False(t, w.allowed("10.0.0.3", "10.0.0.1", ir.TCP, 80), "egress: client may only use named port dns/UDP")

	// Open client egress fully to look at ingress alone.
	require.NoError(t, w.add(pt.NetworkPolicy("x", "client", pt.WithPodSelector(pt.MatchLabels(nil)),
		pt.WithPolicyTypes(networkingv1.PolicyTypeEgress), pt.WithEgress(pt.EgressRule()))))
	assert.True(t, w.allowed("10.0.0.3", "10.0.0.1", ir.TCP, 80), "a's http is 80")
	assert.False(t, w.allowed("10.0.0.3", "10.0.0.1", ir.TCP, 8080), "a has no 8080")
	assert.True(t, w.allowed("10.0.0.3", "10.0.0.2", ir.TCP, 8080), "b's http is 8080")
	assert.False(t, w.allowed("10.0.0.3", "10.0.0.2", ir.TCP, 80), "b has no http on 80")
	assert.False(t, w.allowed("10.0.0.3", "10.0.0.2", ir.UDP, 8080), "named port is TCP only")

	// Egress named port: resolves against the destination pod, never a
	// non-pod address. (Open the servers' ingress to look at egress alone.)
	require.NoError(t, w.add(pt.NetworkPolicy("x", "web", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "web"})),
		pt.WithIngress(pt.IngressRule()))))
	require.NoError(t, w.add(pt.NetworkPolicy("x", "client", pt.WithPodSelector(pt.MatchLabels(nil)),
		pt.WithPolicyTypes(networkingv1.PolicyTypeEgress),
		pt.WithEgress(pt.EgressRule(pt.Ports(pt.NamedPort("dns", pt.WithProtocol(corev1.ProtocolUDP))))))))
	assert.True(t, w.allowed("10.0.0.3", "10.0.0.2", ir.UDP, 53), "b has dns/UDP 53")
	assert.False(t, w.allowed("10.0.0.3", "10.9.9.9", ir.UDP, 53), "a named port never matches a non-pod destination")

	// A port renamed on the pod moves with it.
	require.NoError(t, w.add(pt.Pod("x", "b", pt.WithLabels(map[string]string{"app": "web"}), pt.WithIPs("10.0.0.2"),
		pt.WithContainerPorts(pt.ContainerPort("dns", 5353, corev1.ProtocolUDP)))))
	assert.False(t, w.allowed("10.0.0.3", "10.0.0.2", ir.UDP, 53))
	assert.True(t, w.allowed("10.0.0.3", "10.0.0.2", ir.UDP, 5353))
}

func TestIPBlocksAreSubtractedBeforeUnion(t *testing.T) {
	// One block's except must not punch a hole in another block of the same
	// rule (a bug seen in the field when blocks share one set).
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pod("x", "a", nil, "10.0.0.1"),
		pt.NetworkPolicy("x", "in", pt.WithPodSelector(pt.MatchLabels(nil)),
			pt.WithIngress(pt.IngressRule(pt.Peers(
				pt.IPBlockPeer("192.168.0.0/16", "192.168.1.0/24"),
				pt.IPBlockPeer("192.168.1.0/25"),
			)))),
	))
	assert.True(t, w.allowed("192.168.1.5", "10.0.0.1", ir.TCP, 80), "in the second block")
	assert.False(t, w.allowed("192.168.1.200", "10.0.0.1", ir.TCP, 80), "excepted by the first, not in the second")
	assert.True(t, w.allowed("192.168.2.1", "10.0.0.1", ir.TCP, 80), "in the first block")
	assert.False(t, w.allowed("10.1.1.1", "10.0.0.1", ir.TCP, 80))
}

func TestBothEndsAreCheckedIndependently(t *testing.T) {
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pod("x", "a", map[string]string{"app": "a"}, "10.0.0.1"),
		pod("x", "b", map[string]string{"app": "b"}, "10.0.0.2"),
		// a may send anywhere; b accepts nothing.
		pt.NetworkPolicy("x", "a-out", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "a"})),
			pt.WithPolicyTypes(networkingv1.PolicyTypeEgress), pt.WithEgress(pt.EgressRule())),
		pt.NetworkPolicy("x", "b-in", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "b"})),
			pt.WithPolicyTypes(networkingv1.PolicyTypeIngress)),
	))
	assert.False(t, w.allowed("10.0.0.1", "10.0.0.2", ir.TCP, 80), "egress allows, ingress denies")
	// Now b accepts everything and a sends nothing.
	require.NoError(t, w.add(
		pt.NetworkPolicy("x", "a-out", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "a"})),
			pt.WithPolicyTypes(networkingv1.PolicyTypeEgress)),
		pt.NetworkPolicy("x", "b-in", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "b"})),
			pt.WithIngress(pt.IngressRule())),
	))
	assert.False(t, w.allowed("10.0.0.1", "10.0.0.2", ir.TCP, 80), "ingress allows, egress denies")
	assert.True(t, w.allowed("10.0.0.2", "10.0.0.1", ir.TCP, 80), "b is not isolated for egress, a not for ingress")
}

func TestPodsThatAreNotEndpointsOrPeers(t *testing.T) {
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pod("x", "server", map[string]string{"app": "server"}, "10.0.0.1"),
		pt.Pod("x", "host", pt.WithLabels(map[string]string{"role": "client"}), pt.WithIPs("192.168.0.10"), pt.HostNetwork()),
		pt.Pod("x", "done", pt.WithLabels(map[string]string{"role": "client"}), pt.WithIPs("10.0.0.3"), pt.WithPhase(corev1.PodSucceeded)),
		pt.Pod("x", "pending", pt.WithLabels(map[string]string{"role": "client"})),
		pod("x", "live", map[string]string{"role": "client"}, "10.0.0.4"),
		pt.NetworkPolicy("x", "server", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "server"})),
			pt.WithIngress(pt.IngressRule(pt.Peers(pt.PodPeer(pt.MatchLabels(map[string]string{"role": "client"})))))),
		pt.NetworkPolicy("x", "deny-all", pt.WithPodSelector(pt.MatchLabels(nil)),
			pt.WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)),
	))
	w.sync()
	snap := w.mem.Snapshot()
	var eps []string
	for _, ep := range snap.Endpoints {
		eps = append(eps, ep.ID)
	}
	assert.Equal(t, []string{"x/live", "x/server"}, eps, "hostNetwork, finished and IP-less pods are no endpoints")
	assert.False(t, w.allowed("192.168.0.10", "10.0.0.1", ir.TCP, 80), "a hostNetwork pod is no pod peer")
	assert.False(t, w.allowed("10.0.0.3", "10.0.0.1", ir.TCP, 80), "a finished pod is no peer")
	// live is isolated for egress by deny-all, so open its egress.
	require.NoError(t, w.add(pt.NetworkPolicy("x", "live-out", pt.WithPodSelector(pt.MatchLabels(map[string]string{"role": "client"})),
		pt.WithPolicyTypes(networkingv1.PolicyTypeEgress), pt.WithEgress(pt.EgressRule()))))
	assert.True(t, w.allowed("10.0.0.4", "10.0.0.1", ir.TCP, 80))
}

func TestNamespaceLabelsAndMissingNamespaces(t *testing.T) {
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pod("x", "server", nil, "10.0.0.1"),
		pod("y", "client", nil, "10.0.1.1"), // no Namespace object for y
		pt.NetworkPolicy("x", "from-y", pt.WithPodSelector(pt.MatchLabels(nil)),
			pt.WithIngress(pt.IngressRule(
				pt.Peers(pt.NamespacePeer(pt.MatchLabels(map[string]string{"kubernetes.io/metadata.name": "y"}))),
				pt.Ports(pt.Port(80))))),
		pt.NetworkPolicy("x", "from-team", pt.WithPodSelector(pt.MatchLabels(nil)),
			pt.WithIngress(pt.IngressRule(
				pt.Peers(pt.NamespacePeer(pt.MatchLabels(map[string]string{"team": "blue"}))),
				pt.Ports(pt.Port(81))))),
	))
	assert.True(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 80), "a missing namespace still carries its name label")
	assert.False(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 81))

	// The namespace object appears with a label; the name label is set to
	// the name even if the object says otherwise.
	w.e.UpsertNamespace(pt.Namespace("y", map[string]string{"team": "blue", "kubernetes.io/metadata.name": "other"}))
	assert.True(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 81), "label team=blue admits y")
	assert.True(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 80), "the name label cannot be overridden")

	w.e.UpsertNamespace(pt.Namespace("y", map[string]string{"team": "red"}))
	assert.False(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 81), "relabelled namespace leaves the set")

	w.e.UpsertNamespace(pt.Namespace("y", map[string]string{"team": "blue"}))
	assert.True(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 81))
	w.e.DeleteNamespace("y")
	assert.False(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 81), "deleted namespace: only the name label is left")
	assert.True(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 80))
}

func TestDualStack(t *testing.T) {
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pod("x", "a", map[string]string{"app": "a"}, "10.0.0.1", "fd00::1"),
		pod("x", "b", map[string]string{"app": "b"}, "10.0.0.2", "fd00::2"),
		pod("x", "c", map[string]string{"app": "c"}, "fd00::3"),
		pt.NetworkPolicy("x", "a", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "a"})),
			pt.WithIngress(pt.IngressRule(pt.Peers(pt.PodPeer(pt.MatchLabels(map[string]string{"app": "b"})), pt.IPBlockPeer("fd00::3/128"))))),
	))
	assert.True(t, w.allowed("10.0.0.2", "10.0.0.1", ir.TCP, 80))
	assert.True(t, w.allowed("fd00::2", "fd00::1", ir.TCP, 80))
	assert.True(t, w.allowed("fd00::3", "fd00::1", ir.SCTP, 80), "ipBlock matches a pod IP too")
	assert.False(t, w.allowed("10.0.0.3", "10.0.0.1", ir.TCP, 80))
}

func TestLocalNodeFilter(t *testing.T) {
	w := newWorld(t, policy.Config{NodeName: "n1"})
	require.NoError(t, w.add(
		pt.Pod("x", "local", pt.WithLabels(map[string]string{"app": "db"}), pt.WithIPs("10.0.0.1"), pt.OnNode("n1")),
		pt.Pod("x", "remote", pt.WithLabels(map[string]string{"app": "web"}), pt.WithIPs("10.0.1.1"), pt.OnNode("n2")),
		pt.Pod("x", "remote-db", pt.WithLabels(map[string]string{"app": "db"}), pt.WithIPs("10.0.1.2"), pt.OnNode("n2")),
		pt.NetworkPolicy("x", "db", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "db"})),
			pt.WithIngress(pt.IngressRule(pt.Peers(pt.PodPeer(pt.MatchLabels(map[string]string{"app": "web"})))))),
	))
	w.sync()
	snap := w.mem.Snapshot()
	require.Len(t, snap.Endpoints, 1)
	assert.Equal(t, "x/local", snap.Endpoints[0].ID)
	assert.True(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 5432), "remote pods are peers")
	assert.False(t, w.allowed("10.0.1.2", "10.0.0.1", ir.TCP, 5432))
	assert.True(t, w.allowed("10.0.0.1", "10.0.1.2", ir.TCP, 5432), "ingress at a remote pod is its node's job")

	// Moving a pod to this node makes it an endpoint.
	require.NoError(t, w.add(pt.Pod("x", "remote-db", pt.WithLabels(map[string]string{"app": "db"}), pt.WithIPs("10.0.1.2"), pt.OnNode("n1"))))
	assert.False(t, w.allowed("10.0.0.1", "10.0.1.2", ir.TCP, 5432))
}

func TestPolicyTypesAndEmptyLists(t *testing.T) {
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pod("x", "a", map[string]string{"app": "a"}, "10.0.0.1"),
		pod("x", "b", map[string]string{"app": "b"}, "10.0.0.2"),
		// Egress rules without policyTypes: isolates both ways.
		pt.NetworkPolicy("x", "a", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "a"})),
			pt.WithEgress(pt.EgressRule(pt.Ports(pt.Port(53, pt.WithProtocol(corev1.ProtocolUDP))))),
			pt.WithPolicyTypes()),
		// policyTypes Egress only: its ingress rules are ignored.
		pt.NetworkPolicy("x", "b", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "b"})),
			pt.WithIngress(pt.IngressRule(pt.Peers(pt.IPBlockPeer("1.2.3.4/32")))),
			pt.WithPolicyTypes(networkingv1.PolicyTypeEgress)),
	))
	assert.False(t, w.allowed("10.0.0.2", "10.0.0.1", ir.TCP, 80), "a is isolated for ingress by default")
	assert.True(t, w.allowed("10.0.0.1", "10.0.0.2", ir.UDP, 53), "a may send DNS; b's ingress is not isolated")
	assert.False(t, w.allowed("10.0.0.1", "10.0.0.2", ir.UDP, 54))
	assert.True(t, w.allowed("10.0.0.9", "10.0.0.2", ir.TCP, 80), "b's ingress rules do not apply")
	assert.False(t, w.allowed("10.0.0.2", "10.9.9.9", ir.TCP, 80), "b is isolated for egress with no rule")

	// Port ranges, inclusive (from a non-pod address: b cannot send); a port without a number is every port of its protocol.
	require.NoError(t, w.add(pt.NetworkPolicy("x", "a", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "a"})),
		pt.WithIngress(pt.IngressRule(pt.Ports(pt.Port(1000, pt.WithEndPort(2000)), pt.AnyPort(corev1.ProtocolSCTP)))))))
	assert.True(t, w.allowed("10.0.0.9", "10.0.0.1", ir.TCP, 1000))
	assert.True(t, w.allowed("10.0.0.9", "10.0.0.1", ir.TCP, 2000))
	assert.False(t, w.allowed("10.0.0.9", "10.0.0.1", ir.TCP, 2001))
	assert.False(t, w.allowed("10.0.0.9", "10.0.0.1", ir.UDP, 1500))
	assert.True(t, w.allowed("10.0.0.9", "10.0.0.1", ir.SCTP, 7))
}

func TestNilAndUnknownInputsAreIgnored(t *testing.T) {
	e := policy.New(policy.Config{})
	e.UpsertNamespace(nil)
	assert.NoError(t, e.UpsertPod(nil))
	assert.NoError(t, e.UpsertNetworkPolicy(nil))
	e.DeleteNamespace("nope")
	e.DeletePod("x", "nope")
	e.DeleteNetworkPolicy("x", "nope")
	d := e.Delta()
	assert.True(t, d.Empty())
	assert.Equal(t, d.Base, d.Generation)
	assert.NoError(t, e.Snapshot().Validate())
}

func TestGenerationsChainAndCheckpointEndsTheDelta(t *testing.T) {
	e := policy.New(policy.Config{})
	require.NoError(t, e.UpsertPod(pod("x", "a", nil, "10.0.0.1")))
	d1 := e.Delta()
	assert.Equal(t, uint64(0), d1.Base)
	assert.Equal(t, uint64(1), d1.Generation)
	require.NoError(t, e.UpsertNetworkPolicy(pt.NetworkPolicy("x", "deny", pt.WithPodSelector(pt.MatchLabels(nil)))))
	snap := e.Checkpoint()
	assert.Equal(t, uint64(2), snap.Generation)
	d := e.Delta()
	assert.True(t, d.Empty(), "the checkpoint took the pending change")
	assert.Equal(t, uint64(2), d.Base)
	require.NoError(t, e.UpsertPod(pod("x", "b", nil, "10.0.0.2")))
	d3 := e.Delta()
	assert.Equal(t, uint64(2), d3.Base)
	assert.Equal(t, uint64(3), d3.Generation)
	require.NoError(t, snap.Apply(d3))
	assert.Len(t, snap.Endpoints, 2)
}

func TestSnapshotHasNoSideEffect(t *testing.T) {
	e := policy.New(policy.Config{})
	require.NoError(t, e.UpsertPod(pod("x", "a", nil, "10.0.0.1")))
	base := e.Checkpoint()
	require.NoError(t, e.UpsertNetworkPolicy(pt.NetworkPolicy("x", "deny", pt.WithPodSelector(pt.MatchLabels(nil)))))
	s1 := e.Snapshot()
	s2 := e.Snapshot()
	assert.Equal(t, s1, s2, "reading twice without a change reads the same state")
	assert.Greater(t, s1.Generation, base.Generation, "a changed state has a new generation")

	d := e.Delta()
	assert.False(t, d.Empty(), "the snapshots left the change pending")
	assert.Equal(t, base.Generation, d.Base)
	assert.Equal(t, s1.Generation, d.Generation, "the delta ends at the state the snapshot read")
	require.NoError(t, base.Apply(d))
	assert.Equal(t, s1, base, "base + delta = snapshot")

	// A change undone before the next delta: the snapshot between names
	// its own state, and the delta leads back from it.
	require.NoError(t, e.UpsertPod(pod("x", "b", nil, "10.0.0.2")))
	mid := e.Snapshot()
	assert.Len(t, mid.Endpoints, 2)
	e.DeletePod("x", "b")
	d = e.Delta()
	assert.True(t, d.Empty())
	assert.Equal(t, s1.Generation, d.Base)
	assert.NotEqual(t, mid.Generation, d.Generation, "the state after the delete is not the one the snapshot read")
	require.NoError(t, base.Apply(d))
	after := e.Snapshot()
	assert.Equal(t, d.Generation, after.Generation)
	assert.Equal(t, after, base)
}
