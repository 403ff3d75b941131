package policytest

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The scenarios below transcribe the upstream Kubernetes e2e suite,
// kubernetes/kubernetes test/e2e/network/netpol/network_policy.go, in the
// version that probes the full x/y/z × a/b/c model (commit 9db638c0); later
// versions trim each test to the pods it needs, with the same expectations on
// those pods. Each expected table repeats upstream's calls (NewReachability
// default true, then ExpectPeer / ExpectAllIngress / ExpectAllEgress /
// Expect) in the same order. Older upstream versions added an egress rule
// allowing UDP/53 (DNS) to some egress policies; it changes none of the
// TCP/80-81 expectations and is left out, as in the version transcribed.

var (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)

// table returns a table over the standard pods, every pair allowed, then
// changed by set.
func table(set func(r *Reachability)) *Reachability {
	r := NewReachability(StandardPods(), true)
	if set != nil {
		set(r)
	}
	return r
}

func check(proto corev1.Protocol, port int, r *Reachability) Check {
	return Check{Port: port, Protocol: proto, Expected: r}
}

// podLabel selects pods labelled pod=<name>.
func podLabel(name string) *metav1.LabelSelector {
	return MatchLabels(map[string]string{"pod": name})
}

// nsNamed selects the namespace by its kubernetes.io/metadata.name label.
func nsNamed(name string) *metav1.LabelSelector {
	return MatchLabels(map[string]string{NamespaceNameLabel: name})
}

// everything is an empty selector (matchLabels present but empty, as
// upstream writes it).
func everything() *metav1.LabelSelector {
	return MatchLabels(map[string]string{})
}

// add returns a mutation that creates (or replaces) policies.
func add(nps ...*networkingv1.NetworkPolicy) func(*Cluster) {
	return func(c *Cluster) {
		for _, np := range nps {
			c.SetPolicy(np)
		}
	}
}

// Scenarios returns every scenario of the upstream network-policy e2e suite,
// in upstream's order: the TCP context, then the UDP and SCTP contexts.
func Scenarios() []Scenario {
	var out []Scenario
	out = append(out, tcpScenarios()...)
	out = append(out, protocolScenarios(udp, "udp", "NetworkPolicy between server and client using UDP")...)
	out = append(out, protocolScenarios(sctp, "sctp", "NetworkPolicy between server and client using SCTP")...)
	return out
}

func tcpScenarios() []Scenario {
	return []Scenario{
		// Upstream: "should support a 'default-deny-ingress' policy"
		{
			Name:     "default-deny-ingress",
			Upstream: "should support a 'default-deny-ingress' policy",
			Steps: []Step{{
				Name:   "deny-ingress in x",
				Mutate: add(NetworkPolicy("x", "deny-ingress", WithPodSelector(&metav1.LabelSelector{}), WithIngress())),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
				}))},
			}},
		},

		// Upstream: "should support a 'default-deny-all' policy"
		{
			Name:     "default-deny-all",
			Upstream: "should support a 'default-deny-all' policy",
			Steps: []Step{{
				Name:   "deny-all in x",
				Mutate: add(NetworkPolicy("x", "deny-all", WithPodSelector(&metav1.LabelSelector{}), WithIngress(), WithEgress())),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
					r.ExpectPeer(Peer{Namespace: "x"}, Peer{}, false)
				}))},
			}},
		},

		// Upstream: "should enforce policy to allow traffic from pods within server namespace based on PodSelector"
		{
			Name:     "ingress-from-pod-in-same-namespace",
			Upstream: "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
			Steps: []Step{{
				Name: "x-a-allows-x-b",
				Mutate: add(NetworkPolicy("x", "x-a-allows-x-b", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(PodPeer(podLabel("b"))))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectAllIngress("x/a", false)
					r.Expect("x/b", "x/a", true)
				}))},
			}},
		},

		// Upstream: "should enforce policy to allow ingress traffic for a target"
		{
			Name:     "ingress-for-a-target",
			Upstream: "should enforce policy to allow ingress traffic for a target",
			Steps: []Step{{
				Name: "deny-all ingress in x, allow-all-to-a",
				Mutate: add(
					NetworkPolicy("x", "deny-all", WithPodSelector(&metav1.LabelSelector{}), WithIngress()),
					NetworkPolicy("x", "allow-all-to-a", WithPodSelector(podLabel("a")),
						WithIngress(IngressRule(Peers(PodInNamespacePeer(&metav1.LabelSelector{}, &metav1.LabelSelector{}))))),
				),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectAllIngress("x/a", true)
					r.ExpectAllIngress("x/b", false)
					r.ExpectAllIngress("x/c", false)
				}))},
			}},
		},

		// Upstream: "should enforce policy to allow ingress traffic from pods in all namespaces"
		{
			Name:     "ingress-from-all-namespaces",
			Upstream: "should enforce policy to allow ingress traffic from pods in all namespaces",
			Steps: []Step{{
				Name: "allow-from-another-ns",
				Mutate: add(NetworkPolicy("x", "allow-from-another-ns", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(NamespacePeer(everything())))))),
				Checks: []Check{check(tcp, 80, table(nil))},
			}},
		},

		// Upstream: "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector"
		{
			Name:     "ingress-from-other-namespace-by-namespace-selector",
			Upstream: "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
			Steps: []Step{{
				Name: "allow-client-a-via-ns-selector",
				Mutate: add(NetworkPolicy("x", "allow-client-a-via-ns-selector", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(NamespacePeer(nsNamed("y"))))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "x", Pod: "a"}, false)
					r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x", Pod: "a"}, false)
				}))},
			}},
		},

		// Upstream: "should enforce policy based on PodSelector with MatchExpressions"
		{
			Name:     "pod-selector-match-expressions",
			Upstream: "should enforce policy based on PodSelector with MatchExpressions",
			Steps: []Step{{
				Name: "x-a-allows-x-b",
				Mutate: add(NetworkPolicy("x", "x-a-allows-x-b", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(PodPeer(MatchExpressions(
						Requirement("pod", metav1.LabelSelectorOpIn, "b")))))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectAllIngress("x/a", false)
					r.Expect("x/b", "x/a", true)
				}))},
			}},
		},

		// Upstream: "should enforce policy based on NamespaceSelector with MatchExpressions"
		{
			Name:     "namespace-selector-match-expressions",
			Upstream: "should enforce policy based on NamespaceSelector with MatchExpressions",
			Steps: []Step{{
				Name: "allow-ns-y-match-selector",
				Mutate: add(NetworkPolicy("x", "allow-ns-y-match-selector", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(NamespacePeer(MatchExpressions(
						Requirement(NamespaceNameLabel, metav1.LabelSelectorOpIn, "y")))))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "x", Pod: "a"}, false)
					r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x", Pod: "a"}, false)
				}))},
			}},
		},

		// Upstream: "should enforce policy based on PodSelector or NamespaceSelector"
		{
			Name:     "pod-selector-or-namespace-selector",
			Upstream: "should enforce policy based on PodSelector or NamespaceSelector",
			Steps: []Step{{
				Name: "allow-ns-y-match-selector",
				Mutate: add(NetworkPolicy("x", "allow-ns-y-match-selector", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(
						NamespacePeer(MatchExpressions(Requirement(NamespaceNameLabel, metav1.LabelSelectorOpNotIn, "x"))),
						PodPeer(podLabel("b")),
					))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.Expect("x/a", "x/a", false)
					r.Expect("x/c", "x/a", false)
				}))},
			}},
		},

		// Upstream: "should enforce policy based on PodSelector and NamespaceSelector"
		{
			Name:     "pod-selector-and-namespace-selector",
			Upstream: "should enforce policy based on PodSelector and NamespaceSelector",
			Steps: []Step{{
				Name: "allow-ns-y-podselector-and-nsselector",
				Mutate: add(NetworkPolicy("x", "allow-ns-y-podselector-and-nsselector", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(PodInNamespacePeer(
						MatchExpressions(Requirement(NamespaceNameLabel, metav1.LabelSelectorOpNotIn, "x")),
						podLabel("b"),
					)))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectAllIngress("x/a", false)
					r.Expect("y/b", "x/a", true)
					r.Expect("z/b", "x/a", true)
				}))},
			}},
		},

		// Upstream: "should enforce policy based on Multiple PodSelectors and NamespaceSelectors"
		{
			Name:     "multiple-pod-selectors-and-namespace-selectors",
			Upstream: "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
			Steps: []Step{{
				Name: "allow-ns-y-z-pod-b-c",
				Mutate: add(NetworkPolicy("x", "allow-ns-y-z-pod-b-c", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(PodInNamespacePeer(
						MatchExpressions(Requirement(NamespaceNameLabel, metav1.LabelSelectorOpNotIn, "x")),
						MatchExpressions(Requirement("pod", metav1.LabelSelectorOpIn, "b", "c")),
					)))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "x", Pod: "a"}, false)
					r.Expect("y/a", "x/a", false)
					r.Expect("z/a", "x/a", false)
				}))},
			}},
		},

		// Upstream: "should enforce policy based on any PodSelectors"
		{
			Name:     "any-pod-selectors",
			Upstream: "should enforce policy based on any PodSelectors",
			Steps: []Step{{
				Name: "allow-ns-x-pod-b-c",
				Mutate: add(NetworkPolicy("x", "allow-ns-x-pod-b-c", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(PodPeer(podLabel("b")), PodPeer(podLabel("c"))))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectAllIngress("x/a", false)
					r.Expect("x/b", "x/a", true)
					r.Expect("x/c", "x/a", true)
				}))},
			}},
		},

		// Upstream: "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector"
		podInOtherNamespaceScenario(tcp, "", ""),

		// Upstream: "should enforce policy based on Ports"
		portsScenario(tcp, "", ""),

		// Upstream: "should enforce multiple, stacked policies with overlapping podSelectors"
		stackedPoliciesScenario(),

		// Upstream: "should support allow-all policy"
		{
			Name:     "allow-all",
			Upstream: "should support allow-all policy",
			Steps: []Step{{
				Name: "allow-all in x",
				Mutate: add(NetworkPolicy("x", "allow-all", WithPodSelector(everything()),
					WithIngress(IngressRule()))),
				Checks: []Check{
					check(tcp, 80, table(nil)),
					check(tcp, 81, table(nil)),
				},
			}},
		},

		// Upstream: "should allow ingress access on one named port"
		{
			Name:     "ingress-on-one-named-port",
			Upstream: "should allow ingress access on one named port",
			Steps: []Step{{
				Name: "allow serve-81-tcp to every pod of x",
				Mutate: add(NetworkPolicy("x", "allow-all", WithPodSelector(everything()),
					WithIngress(IngressRule(Ports(NamedPort("serve-81-tcp")))))),
				Checks: []Check{
					check(tcp, 81, table(nil)),
					check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
					})),
				},
			}},
		},

		// Upstream: "should allow ingress access from namespace on one named port"
		{
			Name:     "ingress-from-namespace-on-one-named-port",
			Upstream: "should allow ingress access from namespace on one named port",
			Steps: []Step{{
				Name: "allow-client-a-via-ns-selector-80",
				Mutate: add(NetworkPolicy("x", "allow-client-a-via-ns-selector-80", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(
						Peers(NamespacePeer(nsNamed("y"))),
						Ports(NamedPort("serve-80-tcp", WithProtocol(tcp))),
					)))),
				Checks: []Check{
					check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "x", Pod: "a"}, false)
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x", Pod: "a"}, false)
					})),
					check(tcp, 81, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
					})),
				},
			}},
		},

		// Upstream: "should allow egress access on one named port"
		{
			Name:     "egress-on-one-named-port",
			Upstream: "should allow egress access on one named port",
			Steps: []Step{{
				Name: "allow-egress to serve-80-tcp from every pod of x",
				Mutate: add(NetworkPolicy("x", "allow-egress", WithPodSelector(everything()),
					WithEgress(EgressRule(Ports(NamedPort("serve-80-tcp")))))),
				Checks: []Check{
					check(tcp, 80, table(nil)),
					check(tcp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{}, false)
					})),
				},
			}},
		},

		// Upstream: "should enforce updated policy"
		{
			Name:     "updated-policy",
			Upstream: "should enforce updated policy",
			Steps: []Step{
				{
					Name: "allow-all-mutate-to-deny-all: allow all",
					Mutate: add(NetworkPolicy("x", "allow-all-mutate-to-deny-all", WithPodSelector(everything()),
						WithIngress(IngressRule()))),
					Checks: []Check{check(tcp, 81, table(nil))},
				},
				{
					Name: "update it to ingress: []",
					Mutate: func(c *Cluster) {
						np := c.Policy("x", "allow-all-mutate-to-deny-all")
						np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{}
						c.SetPolicy(np)
					},
					Checks: []Check{check(tcp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
					}))},
				},
			},
		},

		// Upstream: "should allow ingress access from updated namespace"
		{
			Name:     "ingress-from-updated-namespace",
			Upstream: "should allow ingress access from updated namespace",
			Steps: []Step{
				{
					Name: "allow-client-a-via-ns-selector (ns2=updated)",
					Mutate: add(NetworkPolicy("x", "allow-client-a-via-ns-selector", WithPodSelector(podLabel("a")),
						WithIngress(IngressRule(Peers(NamespacePeer(MatchLabels(map[string]string{"ns2": "updated"}))))))),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
					}))},
				},
				{
					Name:   "label namespace y ns2=updated",
					Mutate: func(c *Cluster) { c.LabelNamespace("y", map[string]string{"ns2": "updated"}) },
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{}, true)
					}))},
				},
			},
		},

		// Upstream: "should allow ingress access from updated pod"
		{
			Name:     "ingress-from-updated-pod",
			Upstream: "should allow ingress access from updated pod",
			Steps: []Step{
				{
					Name: "allow-client-a-via-pod-selector (pod=b, pod2=updated)",
					Mutate: add(NetworkPolicy("x", "allow-client-a-via-pod-selector", WithPodSelector(podLabel("a")),
						WithIngress(IngressRule(Peers(PodPeer(MatchLabels(map[string]string{"pod": "b", "pod2": "updated"}))))))),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
					}))},
				},
				{
					Name:   "label pod x/b pod2=updated",
					Mutate: func(c *Cluster) { c.LabelPod("x", "b", map[string]string{"pod": "b", "pod2": "updated"}) },
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
						r.Expect("x/b", "x/a", true)
					}))},
				},
			},
		},

		// Upstream: "should deny ingress from pods on other namespaces"
		{
			Name:     "deny-ingress-from-other-namespaces",
			Upstream: "should deny ingress from pods on other namespaces",
			Steps: []Step{{
				Name: "deny-empty-policy",
				Mutate: add(NetworkPolicy("x", "deny-empty-policy", WithPodSelector(&metav1.LabelSelector{}),
					WithIngress(IngressRule(Peers(PodPeer(everything())))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, false)
					r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x"}, false)
				}))},
			}},
		},

		// Upstream: "should deny ingress access to updated pod"
		{
			Name:     "deny-ingress-to-updated-pod",
			Upstream: "should deny ingress access to updated pod",
			Steps: []Step{
				{
					Name: "deny-ingress-via-label-selector (target=isolated)",
					Mutate: add(NetworkPolicy("x", "deny-ingress-via-label-selector",
						WithPodSelector(MatchLabels(map[string]string{"target": "isolated"})), WithIngress())),
					Checks: []Check{check(tcp, 80, table(nil))},
				},
				{
					Name:   "label pod x/a target=isolated",
					Mutate: func(c *Cluster) { c.LabelPod("x", "a", map[string]string{"target": "isolated"}) },
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
					}))},
				},
			},
		},

		// Upstream: "should deny egress from pods based on PodSelector"
		{
			Name:     "deny-egress-by-pod-selector",
			Upstream: "should deny egress from pods based on PodSelector",
			Steps: []Step{{
				Name:   "deny-egress-pod-a",
				Mutate: add(NetworkPolicy("x", "deny-egress-pod-a", WithPodSelector(podLabel("a")), WithEgress())),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectAllEgress("x/a", false)
				}))},
			}},
		},

		// Upstream: "should deny egress from all pods in a namespace"
		{
			Name:     "deny-egress-from-namespace",
			Upstream: "should deny egress from all pods in a namespace",
			Steps: []Step{{
				Name:   "deny-egress-ns-x",
				Mutate: add(NetworkPolicy("x", "deny-egress-ns-x", WithPodSelector(&metav1.LabelSelector{}), WithEgress())),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{Namespace: "x"}, Peer{}, false)
				}))},
			}},
		},

		// Upstream: "should work with Ingress, Egress specified together"
		{
			Name:     "ingress-and-egress-together",
			Upstream: "should work with Ingress, Egress specified together",
			Steps: []Step{{
				Name: "allow-client-a-via-pod-selector with an egress rule on port 80",
				Mutate: add(NetworkPolicy("x", "allow-client-a-via-pod-selector", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(PodPeer(podLabel("b"))))),
					WithEgress(EgressRule(Ports(Port(80)))),
					WithPolicyTypes(networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress),
				)),
				Checks: []Check{
					check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
						r.Expect("x/b", "x/a", true)
					})),
					check(tcp, 81, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
						r.ExpectAllEgress("x/a", false)
						r.Expect("x/b", "x/a", true)
					})),
				},
			}},
		},

		// Upstream: "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)"
		{
			Name:     "egress-denied-on-client-side",
			Upstream: "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
			Steps: []Step{{
				Name: "x/a may reach y/a only; y/a and y/b admit x/a",
				Mutate: add(
					NetworkPolicy("x", "allow-to-ns-y-pod-a", WithPodSelector(podLabel("a")),
						WithEgress(EgressRule(Peers(PodInNamespacePeer(nsNamed("y"), podLabel("a")))))),
					NetworkPolicy("y", "allow-from-xa-on-ya-match-selector", WithPodSelector(podLabel("a")),
						WithIngress(IngressRule(Peers(PodInNamespacePeer(nsNamed("x"), podLabel("a")))))),
					NetworkPolicy("y", "allow-from-xa-on-yb-match-selector", WithPodSelector(podLabel("b")),
						WithIngress(IngressRule(Peers(PodInNamespacePeer(nsNamed("x"), podLabel("a")))))),
				),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{Namespace: "x", Pod: "a"}, Peer{}, false)
					r.ExpectPeer(Peer{}, Peer{Namespace: "y", Pod: "a"}, false)
					r.ExpectPeer(Peer{Namespace: "x", Pod: "a"}, Peer{Namespace: "y", Pod: "a"}, true)
					r.ExpectPeer(Peer{}, Peer{Namespace: "y", Pod: "b"}, false)
				}))},
			}},
		},

		// Upstream: "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector"
		{
			Name:     "egress-to-pod-in-other-namespace",
			Upstream: "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
			Steps: []Step{{
				Name: "allow-to-ns-y-pod-a",
				Mutate: add(NetworkPolicy("x", "allow-to-ns-y-pod-a", WithPodSelector(podLabel("a")),
					WithEgress(EgressRule(Peers(PodInNamespacePeer(nsNamed("y"), podLabel("a"))))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectAllEgress("x/a", false)
					r.Expect("x/a", "y/a", true)
				}))},
			}},
		},

		// Upstream: "should enforce ingress policy allowing any port traffic to a server on a specific protocol"
		{
			Name:     "ingress-any-port-of-one-protocol",
			Upstream: "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
			Steps: []Step{{
				Name: "allow-ingress-by-proto (TCP)",
				Mutate: add(NetworkPolicy("x", "allow-ingress-by-proto", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Ports(AnyPort(tcp)))))),
				Checks: []Check{
					check(tcp, 80, table(nil)),
					check(udp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x", Pod: "a"}, false)
					})),
				},
			}},
		},

		// Upstream: "should enforce multiple ingress policies with ingress allow-all policy taking precedence"
		{
			Name:     "ingress-allow-all-takes-precedence",
			Upstream: "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
			Steps: []Step{
				{
					Name: "allow-ingress-port-80",
					Mutate: add(NetworkPolicy("x", "allow-ingress-port-80", WithPodSelector(everything()),
						WithIngress(IngressRule(Ports(Port(80)))))),
					Checks: []Check{check(tcp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
					}))},
				},
				{
					Name: "add allow-ingress (all)",
					Mutate: add(NetworkPolicy("x", "allow-ingress", WithPodSelector(everything()),
						WithIngress(IngressRule()))),
					Checks: []Check{check(tcp, 81, table(nil))},
				},
			},
		},

		// Upstream: "should enforce multiple egress policies with egress allow-all policy taking precedence"
		{
			Name:     "egress-allow-all-takes-precedence",
			Upstream: "should enforce multiple egress policies with egress allow-all policy taking precedence",
			Steps: []Step{
				{
					Name: "allow-egress-port-80",
					Mutate: add(NetworkPolicy("x", "allow-egress-port-80", WithPodSelector(everything()),
						WithEgress(EgressRule(Ports(Port(80)))))),
					Checks: []Check{check(tcp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{}, false)
					}))},
				},
				{
					Name: "add allow-egress (all)",
					Mutate: add(NetworkPolicy("x", "allow-egress", WithPodSelector(everything()),
						WithEgress(EgressRule()))),
					Checks: []Check{check(tcp, 81, table(nil))},
				},
			},
		},

		// Upstream: "should stop enforcing policies after they are deleted"
		{
			Name:     "policy-deletion",
			Upstream: "should stop enforcing policies after they are deleted",
			Steps: []Step{
				{
					Name:   "deny-all in x",
					Mutate: add(NetworkPolicy("x", "deny-all", WithPodSelector(&metav1.LabelSelector{}), WithIngress(), WithEgress())),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{}, false)
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
					}))},
				},
				{
					Name:   "delete every policy",
					Mutate: func(c *Cluster) { c.DeletePolicies() },
					Checks: []Check{check(tcp, 80, table(nil))},
				},
			},
		},

		// Upstream: "should allow egress access to server in CIDR block"
		{
			Name:     "egress-to-cidr",
			Upstream: "should allow egress access to server in CIDR block",
			Steps: []Step{{
				Name: "allow-client-a-via-cidr-egress-rule (y/b's address)",
				Mutate: func(c *Cluster) {
					c.SetPolicy(NetworkPolicy("x", "allow-client-a-via-cidr-egress-rule", WithPodSelector(podLabel("a")),
						WithEgress(EgressRule(Peers(hostPeers(c, "y", "b")...)))))
				},
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectAllEgress("x/a", false)
					r.Expect("x/a", "y/b", true)
				}))},
			}},
		},

		// Upstream: "should enforce except clause while egress access to server in CIDR block"
		{
			Name:     "egress-to-cidr-except",
			Upstream: "should enforce except clause while egress access to server in CIDR block",
			Steps: []Step{{
				Name: "allow-client-a-via-cidr-egress-rule (a /4 except x/b's address)",
				Mutate: func(c *Cluster) {
					c.SetPolicy(NetworkPolicy("x", "allow-client-a-via-cidr-egress-rule", WithPodSelector(podLabel("a")),
						WithEgress(EgressRule(Peers(largeBlockExceptPeers(c, "x", "b")...)))))
				},
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.Expect("x/a", "x/b", false)
				}))},
			}},
		},

		// Upstream: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed"
		{
			Name:     "cidr-overlapping-except",
			Upstream: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
			Steps: []Step{
				{
					Name: "allow-client-a-via-cidr-egress-rule (a /4 except x/b's address)",
					Mutate: func(c *Cluster) {
						c.SetPolicy(NetworkPolicy("x", "allow-client-a-via-cidr-egress-rule", WithPodSelector(podLabel("a")),
							WithEgress(EgressRule(Peers(largeBlockExceptPeers(c, "x", "b")...)))))
					},
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.Expect("x/a", "x/b", false)
					}))},
				},
				{
					Name: "update it to allow x/b's address only",
					Mutate: func(c *Cluster) {
						c.SetPolicy(NetworkPolicy("x", "allow-client-a-via-cidr-egress-rule", WithPodSelector(podLabel("a")),
							WithEgress(EgressRule(Peers(hostPeers(c, "x", "b")...)))))
					},
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllEgress("x/a", false)
						r.Expect("x/a", "x/b", true)
					}))},
				},
			},
		},

		// Upstream: "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector"
		{
			Name:     "ingress-and-egress-independent",
			Upstream: "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
			Steps: []Step{
				{
					Name: "allow-egress-for-target (pod=a)",
					Mutate: add(NetworkPolicy("x", "allow-egress-for-target", WithPodSelector(podLabel("a")),
						WithEgress(EgressRule()))),
					Checks: []Check{check(tcp, 80, table(nil))},
				},
				{
					Name: "add deny-ingress-via-label-selector (pod=a)",
					Mutate: add(NetworkPolicy("x", "deny-ingress-via-label-selector", WithPodSelector(podLabel("a")),
						WithIngress())),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
					}))},
				},
			},
		},

		// Upstream: "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP"
		{
			Name:     "sctp-is-not-tcp",
			Upstream: "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
			Steps: []Step{{
				Name: "deny-ingress in x, allow-only-sctp-ingress-on-port-81",
				Mutate: add(
					NetworkPolicy("x", "deny-ingress", WithPodSelector(&metav1.LabelSelector{}), WithIngress()),
					NetworkPolicy("x", "allow-only-sctp-ingress-on-port-81", WithPodSelector(podLabel("a")),
						WithIngress(IngressRule(Ports(Port(81, WithProtocol(sctp)))))),
				),
				Checks: []Check{check(tcp, 81, table(func(r *Reachability) {
					r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
				}))},
			}},
		},

		// Upstream: "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP"
		{
			Name:     "sctp-policy-isolates",
			Upstream: "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
			Steps: []Step{{
				Name: "allow-only-sctp-ingress-on-port-80",
				Mutate: add(NetworkPolicy("x", "allow-only-sctp-ingress-on-port-80", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Ports(Port(80, WithProtocol(sctp))))))),
				Checks: []Check{check(tcp, 81, table(func(r *Reachability) {
					r.ExpectAllIngress("x/a", false)
				}))},
			}},
		},

		// Upstream: "should not allow access by TCP when a policy specifies only UDP"
		{
			Name:     "udp-only-policy-denies-tcp",
			Upstream: "should not allow access by TCP when a policy specifies only UDP",
			Steps: []Step{{
				Name: "allow-only-udp-ingress-on-port-81",
				Mutate: add(NetworkPolicy("x", "allow-only-udp-ingress-on-port-81", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Ports(Port(81, WithProtocol(udp))))))),
				Checks: []Check{check(tcp, 81, table(func(r *Reachability) {
					r.ExpectAllIngress("x/a", false)
				}))},
			}},
		},

		// Upstream: "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label"
		{
			Name:     "namespace-match-labels-default-label",
			Upstream: "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
			Steps: []Step{{
				Name: "allow-client-a-via-ns-selector-for-immutable-ns-label",
				Mutate: add(NetworkPolicy("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Peers(NamespacePeer(nsNamed("y"))))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "x", Pod: "a"}, false)
					r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x", Pod: "a"}, false)
				}))},
			}},
		},

		// Upstream: "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label"
		{
			Name:     "namespace-match-expressions-default-label",
			Upstream: "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
			Steps: []Step{{
				Name: "allow-ns-y-match-selector-for-immutable-ns-label (egress, NotIn y)",
				Mutate: add(NetworkPolicy("x", "allow-ns-y-match-selector-for-immutable-ns-label", WithPodSelector(podLabel("a")),
					WithEgress(EgressRule(Peers(NamespacePeer(MatchExpressions(
						Requirement(NamespaceNameLabel, metav1.LabelSelectorOpNotIn, "y")))))))),
				Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
					r.ExpectPeer(Peer{Namespace: "x", Pod: "a"}, Peer{Namespace: "y"}, false)
				}))},
			}},
		},
	}
}

// protocolScenarios returns the three scenarios upstream repeats for UDP and
// SCTP, in upstream's order.
func protocolScenarios(proto corev1.Protocol, prefix, context string) []Scenario {
	// Upstream (UDP and SCTP contexts): "should support a 'default-deny-ingress' policy"
	denyIngress := Scenario{
		Name:     prefix + "/default-deny-ingress",
		Upstream: context + ": should support a 'default-deny-ingress' policy",
		Steps: []Step{{
			Name:   "deny-all ingress in x",
			Mutate: add(NetworkPolicy("x", "deny-all", WithPodSelector(&metav1.LabelSelector{}), WithIngress())),
			Checks: []Check{check(proto, 80, table(func(r *Reachability) {
				r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
			}))},
		}},
	}
	return []Scenario{
		denyIngress,
		// Upstream (UDP and SCTP contexts): "should enforce policy based on Ports"
		portsScenario(proto, prefix+"/", context+": "),
		// Upstream (UDP and SCTP contexts): "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector"
		podInOtherNamespaceScenario(proto, prefix+"/", context+": "),
	}
}

// podInOtherNamespaceScenario is upstream's "should enforce policy to allow
// traffic only from a pod in a different namespace based on PodSelector and
// NamespaceSelector", in the TCP, UDP and SCTP contexts (probe on port 80).
func podInOtherNamespaceScenario(proto corev1.Protocol, namePrefix, titlePrefix string) Scenario {
	return Scenario{
		Name:     namePrefix + "ingress-from-pod-in-other-namespace",
		Upstream: titlePrefix + "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
		Steps: []Step{{
			Name: "allow-ns-y-pod-a-via-namespace-pod-selector",
			Mutate: add(NetworkPolicy("x", "allow-ns-y-pod-a-via-namespace-pod-selector", WithPodSelector(podLabel("a")),
				WithIngress(IngressRule(Peers(PodInNamespacePeer(nsNamed("y"), podLabel("a"))))))),
			Checks: []Check{check(proto, 80, table(func(r *Reachability) {
				r.ExpectAllIngress("x/a", false)
				r.Expect("y/a", "x/a", true)
			}))},
		}},
	}
}

// portsScenario is upstream's "should enforce policy based on Ports" in the
// TCP, UDP and SCTP contexts: x/a admits namespace y on port 81 of proto.
// The TCP variant also asserts y → x/a allowed explicitly, which the default
// already says; the tables are the same.
func portsScenario(proto corev1.Protocol, namePrefix, titlePrefix string) Scenario {
	name := "allow-client-a-via-ns-selector"
	if proto != tcp {
		name = "allow-ingress-on-port-81-ns-x"
	}
	return Scenario{
		Name:     namePrefix + "ingress-on-port",
		Upstream: titlePrefix + "should enforce policy based on Ports",
		Steps: []Step{{
			Name: name + " (port 81)",
			Mutate: add(NetworkPolicy("x", name, WithPodSelector(podLabel("a")),
				WithIngress(IngressRule(
					Peers(NamespacePeer(nsNamed("y"))),
					Ports(Port(81, WithProtocol(proto))),
				)))),
			Checks: []Check{check(proto, 81, table(func(r *Reachability) {
				r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "x", Pod: "a"}, false)
				if proto == tcp {
					r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x", Pod: "a"}, true)
				}
				r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x", Pod: "a"}, false)
			}))},
		}},
	}
}

// stackedPoliciesScenario is upstream's "should enforce multiple, stacked
// policies with overlapping podSelectors".
func stackedPoliciesScenario() Scenario {
	allow := func() *Reachability {
		return table(func(r *Reachability) {
			r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "x", Pod: "a"}, false)
			r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x", Pod: "a"}, true)
			r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x", Pod: "a"}, false)
		})
	}
	policy := func(name string, port int32) *networkingv1.NetworkPolicy {
		return NetworkPolicy("x", name, WithPodSelector(podLabel("a")),
			WithIngress(IngressRule(
				Peers(NamespacePeer(nsNamed("y"))),
				Ports(Port(port, WithProtocol(tcp))),
			)))
	}
	return Scenario{
		Name:     "stacked-policies",
		Upstream: "should enforce multiple, stacked policies with overlapping podSelectors",
		Steps: []Step{
			{
				Name:   "allow-client-a-via-ns-selector (port 81)",
				Mutate: add(policy("allow-client-a-via-ns-selector", 81)),
				Checks: []Check{
					check(tcp, 81, allow()),
					check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
					})),
				},
			},
			{
				Name:   "add allow-client-a-via-ns-selector-80 (port 80)",
				Mutate: add(policy("allow-client-a-via-ns-selector-80", 80)),
				Checks: []Check{check(tcp, 80, allow())},
			},
		},
	}
}
