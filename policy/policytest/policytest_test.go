package policytest

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

func TestScenariosWellFormed(t *testing.T) {
	upstream := Scenarios()
	assert.Len(t, upstream, 48, "the upstream suite has 42 TCP, 3 UDP and 3 SCTP scenarios")
	names := map[string]bool{}
	titles := map[string]bool{}
	for i, sc := range append(append(upstream, Extras()...), ClusterScenarios()...) {
		isExtra := i >= len(upstream)
		t.Run(sc.Name, func(t *testing.T) {
			assert.False(t, names[sc.Name], "duplicate name")
			names[sc.Name] = true
			if isExtra {
				assert.True(t, strings.HasPrefix(sc.Name, "extra/") || strings.HasPrefix(sc.Name, "cluster/"))
				assert.Empty(t, sc.Upstream)
			} else {
				assert.NotEmpty(t, sc.Upstream)
				assert.False(t, titles[sc.Upstream], "duplicate upstream title %q", sc.Upstream)
				titles[sc.Upstream] = true
			}
			require.NotEmpty(t, sc.Steps)
			for _, st := range sc.Steps {
				assert.NotEmpty(t, st.Name)
				assert.NotNil(t, st.Mutate, "step %q", st.Name)
				require.NotEmpty(t, st.Checks, "step %q", st.Name)
				for _, ch := range st.Checks {
					require.NotNil(t, ch.Expected, "step %q %s", st.Name, ch)
					assert.NoError(t, ch.Expected.Err(), "step %q %s", st.Name, ch)
					assert.Equal(t, StandardPods(), ch.Expected.Pods())
					assert.Contains(t, []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}, ch.Protocol)
					assert.Positive(t, ch.Port)
				}
			}
		})
	}
}

// TestScenarioMutationsDeterministic applies every scenario's mutations
// twice, from fresh clusters, in each family mode: the resulting objects must
// be the same, and valid enough to name only pods of the model.
func TestScenarioMutationsDeterministic(t *testing.T) {
	for _, fams := range [][]Family{{IPv4}, {IPv6}, {IPv4, IPv6}} {
		m := StandardModel(fams...)
		for _, sc := range append(append(Scenarios(), Extras()...), ClusterScenarios()...) {
			run := func() []*Cluster {
				c, err := m.Cluster()
				require.NoError(t, err)
				var states []*Cluster
				for _, st := range sc.Steps {
					c = c.Clone()
					st.Mutate(c)
					states = append(states, c)
				}
				return states
			}
			a, b := run(), run()
			for i := range a {
				assert.Empty(t, Changes(a[i], b[i]), "%s %v step %d", sc.Name, fams, i+1)
			}
		}
	}
}

func TestIPBlockScenarioFollowsFamilies(t *testing.T) {
	var sc Scenario
	for _, s := range Scenarios() {
		if s.Name == "egress-to-cidr-except" {
			sc = s
		}
	}
	require.NotEmpty(t, sc.Steps)
	c, err := StandardModel(IPv4, IPv6).Cluster()
	require.NoError(t, err)
	sc.Steps[0].Mutate(c)
	np := c.Policy("x", "allow-client-a-via-cidr-egress-rule")
	require.NotNil(t, np)
	want := []networkingv1.NetworkPolicyPeer{
		IPBlockPeer("0.0.0.0/4", "10.0.1.2/32"),
		IPBlockPeer("f000::/4", "fd00::1:2/128"),
	}
	assert.Empty(t, cmp.Diff(want, np.Spec.Egress[0].To))
	assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, np.Spec.PolicyTypes)
}

func TestStandardModel(t *testing.T) {
	m := StandardModel(IPv4, IPv6)
	c, err := m.Cluster()
	require.NoError(t, err)
	assert.Len(t, c.Namespaces(), 3)
	assert.Len(t, c.Pods(), 9)
	assert.Empty(t, c.Policies())

	ns := c.Namespace("y")
	assert.Equal(t, map[string]string{"ns": "y", NamespaceNameLabel: "y"}, ns.Labels)

	p := c.Pod("z", "c")
	require.NotNil(t, p)
	assert.Equal(t, map[string]string{"pod": "c"}, p.Labels)
	assert.Equal(t, "10.0.3.3", p.Status.PodIP)
	assert.Equal(t, []corev1.PodIP{{IP: "10.0.3.3"}, {IP: "fd00::3:3"}}, p.Status.PodIPs)
	assert.Equal(t, DefaultNode, p.Spec.NodeName)
	var ports []string
	for _, ct := range p.Spec.Containers {
		for _, cp := range ct.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d/%s", cp.Name, cp.ContainerPort, cp.Protocol))
		}
	}
	assert.Equal(t, []string{
		"serve-80-tcp=80/TCP", "serve-80-udp=80/UDP", "serve-80-sctp=80/SCTP",
		"serve-81-tcp=81/TCP", "serve-81-udp=81/UDP", "serve-81-sctp=81/SCTP",
	}, ports)

	a, ok := c.PodIP("x", "a", IPv6)
	assert.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("fd00::1:1"), a)

	v6 := StandardModel(IPv6)
	p, err = v6.PodObject("x", "b")
	require.NoError(t, err)
	assert.Equal(t, "fd00::1:2", p.Status.PodIP)

	second := StandardModel()
	second.Node = func(ns, pod string) string {
		if ns == "z" {
			return "node-2"
		}
		return DefaultNode
	}
	p, err = second.PodObject("z", "a")
	require.NoError(t, err)
	assert.Equal(t, "node-2", p.Spec.NodeName)

	_, err = m.PodObject("w", "a")
	assert.Error(t, err)
}

func TestClusterCopies(t *testing.T) {
	c := NewCluster()
	p := Pod("x", "a", WithLabels(map[string]string{"pod": "a"}))
	c.SetPod(p)
	p.Labels["pod"] = "changed"
	assert.Equal(t, "a", c.Pod("x", "a").Labels["pod"], "SetPod stores a copy")

	got := c.Pod("x", "a")
	got.Labels["pod"] = "changed"
	assert.Equal(t, "a", c.Pod("x", "a").Labels["pod"], "Pod returns a copy")

	clone := c.Clone()
	clone.LabelPod("x", "a", map[string]string{"pod": "b"})
	assert.Equal(t, "a", c.Pod("x", "a").Labels["pod"], "a clone is independent")
	assert.Equal(t, "b", clone.Pod("x", "a").Labels["pod"])

	assert.False(t, c.LabelPod("x", "missing", nil))
	assert.False(t, c.LabelNamespace("missing", nil))
	assert.Nil(t, c.Pod("x", "missing"))
	assert.Nil(t, c.Policy("x", "missing"))
}

// recorder is a Loader that records what it is fed.
type recorder struct{ calls []string }

func (r *recorder) UpsertNamespace(ns *corev1.Namespace) {
	r.calls = append(r.calls, "upsert Namespace "+ns.Name)
}
func (r *recorder) DeleteNamespace(name string) { r.calls = append(r.calls, "delete Namespace "+name) }
func (r *recorder) UpsertPod(p *corev1.Pod) error {
	r.calls = append(r.calls, "upsert Pod "+p.Namespace+"/"+p.Name)
	return nil
}
func (r *recorder) DeletePod(ns, name string) { r.calls = append(r.calls, "delete Pod "+ns+"/"+name) }
func (r *recorder) UpsertNetworkPolicy(np *networkingv1.NetworkPolicy) error {
	r.calls = append(r.calls, "upsert NetworkPolicy "+np.Namespace+"/"+np.Name)
	if np.Name == "bad" {
		return fmt.Errorf("invalid")
	}
	return nil
}
func (r *recorder) DeleteNetworkPolicy(ns, name string) {
	r.calls = append(r.calls, "delete NetworkPolicy "+ns+"/"+name)
}

func TestLoad(t *testing.T) {
	prev := NewCluster()
	prev.SetNamespace(Namespace("x", nil))
	prev.SetNamespace(Namespace("old", nil))
	prev.SetPod(Pod("x", "a"))
	prev.SetPod(Pod("x", "b"))
	prev.SetPolicy(NetworkPolicy("x", "p1"))
	prev.SetPolicy(NetworkPolicy("x", "p2"))

	next := prev.Clone()
	next.DeleteNamespace("old")
	next.SetNamespace(Namespace("y", nil))
	next.LabelPod("x", "b", map[string]string{"k": "v"})
	next.DeletePod("x", "a")
	next.DeletePolicy("x", "p1")
	next.SetPolicy(NetworkPolicy("x", "bad"))

	var r recorder
	err := Load(&r, prev, next)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "upsert NetworkPolicy x/bad: invalid")
	assert.Equal(t, []string{
		"upsert Namespace y",
		"upsert Pod x/b",
		"upsert NetworkPolicy x/bad",
		"delete NetworkPolicy x/p1",
		"delete Pod x/a",
		"delete Namespace old",
	}, r.calls)

	r = recorder{}
	require.NoError(t, Load(&r, nil, prev))
	assert.Equal(t, []string{
		"upsert Namespace old", "upsert Namespace x",
		"upsert Pod x/a", "upsert Pod x/b",
		"upsert NetworkPolicy x/p1", "upsert NetworkPolicy x/p2",
	}, r.calls)

	assert.Empty(t, Changes(prev, prev.Clone()))
}

func TestReachability(t *testing.T) {
	r := NewReachability(StandardPods(), true)
	r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
	r.ExpectPeer(Peer{Namespace: "y", Pod: "a"}, Peer{Namespace: "x", Pod: "b"}, true)
	r.ExpectAllEgress("z/c", false)
	r.Expect("z/c", "z/c", true)
	require.NoError(t, r.Err())

	assert.False(t, r.Allowed("y/b", "x/a"))
	assert.True(t, r.Allowed("y/a", "x/b"))
	assert.False(t, r.Allowed("z/c", "y/a"))
	assert.True(t, r.Allowed("z/c", "z/c"))
	assert.True(t, r.Allowed("x/a", "y/a"))

	r.Expect("x/a", "w/a", true)
	r.ExpectAllIngress("nope", false)
	r.ExpectPeer(Peer{Namespace: "w"}, Peer{}, false)
	err := r.Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown pod "w/a"`)
	assert.Contains(t, err.Error(), `unknown pod "nope"`)
	assert.Contains(t, err.Error(), "matches no source pod")
}

func TestCompare(t *testing.T) {
	pods := []string{"x/a", "x/b"}
	want := NewReachability(pods, true)
	want.ExpectPeer(Peer{}, Peer{Pod: "a"}, false) // covers x/a -> x/a

	obs := NewReachability(pods, true)
	obs.Expect("x/b", "x/a", false)

	assert.True(t, Compare(want, obs, CompareOptions{LoopbackAllowed: true}).OK())
	assert.True(t, Compare(want, obs, CompareOptions{IgnoreLoopback: true}).OK())

	c := Compare(want, obs, CompareOptions{})
	require.False(t, c.OK())
	assert.Equal(t, []Mismatch{{From: "x/a", To: "x/a", Expected: false, Observed: true}}, c.Mismatches)
	wantText := `1 of 4 pairs differ (rows: from, columns: to; "." allowed, "X" denied)
expected:
-   x/a x/b
x/a X   .
x/b X   .
observed:
-   x/a x/b
x/a .   .
x/b X   .
comparison ("!" differs):
-   x/a x/b
x/a !   .
x/b .   .
  x/a -> x/a: expected denied, observed allowed
`
	assert.Empty(t, cmp.Diff(wantText, c.String()))

	other := Compare(want, NewReachability([]string{"x/a"}, true), CompareOptions{})
	assert.False(t, other.OK())
	assert.Contains(t, other.String(), "pod lists differ")
}

func TestObserve(t *testing.T) {
	c := NewCluster()
	c.SetPod(Pod("x", "a", WithIPs("10.0.1.1", "fd00::1:1")))
	c.SetPod(Pod("x", "b", WithIPs("10.0.1.2")))
	var probed []string
	got := Observe(c, []string{"x/a", "x/b"}, IPv6, corev1.ProtocolUDP, 53, func(f Flow) bool {
		probed = append(probed, f.String())
		return true
	})
	assert.Equal(t, []string{"x/a (fd00::1:1) -> x/a (fd00::1:1) UDP/53"}, probed)
	assert.True(t, got.Allowed("x/a", "x/a"))
	assert.False(t, got.Allowed("x/a", "x/b"), "x/b has no IPv6 address")
}

func TestBuilders(t *testing.T) {
	np := NetworkPolicy("x", "p",
		WithPodSelector(podLabel("a")),
		WithIngress(IngressRule(Peers(IPBlockPeer("10.0.0.0/8", "10.1.0.0/16")), Ports(Port(80, WithEndPort(90)), NamedPort("dns", WithProtocol(corev1.ProtocolUDP))))),
		WithEgress(),
	)
	assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, np.Spec.PolicyTypes)
	assert.NotNil(t, np.Spec.Egress)
	assert.Empty(t, np.Spec.Egress)
	require.Len(t, np.Spec.Ingress, 1)
	ports := np.Spec.Ingress[0].Ports
	require.Len(t, ports, 2)
	assert.Equal(t, int32(80), ports[0].Port.IntVal)
	assert.Equal(t, int32(90), *ports[0].EndPort)
	assert.Nil(t, ports[0].Protocol)
	assert.Equal(t, "dns", ports[1].Port.StrVal)
	assert.Equal(t, corev1.ProtocolUDP, *ports[1].Protocol)

	p := Pod("x", "h", HostNetwork(), WithPhase(corev1.PodSucceeded), OnNode("n"), WithIPs())
	assert.True(t, p.Spec.HostNetwork)
	assert.Equal(t, corev1.PodSucceeded, p.Status.Phase)
	assert.Equal(t, "n", p.Spec.NodeName)
	assert.Empty(t, p.Status.PodIP)
}
