package policytest

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// ClusterScenarios returns scenarios for the cluster-wide policies
// (ClusterNetworkPolicy v1beta1, AdminNetworkPolicy and
// BaselineAdminNetworkPolicy v1alpha1) over the standard model. They cover
// what the network-policy-api conformance suite (its conformance/tests, in
// sigs.k8s.io/network-policy-api v0.3.0) checks, rewritten for the x/y/z ×
// a/b/c model: rules per protocol in each direction, Accept/Deny/Pass,
// the priority field and a priority change, equal priorities, the
// interplay of Admin tier, NetworkPolicy and Baseline tier, inline CIDR
// peers, named ports, port ranges, pod selectors and a pod label change.
// Node peers are not here: a matrix only probes pods (the engine's unit
// tests check them). Expectations are derived by hand from the API's
// semantics, never computed. Names start with "cluster/".
//
// A runner needs a loader that is also a ClusterLoader.
func ClusterScenarios() []Scenario {
	return []Scenario{
		{
			Name: "cluster/admin-ingress-accept-deny-pass",
			Steps: []Step{
				{
					Name: "Admin CNP on x: accept y/a, deny the rest of y, pass z",
					Mutate: addObjects(CNP("x-ingress", `
						tier: Admin
						priority: 10
						subject: {namespaces: {matchLabels: {ns: x}}}
						ingress:
						- {name: accept-y-a, action: Accept, from: [{pods: {namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: a}}}}]}
						- {name: deny-y, action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}]}
						- {name: pass-z, action: Pass, from: [{namespaces: {matchLabels: {ns: z}}}]}`)),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "y", Pod: "a"}, Peer{Namespace: "x"}, true)
					}))},
				},
				{
					Name:   "a NetworkPolicy isolates x: Accept beats it, Pass hands over to it",
					Mutate: add(NetworkPolicy("x", "deny-ingress", WithPodSelector(everything()), WithIngress())),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "y", Pod: "a"}, Peer{Namespace: "x"}, true)
					}))},
				},
				{
					Name:   "without the NetworkPolicy, passed traffic is allowed by default",
					Mutate: func(c *Cluster) { c.DeletePolicy("x", "deny-ingress") },
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "y", Pod: "a"}, Peer{Namespace: "x"}, true)
					})), check(udp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "y", Pod: "a"}, Peer{Namespace: "x"}, true)
					}))},
				},
			},
		},

		{
			Name: "cluster/admin-egress-udp",
			Steps: []Step{
				{
					Name: "x/a: deny UDP 80 to y, accept UDP 80-81 to z",
					Mutate: addObjects(CNP("x-a-egress", `
						tier: Admin
						priority: 5
						subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}}
						egress:
						- {action: Deny, to: [{namespaces: {matchLabels: {ns: "y"}}}], protocols: [{udp: {destinationPort: {number: 80}}}]}
						- {action: Accept, to: [{namespaces: {matchLabels: {ns: z}}}], protocols: [{udp: {destinationPort: {range: {start: 80, end: 81}}}}]}`)),
					Checks: []Check{
						check(udp, 80, table(func(r *Reachability) {
							r.ExpectPeer(Peer{Namespace: "x", Pod: "a"}, Peer{Namespace: "y"}, false)
						})),
						check(udp, 81, table(nil)),
						check(tcp, 80, table(nil)),
					},
				},
				{
					Name:   "a NetworkPolicy stops x/a's egress: only the Admin Accept remains",
					Mutate: add(NetworkPolicy("x", "a-no-egress", WithPodSelector(podLabel("a")), WithPolicyTypes(networkingv1.PolicyTypeEgress))),
					Checks: []Check{
						check(udp, 80, table(func(r *Reachability) {
							r.ExpectAllEgress("x/a", false)
							r.ExpectPeer(Peer{Namespace: "x", Pod: "a"}, Peer{Namespace: "z"}, true)
						})),
						check(udp, 81, table(func(r *Reachability) {
							r.ExpectAllEgress("x/a", false)
							r.ExpectPeer(Peer{Namespace: "x", Pod: "a"}, Peer{Namespace: "z"}, true)
						})),
						check(tcp, 81, table(func(r *Reachability) {
							r.ExpectAllEgress("x/a", false)
						})),
					},
				},
			},
		},

		{
			Name: "cluster/priority-field-and-change",
			Steps: []Step{
				{
					Name: "deny y at 50, pass y at 60, baseline: accept y, then deny all",
					Mutate: addObjects(
						CNP("deny-y", `
							tier: Admin
							priority: 50
							subject: {namespaces: {matchLabels: {ns: x}}}
							ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}]}]
							egress: [{action: Deny, to: [{namespaces: {matchLabels: {ns: "y"}}}]}]`),
						CNP("pass-y", `
							tier: Admin
							priority: 60
							subject: {namespaces: {matchLabels: {ns: x}}}
							ingress: [{action: Pass, from: [{namespaces: {matchLabels: {ns: "y"}}}]}]
							egress: [{action: Pass, to: [{namespaces: {matchLabels: {ns: "y"}}}]}]`),
						CNP("baseline-accept-y", `
							tier: Baseline
							priority: 10
							subject: {namespaces: {matchLabels: {ns: x}}}
							ingress: [{action: Accept, from: [{namespaces: {matchLabels: {ns: "y"}}}]}]
							egress: [{action: Accept, to: [{namespaces: {matchLabels: {ns: "y"}}}]}]`),
						CNP("baseline-deny-ingress", `
							tier: Baseline
							priority: 20
							subject: {namespaces: {matchLabels: {ns: x}}}
							ingress: [{action: Deny, from: [{namespaces: {}}]}]`),
					),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y"}, false)
					}))},
				},
				{
					Name:   "pass-y moves to priority 40: y reaches the baseline's Accept",
					Mutate: setPriority("pass-y", 40),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, true)
					})), check(sctp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, true)
					}))},
				},
				{
					Name:   "deny-y moves to priority 30: denied again",
					Mutate: setPriority("deny-y", 30),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y"}, false)
					}))},
				},
			},
		},

		{
			Name: "cluster/same-priority",
			Steps: []Step{
				{
					// By name alone the CNP would come first; the ANP does.
					Name: "ANP z-allow and CNP a-deny at priority 7",
					Mutate: addObjects(
						CNP("a-deny", `
							tier: Admin
							priority: 7
							subject: {namespaces: {matchLabels: {ns: x}}}
							ingress: [{action: Deny, from: [{namespaces: {}}]}]
							egress: [{action: Deny, to: [{namespaces: {matchLabels: {ns: z}}}]}]`),
						ANP("z-allow", `
							priority: 7
							subject: {namespaces: {matchLabels: {ns: x}}}
							ingress: [{action: Allow, from: [{namespaces: {matchLabels: {ns: "y"}}}]}]
							egress: [{action: Deny, to: [{namespaces: {matchLabels: {ns: "y"}}}]}]`),
					),
					Checks: []Check{check(tcp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, true)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y"}, false)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "z"}, false)
					}))},
				},
				{
					Name: "two CNPs at the same priority with different subjects, same peer",
					Mutate: addObjects(CNP("b-deny-y-from-z", `
						tier: Admin
						priority: 7
						subject: {namespaces: {matchLabels: {ns: z}}}
						ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}]}]`)),
					Checks: []Check{check(tcp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, true)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y"}, false)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "z"}, false)
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "z"}, false)
					}))},
				},
			},
		},

		{
			Name: "cluster/baseline-only-for-non-isolated-pods",
			Steps: []Step{
				{
					Name: "BANP denies ingress from z everywhere; y/a is isolated by a NetworkPolicy that allows all",
					Mutate: addObjects(
						BANP("default", `
							subject: {namespaces: {}}
							ingress: [{name: no-z, action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}]}]`),
						NetworkPolicy("y", "a-allow-all", WithPodSelector(podLabel("a")), WithIngress(IngressRule())),
					),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{}, false)
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "y", Pod: "a"}, true)
					})), check(udp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{}, false)
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "y", Pod: "a"}, true)
					}))},
				},
				{
					Name: "a Baseline CNP passes z to x: no decision, allowed",
					Mutate: addObjects(CNP("pass-z-to-x", `
						tier: Baseline
						priority: 1000
						subject: {namespaces: {matchLabels: {ns: x}}}
						ingress: [{action: Pass, from: [{namespaces: {matchLabels: {ns: z}}}]}]`)),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{}, false)
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "y", Pod: "a"}, true)
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x"}, true)
					}))},
				},
			},
		},

		{
			Name: "cluster/admin-np-baseline-integration",
			Steps: []Step{
				{
					Name: "Admin denies x<->y; a NetworkPolicy lets x talk only with y",
					Mutate: addObjects(
						CNP("x-and-y", `
							tier: Admin
							priority: 10
							subject: {namespaces: {matchLabels: {ns: x}}}
							ingress: [{name: y-in, action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}]}]
							egress: [{name: y-out, action: Deny, to: [{namespaces: {matchLabels: {ns: "y"}}}]}]`),
						NetworkPolicy("x", "only-y", WithPodSelector(everything()),
							WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
							WithIngress(IngressRule(Peers(NamespacePeer(nsNamed("y"))))),
							WithEgress(EgressRule(Peers(NamespacePeer(nsNamed("y")))))),
					),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{}, false)
					}))},
				},
				{
					Name:   "the Admin rules become Pass: the NetworkPolicy decides",
					Mutate: setActions("x-and-y", v1beta1.ClusterNetworkPolicyRuleActionPass),
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{}, false)
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, true)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y"}, true)
					}))},
				},
				{
					Name: "no NetworkPolicy, a BANP denies x<->y: passed traffic reaches the baseline",
					Mutate: func(c *Cluster) {
						c.DeletePolicy("x", "only-y")
						c.SetBaselineAdminNetworkPolicy(BANP("default", `
							subject: {namespaces: {matchLabels: {ns: x}}}
							ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}]}]
							egress: [{action: Deny, to: [{namespaces: {matchLabels: {ns: "y"}}}]}]`))
					},
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, false)
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y"}, false)
					}))},
				},
			},
		},

		{
			Name: "cluster/egress-inline-cidr",
			Steps: []Step{
				{
					Name: "x may not reach y/b's addresses, as networks; everything else to 0/0 passes",
					Mutate: func(c *Cluster) {
						var denied, all []string
						for _, a := range c.PodIPs("y", "b") {
							denied = append(denied, quoteYAML(netip.PrefixFrom(a, a.BitLen()).String()))
						}
						all = []string{`"0.0.0.0/0"`, `"::/0"`}
						c.SetClusterNetworkPolicy(CNP("x-cidrs", fmt.Sprintf(`
							tier: Admin
							priority: 3
							subject: {namespaces: {matchLabels: {ns: x}}}
							egress:
							- {action: Deny, to: [{networks: [%s]}]}
							- {action: Pass, to: [{networks: [%s]}]}`, strings.Join(denied, ", "), strings.Join(all, ", "))))
					},
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y", Pod: "b"}, false)
					})), check(sctp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y", Pod: "b"}, false)
					}))},
				},
			},
		},

		{
			Name: "cluster/named-ports",
			Steps: []Step{{
				Name: "deny ingress from y on serve-80-tcp to x; ANP: z may not send to serve-81-udp in x",
				Mutate: addObjects(
					CNP("named-in", `
						tier: Admin
						priority: 1
						subject: {namespaces: {matchLabels: {ns: x}}}
						ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: "y"}}}], protocols: [{destinationNamedPort: serve-80-tcp}]}]`),
					ANP("named-out", `
						priority: 1
						subject: {namespaces: {matchLabels: {ns: z}}}
						egress: [{action: Deny, to: [{namespaces: {matchLabels: {ns: x}}}], ports: [{namedPort: serve-81-udp}]}]`),
				),
				Checks: []Check{
					check(tcp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "x"}, false)
					})),
					check(tcp, 81, table(nil)),
					check(udp, 80, table(nil)),
					check(udp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "z"}, Peer{Namespace: "x"}, false)
					})),
				},
			}},
		},

		{
			Name: "cluster/port-ranges",
			Steps: []Step{{
				Name: "ANP on y: deny SCTP 80-81 from x, deny TCP 81-90 to z",
				Mutate: addObjects(ANP("ranges", `
					priority: 2
					subject: {namespaces: {matchLabels: {ns: "y"}}}
					ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: x}}}], ports: [{portRange: {protocol: SCTP, start: 80, end: 81}}]}]
					egress: [{action: Deny, to: [{namespaces: {matchLabels: {ns: z}}}], ports: [{portRange: {start: 81, end: 90}}]}]`)),
				Checks: []Check{
					check(sctp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y"}, false)
					})),
					check(sctp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "x"}, Peer{Namespace: "y"}, false)
					})),
					check(tcp, 80, table(nil)),
					check(tcp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{Namespace: "y"}, Peer{Namespace: "z"}, false)
					})),
				},
			}},
		},

		{
			Name: "cluster/pod-selectors-and-label-change",
			Steps: []Step{
				{
					Name: "x/a denies ingress from pods labelled app=blocked in y (none yet)",
					Mutate: addObjects(CNP("block", `
						tier: Admin
						priority: 1
						subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}}
						ingress: [{action: Deny, from: [{pods: {namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {app: blocked}}}}]}]`)),
					Checks: []Check{check(tcp, 80, table(nil))},
				},
				{
					Name:   "y/b gets app=blocked",
					Mutate: func(c *Cluster) { c.LabelPod("y", "b", map[string]string{"app": "blocked"}) },
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.Expect("y/b", "x/a", false)
					}))},
				},
				{
					Name:   "z/b gets app=blocked too, but z is not a peer namespace",
					Mutate: func(c *Cluster) { c.LabelPod("z", "b", map[string]string{"app": "blocked"}) },
					Checks: []Check{check(tcp, 80, table(func(r *Reachability) {
						r.Expect("y/b", "x/a", false)
					}))},
				},
			},
		},
	}
}

// addObjects returns a mutation that creates (or replaces) objects of any
// kind the Cluster holds.
func addObjects(objs ...any) func(*Cluster) {
	return func(c *Cluster) {
		for _, o := range objs {
			switch o := o.(type) {
			case *networkingv1.NetworkPolicy:
				c.SetPolicy(o)
			case *v1alpha1.AdminNetworkPolicy:
				c.SetAdminNetworkPolicy(o)
			case *v1alpha1.BaselineAdminNetworkPolicy:
				c.SetBaselineAdminNetworkPolicy(o)
			case *v1beta1.ClusterNetworkPolicy:
				c.SetClusterNetworkPolicy(o)
			case *corev1.Node:
				c.SetNode(o)
			default:
				panic(fmt.Sprintf("addObjects: unknown object %T", o))
			}
		}
	}
}

// setPriority changes the priority of a ClusterNetworkPolicy.
func setPriority(name string, priority int32) func(*Cluster) {
	return func(c *Cluster) {
		cnp := c.ClusterNetworkPolicy(name)
		cnp.Spec.Priority = priority
		c.SetClusterNetworkPolicy(cnp)
	}
}

// setActions changes the action of every rule of a ClusterNetworkPolicy.
func setActions(name string, action v1beta1.ClusterNetworkPolicyRuleAction) func(*Cluster) {
	return func(c *Cluster) {
		cnp := c.ClusterNetworkPolicy(name)
		for i := range cnp.Spec.Ingress {
			cnp.Spec.Ingress[i].Action = action
		}
		for i := range cnp.Spec.Egress {
			cnp.Spec.Egress[i].Action = action
		}
		c.SetClusterNetworkPolicy(cnp)
	}
}

func quoteYAML(s string) string { return `"` + s + `"` }
