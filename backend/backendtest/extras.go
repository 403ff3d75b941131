package backendtest

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	pt "github.com/palisade-net/palisade/policy/policytest"
)

// Extras returns scenarios the upstream suite lacks and a kernel backend
// most easily gets wrong: a named port that means a different number on
// each pod, an ipBlock whose except carves one pod out of a wide block while
// labels change under it, and a UDP port range.
func Extras() []pt.Scenario {
	pods := pt.StandardPods()
	table := func(edit func(r *pt.Reachability)) *pt.Reachability {
		r := pt.NewReachability(pods, true)
		if edit != nil {
			edit(r)
		}
		return r
	}
	check := func(proto corev1.Protocol, port int, r *pt.Reachability) pt.Check {
		return pt.Check{Port: port, Protocol: proto, Expected: r}
	}
	return []pt.Scenario{
		{
			// x/a serves "web" on 80, x/b on 81; a policy on every pod of x
			// admits named port "web" only.
			Name: "backendtest/named-port-differs-per-pod",
			Steps: []pt.Step{{
				Name: "x admits only its pods' named port web",
				Mutate: func(c *pt.Cluster) {
					addWebPort(c, "x", "a", 80)
					addWebPort(c, "x", "b", 81)
					c.SetPolicy(pt.NetworkPolicy("x", "web-only", pt.WithPodSelector(pt.MatchLabels(nil)),
						pt.WithIngress(pt.IngressRule(pt.Ports(pt.NamedPort("web"))))))
				},
				Checks: []pt.Check{
					check(corev1.ProtocolTCP, 80, table(func(r *pt.Reachability) {
						r.ExpectAllIngress("x/b", false)
						r.ExpectAllIngress("x/c", false)
					})),
					check(corev1.ProtocolTCP, 81, table(func(r *pt.Reachability) {
						r.ExpectAllIngress("x/a", false)
						r.ExpectAllIngress("x/c", false)
					})),
					check(corev1.ProtocolUDP, 80, table(func(r *pt.Reachability) {
						r.ExpectAllIngress("x/a", false)
						r.ExpectAllIngress("x/b", false)
						r.ExpectAllIngress("x/c", false)
					})),
				},
			}},
		},
		{
			// y/a may reach every address of a wide block but x/b's; then
			// y/a loses the label the policy selects, then gets it back.
			Name: "backendtest/ipblock-except-with-label-changes",
			Steps: []pt.Step{
				{
					Name: "y/a egress to a wide block except x/b",
					Mutate: func(c *pt.Cluster) {
						c.SetPolicy(pt.NetworkPolicy("y", "egress-block", pt.WithPodSelector(pt.MatchLabels(map[string]string{"pod": "a"})),
							pt.WithEgress(pt.EgressRule(pt.Peers(wideBlockExcept(c, "x", "b")...)))))
					},
					Checks: []pt.Check{check(corev1.ProtocolTCP, 80, table(func(r *pt.Reachability) {
						r.Expect("y/a", "x/b", false)
					}))},
				},
				{
					Name:   "y/a relabelled: no longer selected",
					Mutate: func(c *pt.Cluster) { c.LabelPod("y", "a", map[string]string{"pod": "a-off"}) },
					Checks: []pt.Check{check(corev1.ProtocolUDP, 81, table(nil))},
				},
				{
					Name:   "y/a selected again",
					Mutate: func(c *pt.Cluster) { c.LabelPod("y", "a", map[string]string{"pod": "a"}) },
					Checks: []pt.Check{check(corev1.ProtocolSCTP, 80, table(func(r *pt.Reachability) {
						r.Expect("y/a", "x/b", false)
					}))},
				},
			},
		},
		{
			// z admits UDP 80-81 from namespace x only.
			Name: "backendtest/udp-port-range-from-namespace",
			Steps: []pt.Step{{
				Name: "z admits UDP 80-81 from x",
				Mutate: func(c *pt.Cluster) {
					c.SetPolicy(pt.NetworkPolicy("z", "udp-range", pt.WithPodSelector(pt.MatchLabels(nil)),
						pt.WithIngress(pt.IngressRule(
							pt.Peers(pt.NamespacePeer(pt.MatchLabels(map[string]string{"ns": "x"}))),
							pt.Ports(pt.Port(80, pt.WithProtocol(corev1.ProtocolUDP), pt.WithEndPort(81)))))))
				},
				Checks: []pt.Check{
					check(corev1.ProtocolUDP, 81, table(func(r *pt.Reachability) {
						for _, to := range []string{"z/a", "z/b", "z/c"} {
							r.ExpectPeer(pt.Peer{Namespace: "y"}, pt.Peer{Namespace: "z", Pod: to[2:]}, false)
							r.ExpectPeer(pt.Peer{Namespace: "z"}, pt.Peer{Namespace: "z", Pod: to[2:]}, false)
						}
					})),
					check(corev1.ProtocolTCP, 80, table(func(r *pt.Reachability) {
						r.ExpectAllIngress("z/a", false)
						r.ExpectAllIngress("z/b", false)
						r.ExpectAllIngress("z/c", false)
					})),
				},
			}},
		},
	}
}

// addWebPort gives a model pod one more container serving TCP port under
// the name "web".
func addWebPort(c *pt.Cluster, ns, name string, port int32) {
	p := c.Pod(ns, name)
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
		Name:  "web",
		Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
	})
	c.SetPod(p)
}

// wideBlockExcept returns, for each address of the pod, an ipBlock of the
// /8 (IPv4) or /16 (IPv6) around it with the address itself excepted.
func wideBlockExcept(c *pt.Cluster, ns, name string) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for _, a := range c.PodIPs(ns, name) {
		bits := 8
		if a.Is6() {
			bits = 16
		}
		out = append(out, pt.IPBlockPeer(netip.PrefixFrom(a, bits).Masked().String(), netip.PrefixFrom(a, a.BitLen()).String()))
	}
	return out
}
