package policytest

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Extras returns scenarios the upstream suite does not have, for features it
// only tests at the API level (endPort) or only in one direction (an SCTP or
// UDP rule that must allow, not just fail to allow TCP). Their expectations
// are derived by hand from the NetworkPolicy semantics, in the same style as
// the upstream ones. Names start with "extra/".
func Extras() []Scenario {
	return []Scenario{
		// Not upstream: an ingress port range (port 80, endPort 81, TCP by
		// default) admits both ports and nothing else.
		{
			Name: "extra/ingress-port-range",
			Steps: []Step{{
				Name: "x/a admits TCP 80-81",
				Mutate: add(NetworkPolicy("x", "allow-ingress-80-81", WithPodSelector(podLabel("a")),
					WithIngress(IngressRule(Ports(Port(80, WithEndPort(81))))))),
				Checks: []Check{
					check(tcp, 80, table(nil)),
					check(tcp, 81, table(nil)),
					check(tcp, 82, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
					})),
					check(udp, 80, table(func(r *Reachability) {
						r.ExpectAllIngress("x/a", false)
					})),
				},
			}},
		},

		// Not upstream: an egress port range (81-82) lets x/a reach port 81
		// of every pod, and not port 80.
		{
			Name: "extra/egress-port-range",
			Steps: []Step{{
				Name: "x/a may connect to TCP 81-82",
				Mutate: add(NetworkPolicy("x", "allow-egress-81-82", WithPodSelector(podLabel("a")),
					WithEgress(EgressRule(Ports(Port(81, WithProtocol(tcp), WithEndPort(82))))))),
				Checks: []Check{
					check(tcp, 81, table(nil)),
					check(tcp, 82, table(nil)),
					check(tcp, 80, table(func(r *Reachability) {
						r.ExpectAllEgress("x/a", false)
					})),
				},
			}},
		},

		// Not upstream: the positive half of "should not mistakenly treat
		// 'protocol: SCTP' as 'protocol: TCP'": SCTP to port 81 of x/a is
		// allowed while x/b and x/c stay isolated.
		{
			Name: "extra/sctp-allowed",
			Steps: []Step{{
				Name: "deny-ingress in x, allow-only-sctp-ingress-on-port-81",
				Mutate: add(
					NetworkPolicy("x", "deny-ingress", WithPodSelector(&metav1.LabelSelector{}), WithIngress()),
					NetworkPolicy("x", "allow-only-sctp-ingress-on-port-81", WithPodSelector(podLabel("a")),
						WithIngress(IngressRule(Ports(Port(81, WithProtocol(sctp)))))),
				),
				Checks: []Check{
					check(sctp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
						r.ExpectAllIngress("x/a", true)
					})),
					check(sctp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
					})),
				},
			}},
		},

		// Not upstream: a named UDP port resolves only for UDP.
		{
			Name: "extra/named-udp-port",
			Steps: []Step{{
				Name: "every pod of x admits serve-81-udp",
				Mutate: add(NetworkPolicy("x", "allow-serve-81-udp", WithPodSelector(everything()),
					WithIngress(IngressRule(Ports(NamedPort("serve-81-udp", WithProtocol(udp))))))),
				Checks: []Check{
					check(udp, 81, table(nil)),
					check(udp, 80, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
					})),
					check(tcp, 81, table(func(r *Reachability) {
						r.ExpectPeer(Peer{}, Peer{Namespace: "x"}, false)
					})),
				},
			}},
		},
	}
}
