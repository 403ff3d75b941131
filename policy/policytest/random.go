package policytest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Random draws clusters and changes to them for randomized tests that run
// real traffic: pod addresses are unique (a lab can hold them), selectors,
// labels, ports and ipBlocks are drawn from small pools so that they overlap
// and collide often.
type Random struct {
	rng *rand.Rand
	// DualStack gives every other pod an IPv6 address too (and some pods
	// IPv6 only).
	DualStack bool
	// Nodes spreads pods over node-0 ... node-(Nodes-1).
	Nodes int
}

// NewRandom returns a generator seeded with seed.
func NewRandom(seed uint64, nodes int, dualStack bool) *Random {
	return &Random{rng: rand.New(rand.NewPCG(seed, seed^0xc0ffee)), DualStack: dualStack, Nodes: max(nodes, 1)}
}

var (
	randomNamespaces = []string{"a", "b", "c"}
	randomPods       = []string{"p0", "p1"}
	randomKeys       = []string{"app", "tier"}
	randomValues     = []string{"x", "y"}
)

// RandomExternals are addresses that belong to no pod, for flows from and
// to outside the cluster.
var RandomExternals = []netip.Addr{netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("fd00:9::1")}

func (r *Random) pick(n int) int { return r.rng.IntN(n) }

func (r *Random) labels() map[string]string {
	m := map[string]string{}
	for _, k := range randomKeys {
		if r.pick(3) > 0 {
			m[k] = randomValues[r.pick(len(randomValues))]
		}
	}
	return m
}

// Cluster draws a cluster: three namespaces, two pods in each, no policy.
func (r *Random) Cluster() *Cluster {
	c := NewCluster()
	for ni, ns := range randomNamespaces {
		c.SetNamespace(Namespace(ns, r.labels()))
		for pi, name := range randomPods {
			idx := ni*len(randomPods) + pi
			v4 := fmt.Sprintf("10.1.%d.%d", ni, pi+1)
			v6 := fmt.Sprintf("fd00:1:%d::%d", ni, pi+1)
			ips := []string{v4}
			if r.DualStack {
				switch idx % 3 {
				case 1:
					ips = []string{v4, v6}
				case 2:
					ips = []string{v6, v4}
				}
			}
			port := int32(80 + r.pick(2))
			proto := []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP}[r.pick(2)]
			c.SetPod(Pod(ns, name, WithLabels(r.labels()), WithIPs(ips...),
				OnNode(fmt.Sprintf("node-%d", idx%r.Nodes)),
				WithContainerPorts(ContainerPort("web", port, proto))))
		}
	}
	return c
}

func (r *Random) selector() *metav1.LabelSelector {
	s := &metav1.LabelSelector{}
	switch r.pick(4) {
	case 0: // everything
	case 1:
		s.MatchLabels = map[string]string{randomKeys[r.pick(2)]: randomValues[r.pick(2)]}
	case 2:
		ops := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}
		req := metav1.LabelSelectorRequirement{Key: randomKeys[r.pick(2)], Operator: ops[r.pick(len(ops))]}
		if req.Operator == metav1.LabelSelectorOpIn || req.Operator == metav1.LabelSelectorOpNotIn {
			req.Values = []string{randomValues[r.pick(2)]}
		}
		s.MatchExpressions = []metav1.LabelSelectorRequirement{req}
	case 3:
		s.MatchLabels = map[string]string{"app": randomValues[r.pick(2)], "tier": randomValues[r.pick(2)]}
	}
	return s
}

var randomBlocks = []struct {
	cidr   string
	except []string
}{
	{"10.1.0.0/16", nil},
	{"10.1.0.0/16", []string{"10.1.1.0/24"}},
	{"10.1.1.0/24", []string{"10.1.1.2/32"}},
	{"10.9.0.0/16", nil},
	{"0.0.0.0/0", []string{"10.1.0.0/24", "10.1.2.1/32"}},
	{"fd00:1::/32", []string{"fd00:1:1::/48"}},
	{"fd00:9::/32", nil},
	{"::/0", []string{"fd00:1:2::1/128"}},
}

func (r *Random) peer() networkingv1.NetworkPolicyPeer {
	switch r.pick(4) {
	case 0:
		return networkingv1.NetworkPolicyPeer{PodSelector: r.selector()}
	case 1:
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: r.selector()}
	case 2:
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: r.selector(), PodSelector: r.selector()}
	}
	b := randomBlocks[r.pick(len(randomBlocks))]
	return IPBlockPeer(b.cidr, b.except...)
}

func (r *Random) ports() []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for n := r.pick(3); n > 0; n-- {
		var p networkingv1.NetworkPolicyPort
		proto := []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}[r.pick(3)]
		p.Protocol = &proto
		switch r.pick(4) {
		case 0: // every port of the protocol
		case 1:
			port := intstr.FromString("web")
			p.Port = &port
		case 2:
			port := intstr.FromInt32(int32(80 + r.pick(2)))
			p.Port = &port
		case 3:
			port, end := intstr.FromInt32(80), int32(81)
			p.Port, p.EndPort = &port, &end
		}
		out = append(out, p)
	}
	return out
}

// Policy draws a NetworkPolicy.
func (r *Random) Policy(ns, name string) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	np.Spec.PodSelector = *r.selector()
	switch r.pick(4) {
	case 0:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 1:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	case 2:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	for n := r.pick(3); n > 0; n-- {
		var rule networkingv1.NetworkPolicyIngressRule
		for m := r.pick(3); m > 0; m-- {
			rule.From = append(rule.From, r.peer())
		}
		rule.Ports = r.ports()
		np.Spec.Ingress = append(np.Spec.Ingress, rule)
	}
	for n := r.pick(3); n > 0; n-- {
		var rule networkingv1.NetworkPolicyEgressRule
		for m := r.pick(3); m > 0; m-- {
			rule.To = append(rule.To, r.peer())
		}
		rule.Ports = r.ports()
		np.Spec.Egress = append(np.Spec.Egress, rule)
	}
	return np
}

// Mutate applies one to three random changes: a policy added, replaced or
// deleted, a pod or a namespace relabelled.
func (r *Random) Mutate(c *Cluster) {
	for n := 1 + r.pick(3); n > 0; n-- {
		ns := randomNamespaces[r.pick(len(randomNamespaces))]
		switch r.pick(5) {
		case 0, 1:
			c.SetPolicy(r.Policy(ns, fmt.Sprintf("np%d", r.pick(3))))
		case 2:
			c.DeletePolicy(ns, fmt.Sprintf("np%d", r.pick(3)))
		case 3:
			p := c.Pod(ns, randomPods[r.pick(len(randomPods))])
			p.Labels = r.labels()
			c.SetPod(p)
		case 4:
			obj := c.Namespace(ns)
			obj.Labels = r.labels()
			c.SetNamespace(obj)
		}
	}
}
