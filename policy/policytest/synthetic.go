package policytest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// SyntheticConfig sizes a synthetic cluster for benchmarks.
type SyntheticConfig struct {
	Pods       int
	Namespaces int
	Policies   int
	// Nodes the pods are spread over (default 1).
	Nodes int
	// Seed makes the cluster reproducible.
	Seed uint64
}

// Synthetic builds a cluster shaped like a real multi-tenant one: pods spread
// evenly over namespaces and nodes, each with app/role/version labels and
// named container ports; namespaces labelled by team and environment; and
// the policies a platform team writes: per-namespace default deny, tier
// rules by pod selector with numbered and named ports, ingress from other
// namespaces by label (alone and ANDed with a pod selector), egress to
// CIDRs with excepts, and port ranges. Pods get one IPv4 address each, from
// 10.128.0.0/9.
func Synthetic(cfg SyntheticConfig) *Cluster {
	if cfg.Namespaces < 1 {
		cfg.Namespaces = 1
	}
	if cfg.Nodes < 1 {
		cfg.Nodes = 1
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed))
	c := NewCluster()
	teams := max(cfg.Namespaces/10, 1)
	for i := range cfg.Namespaces {
		env := "prod"
		if i%3 == 0 {
			env = "staging"
		}
		c.SetNamespace(Namespace(SyntheticNamespace(i), map[string]string{
			"team": fmt.Sprintf("team-%d", i%teams),
			"env":  env,
		}))
	}
	roles := []string{"frontend", "backend", "db", "cache", "worker"}
	for i := range cfg.Pods {
		c.SetPod(SyntheticPod(i, cfg.Namespaces, cfg.Nodes, map[string]string{
			"app":     fmt.Sprintf("app-%d", i%7),
			"role":    roles[i%len(roles)],
			"version": fmt.Sprintf("v%d", rng.IntN(3)),
		}))
	}
	for i := range cfg.Policies {
		ns := SyntheticNamespace(i % cfg.Namespaces)
		c.SetPolicy(syntheticPolicy(i, ns, teams, rng))
	}
	return c
}

// SyntheticNamespace names the i-th synthetic namespace.
func SyntheticNamespace(i int) string { return fmt.Sprintf("ns-%d", i) }

// SyntheticIP is the address of the i-th synthetic pod.
func SyntheticIP(i int) netip.Addr {
	base := netip.MustParseAddr("10.128.0.0").As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(i+1)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// SyntheticPod builds the i-th synthetic pod with the given labels.
func SyntheticPod(i, namespaces, nodes int, labels map[string]string) *corev1.Pod {
	return Pod(SyntheticNamespace(i%namespaces), fmt.Sprintf("pod-%d", i),
		WithLabels(labels),
		WithIPs(SyntheticIP(i).String()),
		OnNode(fmt.Sprintf("node-%d", i%nodes)),
		WithContainerPorts(
			ContainerPort("http", 8080, corev1.ProtocolTCP),
			ContainerPort("metrics", int32(9000+i%5), corev1.ProtocolTCP),
			ContainerPort("dns", 5353, corev1.ProtocolUDP),
		))
}

func syntheticPolicy(i int, ns string, teams int, rng *rand.Rand) *networkingv1.NetworkPolicy {
	name := fmt.Sprintf("np-%d", i)
	app := fmt.Sprintf("app-%d", rng.IntN(7))
	team := fmt.Sprintf("team-%d", rng.IntN(teams))
	switch i % 6 {
	case 0:
		return NetworkPolicy(ns, name, WithPodSelector(MatchLabels(nil)),
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
	case 1:
		return NetworkPolicy(ns, name, WithPodSelector(MatchLabels(map[string]string{"app": app, "role": "backend"})),
			WithIngress(IngressRule(
				Peers(PodPeer(MatchLabels(map[string]string{"role": "frontend"}))),
				Ports(Port(8080), Port(9000, WithEndPort(9004))))))
	case 2:
		return NetworkPolicy(ns, name, WithPodSelector(MatchLabels(map[string]string{"app": app})),
			WithIngress(IngressRule(
				Peers(NamespacePeer(MatchLabels(map[string]string{"team": team}))),
				Ports(NamedPort("http"), NamedPort("metrics")))))
	case 3:
		return NetworkPolicy(ns, name, WithPodSelector(MatchLabels(map[string]string{"role": "db"})),
			WithIngress(IngressRule(
				Peers(PodInNamespacePeer(
					MatchLabels(map[string]string{"env": "prod"}),
					MatchExpressions(Requirement("role", "In", "backend", "worker")))),
				Ports(Port(5432)))))
	case 4:
		return NetworkPolicy(ns, name, WithPodSelector(MatchLabels(map[string]string{"app": app})),
			WithPolicyTypes(networkingv1.PolicyTypeEgress),
			WithEgress(
				EgressRule(Peers(IPBlockPeer("10.0.0.0/8", "10.128.0.0/16", fmt.Sprintf("10.%d.0.0/16", 1+rng.IntN(100)))),
					Ports(Port(443), Port(53, WithProtocol(corev1.ProtocolUDP)))),
				EgressRule(Peers(PodPeer(MatchLabels(map[string]string{"role": "cache"}))), Ports(NamedPort("dns", WithProtocol(corev1.ProtocolUDP))))))
	}
	return NetworkPolicy(ns, name, WithPodSelector(MatchExpressions(Requirement("version", "NotIn", "v0"))),
		WithIngress(IngressRule(
			Peers(PodPeer(MatchLabels(map[string]string{"app": app})), IPBlockPeer(fmt.Sprintf("192.168.%d.0/24", rng.IntN(256)))),
			Ports(Port(8000, WithEndPort(8100))))))
}
