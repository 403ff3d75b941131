package policytest

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Scenario is a sequence of cluster changes, each followed by checks of the
// whole pod-to-pod matrix. It starts from the model's cluster (namespaces and
// pods, no policy).
type Scenario struct {
	// Name is short, unique and usable as a subtest name.
	Name string
	// Upstream is the title of the upstream It() the scenario transcribes,
	// prefixed by its context for the UDP and SCTP variants; empty for
	// scenarios upstream does not have.
	Upstream string
	Steps    []Step
}

// Step is one change of the cluster and what must hold after it.
type Step struct {
	Name string
	// Mutate changes the cluster (nil changes nothing). It must only use
	// Cluster methods, so a runner can diff the result.
	Mutate func(*Cluster)
	Checks []Check
}

// Check is one expected matrix: every ordered pair of the standard pods,
// connecting to Port over Protocol.
type Check struct {
	Port     int
	Protocol corev1.Protocol
	// Family restricts the check to one family; empty means every family
	// the cluster's pods have.
	Family   Family
	Expected *Reachability
}

// String renders the check's probe: "TCP/80", or "TCP/80 IPv6".
func (ch Check) String() string {
	if ch.Family == "" {
		return fmt.Sprintf("%s/%d", ch.Protocol, ch.Port)
	}
	return fmt.Sprintf("%s/%d %s", ch.Protocol, ch.Port, ch.Family)
}

// Families returns the families the check runs in, given the model's.
func (ch Check) Families(model []Family) []Family {
	if ch.Family == "" {
		return model
	}
	for _, f := range model {
		if f == ch.Family {
			return []Family{f}
		}
	}
	return nil
}

// hostPeers returns one ipBlock peer per address of the pod: the address
// alone (/32 or /128).
func hostPeers(c *Cluster, ns, pod string) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for _, a := range c.PodIPs(ns, pod) {
		out = append(out, IPBlockPeer(netip.PrefixFrom(a, a.BitLen()).String()))
	}
	return out
}

// largeBlockExceptPeers returns one ipBlock peer per address of the pod: the
// /4 that holds the address (what upstream's makeLargeCIDRForIP computes),
// except the address itself.
func largeBlockExceptPeers(c *Cluster, ns, pod string) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for _, a := range c.PodIPs(ns, pod) {
		large := netip.PrefixFrom(a, 4).Masked()
		out = append(out, IPBlockPeer(large.String(), netip.PrefixFrom(a, a.BitLen()).String()))
	}
	return out
}
