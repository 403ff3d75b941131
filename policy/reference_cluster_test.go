package policy_test

import (
	"cmp"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/palisade-net/palisade/policy/ir"
)

// The reference's view of the cluster-wide policies, written from DESIGN.md
// and the API's documentation: per direction, the Admin tier (lowest
// priority first; at equal priority ANP before CNP, then by name; the first
// matching rule decides, Pass leaves the tier), then NetworkPolicy (an
// isolated pod is decided there), then the Baseline tier (Baseline CNPs by
// priority then name, then the BANP; Pass is no decision), then allow.
//
// It reads every object as the v1beta1 shapes (ANP/BANP translate 1:1) and
// knows the invalid input the generator makes (a selector with an unknown
// operator), with the engine's documented fail-closed reading: an invalid
// rule that allows matches nothing, any other invalid rule denies
// everything; an invalid subject selects every pod and keeps only denials
// (Allow matches nothing, Pass denies).

type refPolicy struct {
	kindRank int // 0 ANP, 1 CNP, 2 BANP
	name     string
	tier     ir.TierKind
	priority int32
	subject  v1beta1.ClusterNetworkPolicySubject
	ingress  []refRule
	egress   []refRule
}

type refRule struct {
	action string // Allow, Deny, Pass
	peers  []v1beta1.ClusterNetworkPolicyEgressPeer
	ports  []v1beta1.ClusterNetworkPolicyProtocol // nil: every port
}

func (r reference) selectorValid(s *metav1.LabelSelector) bool {
	_, err := r.selector(s)
	return err == nil
}

func (r reference) clusterPolicies() []refPolicy {
	var out []refPolicy
	for _, cnp := range r.cl.cnps {
		p := refPolicy{kindRank: 1, name: cnp.Name, tier: ir.TierAdmin, priority: cnp.Spec.Priority, subject: cnp.Spec.Subject}
		if cnp.Spec.Tier == v1beta1.BaselineTier {
			p.tier = ir.TierBaseline
		}
		for _, rule := range cnp.Spec.Ingress {
			rr := refRule{action: anpAction(rule.Action), ports: rule.Protocols}
			for _, pe := range rule.From {
				rr.peers = append(rr.peers, v1beta1.ClusterNetworkPolicyEgressPeer{Namespaces: pe.Namespaces, Pods: pe.Pods})
			}
			p.ingress = append(p.ingress, rr)
		}
		for _, rule := range cnp.Spec.Egress {
			p.egress = append(p.egress, refRule{action: anpAction(rule.Action), ports: rule.Protocols, peers: rule.To})
		}
		out = append(out, p)
	}
	for _, anp := range r.cl.anps {
		p := refPolicy{kindRank: 0, name: anp.Name, tier: ir.TierAdmin, priority: anp.Spec.Priority, subject: cnpSubject(anp.Spec.Subject)}
		for _, rule := range anp.Spec.Ingress {
			p.ingress = append(p.ingress, refRule{action: string(rule.Action), ports: cnpPorts(rule.Ports), peers: ingressPeers(rule.From)})
		}
		for _, rule := range anp.Spec.Egress {
			rr := refRule{action: string(rule.Action), ports: cnpPorts(rule.Ports)}
			for _, pe := range rule.To {
				rr.peers = append(rr.peers, v1beta1.ClusterNetworkPolicyEgressPeer{Namespaces: pe.Namespaces, Pods: cnpPods(pe.Pods), Nodes: pe.Nodes, Networks: cnpCIDRs(pe.Networks)})
			}
			p.egress = append(p.egress, rr)
		}
		out = append(out, p)
	}
	if b := r.cl.banp; b != nil {
		p := refPolicy{kindRank: 2, name: b.Name, tier: ir.TierBaseline, subject: cnpSubject(b.Spec.Subject)}
		for _, rule := range b.Spec.Ingress {
			p.ingress = append(p.ingress, refRule{action: string(rule.Action), ports: cnpPorts(rule.Ports), peers: ingressPeers(rule.From)})
		}
		for _, rule := range b.Spec.Egress {
			rr := refRule{action: string(rule.Action), ports: cnpPorts(rule.Ports)}
			for _, pe := range rule.To {
				rr.peers = append(rr.peers, v1beta1.ClusterNetworkPolicyEgressPeer{Namespaces: pe.Namespaces, Pods: cnpPods(pe.Pods), Nodes: pe.Nodes, Networks: cnpCIDRs(pe.Networks)})
			}
			p.egress = append(p.egress, rr)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b refPolicy) int {
		// The BANP goes after every Baseline CNP: it has no priority.
		pa, pb := int64(a.priority), int64(b.priority)
		if a.kindRank == 2 {
			pa = 1 << 40
		}
		if b.kindRank == 2 {
			pb = 1 << 40
		}
		return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(a.kindRank, b.kindRank), cmp.Compare(a.name, b.name))
	})
	return out
}

func cnpSubject(s v1alpha1.AdminNetworkPolicySubject) v1beta1.ClusterNetworkPolicySubject {
	return v1beta1.ClusterNetworkPolicySubject{Namespaces: s.Namespaces, Pods: cnpPods(s.Pods)}
}

func cnpPods(p *v1alpha1.NamespacedPod) *v1beta1.NamespacedPod {
	if p == nil {
		return nil
	}
	return &v1beta1.NamespacedPod{NamespaceSelector: p.NamespaceSelector, PodSelector: p.PodSelector}
}

func cnpCIDRs(in []v1alpha1.CIDR) []v1beta1.CIDR {
	var out []v1beta1.CIDR
	for _, s := range in {
		out = append(out, v1beta1.CIDR(s))
	}
	return out
}

func ingressPeers(in []v1alpha1.AdminNetworkPolicyIngressPeer) []v1beta1.ClusterNetworkPolicyEgressPeer {
	var out []v1beta1.ClusterNetworkPolicyEgressPeer
	for _, pe := range in {
		out = append(out, v1beta1.ClusterNetworkPolicyEgressPeer{Namespaces: pe.Namespaces, Pods: cnpPods(pe.Pods)})
	}
	return out
}

// cnpPorts reads ANP ports as CNP protocols (a named port is protocol-less
// in both).
func cnpPorts(in *[]v1alpha1.AdminNetworkPolicyPort) []v1beta1.ClusterNetworkPolicyProtocol {
	if in == nil {
		return nil
	}
	out := []v1beta1.ClusterNetworkPolicyProtocol{}
	for _, p := range *in {
		var proto corev1.Protocol
		var port v1beta1.Port
		switch {
		case p.NamedPort != nil:
			out = append(out, v1beta1.ClusterNetworkPolicyProtocol{DestinationNamedPort: *p.NamedPort})
			continue
		case p.PortNumber != nil:
			proto, port = p.PortNumber.Protocol, v1beta1.Port{Number: p.PortNumber.Port}
		default:
			proto, port = p.PortRange.Protocol, v1beta1.Port{Range: &v1beta1.PortRange{Start: p.PortRange.Start, End: p.PortRange.End}}
		}
		switch proto {
		case corev1.ProtocolUDP:
			out = append(out, v1beta1.ClusterNetworkPolicyProtocol{UDP: &v1beta1.ClusterNetworkPolicyProtocolUDP{DestinationPort: &port}})
		case corev1.ProtocolSCTP:
			out = append(out, v1beta1.ClusterNetworkPolicyProtocol{SCTP: &v1beta1.ClusterNetworkPolicyProtocolSCTP{DestinationPort: &port}})
		default:
			out = append(out, v1beta1.ClusterNetworkPolicyProtocol{TCP: &v1beta1.ClusterNetworkPolicyProtocolTCP{DestinationPort: &port}})
		}
	}
	return out
}

// subjectSelects reports whether a subject selects the pod, and whether the
// subject is valid (an invalid one selects every pod).
func (r reference) subjectSelects(s v1beta1.ClusterNetworkPolicySubject, pod *corev1.Pod) (selects, valid bool) {
	if s.Namespaces != nil {
		if !r.selectorValid(s.Namespaces) {
			return true, false
		}
		sel, _ := r.selector(s.Namespaces)
		return sel.Matches(r.nsLabels(pod.Namespace)), true
	}
	ns, pods := &s.Pods.NamespaceSelector, &s.Pods.PodSelector
	valid = r.selectorValid(ns) && r.selectorValid(pods)
	nsOK, podOK := true, true
	if r.selectorValid(ns) {
		sel, _ := r.selector(ns)
		nsOK = sel.Matches(r.nsLabels(pod.Namespace))
	}
	if r.selectorValid(pods) {
		sel, _ := r.selector(pods)
		podOK = sel.Matches(labels.Set(pod.Labels))
	}
	return nsOK && podOK, valid
}

// clusterPeerMatches: does the peer match the address ip, owned by pod (or
// by no pod)?
func (r reference) clusterPeerMatches(pe v1beta1.ClusterNetworkPolicyEgressPeer, ip netip.Addr, pod *corev1.Pod) bool {
	switch {
	case pe.Namespaces != nil:
		sel, _ := r.selector(pe.Namespaces)
		return pod != nil && sel.Matches(r.nsLabels(pod.Namespace))
	case pe.Pods != nil:
		nsSel, _ := r.selector(&pe.Pods.NamespaceSelector)
		podSel, _ := r.selector(&pe.Pods.PodSelector)
		return pod != nil && nsSel.Matches(r.nsLabels(pod.Namespace)) && podSel.Matches(labels.Set(pod.Labels))
	case pe.Nodes != nil:
		sel, _ := r.selector(pe.Nodes)
		for _, n := range r.cl.nodes {
			if !sel.Matches(labels.Set(n.Labels)) {
				continue
			}
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP && netip.MustParseAddr(a.Address) == ip {
					return true
				}
			}
		}
		return false
	}
	for _, cidr := range pe.Networks {
		if netip.MustParsePrefix(string(cidr)).Contains(ip) {
			return true
		}
	}
	return false
}

func (r reference) peerValid(pe v1beta1.ClusterNetworkPolicyEgressPeer) bool {
	for _, s := range []*metav1.LabelSelector{pe.Namespaces, pe.Nodes} {
		if s != nil && !r.selectorValid(s) {
			return false
		}
	}
	return pe.Pods == nil || r.selectorValid(&pe.Pods.NamespaceSelector) && r.selectorValid(&pe.Pods.PodSelector)
}

func clusterPortMatches(protos []v1beta1.ClusterNetworkPolicyProtocol, proto ir.Protocol, port uint16, dstPod *corev1.Pod) bool {
	if protos == nil {
		return true
	}
	in := func(p *v1beta1.Port) bool {
		if p.Range != nil {
			return int32(port) >= p.Range.Start && int32(port) <= p.Range.End
		}
		return int32(port) == p.Number
	}
	for _, p := range protos {
		switch {
		case p.TCP != nil:
			if proto == ir.TCP && in(p.TCP.DestinationPort) {
				return true
			}
		case p.UDP != nil:
			if proto == ir.UDP && in(p.UDP.DestinationPort) {
				return true
			}
		case p.SCTP != nil:
			if proto == ir.SCTP && in(p.SCTP.DestinationPort) {
				return true
			}
		default:
			if hasNamedPort(dstPod, p.DestinationNamedPort, proto, port) {
				return true
			}
		}
	}
	return false
}

// tierVerdict runs one first-match tier for pod in one direction against
// the peer (ip, owned by peerPod). decided is false when no rule decided
// (no match, or Pass).
func (r reference) tierVerdict(tier ir.TierKind, pod *corev1.Pod, egress bool, ip netip.Addr, peerPod, dstPod *corev1.Pod, proto ir.Protocol, port uint16) (allowed, decided bool) {
	pols := r.pols
	if pols == nil {
		pols = r.clusterPolicies()
	}
	for _, p := range pols {
		if p.tier != tier {
			continue
		}
		selects, subjectValid := r.subjectSelects(p.subject, pod)
		if !selects {
			continue
		}
		rules := p.ingress
		if egress {
			rules = p.egress
		}
		for _, rule := range rules {
			valid := true
			for _, pe := range rule.peers {
				valid = valid && r.peerValid(pe)
			}
			action, matches := rule.action, false
			switch {
			case !valid && action == "Allow":
				matches = false
			case !valid:
				action, matches = "Deny", true
			default:
				for _, pe := range rule.peers {
					matches = matches || r.clusterPeerMatches(pe, ip, peerPod)
				}
				matches = matches && clusterPortMatches(rule.ports, proto, port, dstPod)
			}
			if !subjectValid {
				switch action {
				case "Allow":
					matches = false
				case "Pass":
					action = "Deny"
				}
			}
			if !matches {
				continue
			}
			switch action {
			case "Allow":
				return true, true
			case "Deny":
				return false, true
			}
			return false, false // Pass: leave the tier
		}
	}
	return false, false
}
