package policy_test

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// Random cluster-wide policies and nodes for the incremental fuzz test and
// the reference. Names collide often (three per kind) so that upserts
// replace and priorities tie.
var (
	genClusterNames = []string{"c0", "c1", "c2"}
	genNodeIPs      = []string{"10.0.0.6", "10.0.0.7", "fd00::6", "fd00::7"}
	// Priorities collide so that the ANP-before-CNP-then-name rule decides.
	genPriorities = []int32{0, 1, 1}
)

func genNode(c *chooser, name string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: genLabels(c)}}
	if c.chance(70) {
		// The usual case: a node keeps its addresses and changes labels.
		i := slices.Index(genNodes, name)
		n.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: genNodeIPs[i]},
			{Type: corev1.NodeInternalIP, Address: genNodeIPs[2+i]},
		}
	} else {
		for _, ip := range genNodeIPs {
			if c.chance(30) {
				n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
			}
		}
	}
	if c.chance(20) {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "10.0.0.5"})
	}
	return n
}

// badSelector is a selector the engine rejects (unknown operator).
func badSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}
}

func genCNPPeer(c *chooser, egress bool) v1beta1.ClusterNetworkPolicyEgressPeer {
	n := 2
	if egress {
		n = 4
	}
	switch c.intn(n) {
	case 0:
		return v1beta1.ClusterNetworkPolicyEgressPeer{Namespaces: genSelector(c)}
	case 1:
		return v1beta1.ClusterNetworkPolicyEgressPeer{Pods: &v1beta1.NamespacedPod{NamespaceSelector: *genSelector(c), PodSelector: *genSelector(c)}}
	case 2:
		return v1beta1.ClusterNetworkPolicyEgressPeer{Nodes: genSelector(c)}
	}
	var nets []v1beta1.CIDR
	for range 1 + c.intn(2) {
		nets = append(nets, v1beta1.CIDR(pickOne(c, []string{"10.0.0.0/24", "10.0.0.0/30", "10.0.0.4/31", "0.0.0.0/0", "fd00::/126", "::/0", "10.0.0.2/32"})))
	}
	return v1beta1.ClusterNetworkPolicyEgressPeer{Networks: nets}
}

// genCNPProtocols returns nil (every port) or a few protocol matches.
func genCNPProtocols(c *chooser, named bool) []v1beta1.ClusterNetworkPolicyProtocol {
	if c.chance(40) {
		return nil
	}
	var out []v1beta1.ClusterNetworkPolicyProtocol
	for range 1 + c.intn(2) {
		port := &v1beta1.Port{Number: int32(80 + c.intn(3))}
		if c.chance(40) {
			start := int32(80 + c.intn(2))
			port = &v1beta1.Port{Range: &v1beta1.PortRange{Start: start, End: start + 1}}
		}
		switch c.intn(4) {
		case 0:
			out = append(out, v1beta1.ClusterNetworkPolicyProtocol{TCP: &v1beta1.ClusterNetworkPolicyProtocolTCP{DestinationPort: port}})
		case 1:
			out = append(out, v1beta1.ClusterNetworkPolicyProtocol{UDP: &v1beta1.ClusterNetworkPolicyProtocolUDP{DestinationPort: port}})
		case 2:
			out = append(out, v1beta1.ClusterNetworkPolicyProtocol{SCTP: &v1beta1.ClusterNetworkPolicyProtocolSCTP{DestinationPort: port}})
		default:
			if named {
				out = append(out, v1beta1.ClusterNetworkPolicyProtocol{DestinationNamedPort: pickOne(c, genPortNames)})
			} else {
				out = append(out, v1beta1.ClusterNetworkPolicyProtocol{TCP: &v1beta1.ClusterNetworkPolicyProtocolTCP{DestinationPort: port}})
			}
		}
	}
	return out
}

// genCNPRules draws rules for one direction; egress rules may use nodes and
// networks peers, and then no named port (the API forbids it).
func genCNPRules(c *chooser, egress bool, actions []v1beta1.ClusterNetworkPolicyRuleAction) []v1beta1.ClusterNetworkPolicyEgressRule {
	var out []v1beta1.ClusterNetworkPolicyEgressRule
	for i := range c.intn(4) {
		r := v1beta1.ClusterNetworkPolicyEgressRule{Name: fmt.Sprintf("r%d", i), Action: pickOne(c, actions)}
		outside := false
		for range 1 + c.intn(2) {
			pe := genCNPPeer(c, egress)
			outside = outside || pe.Nodes != nil || pe.Networks != nil
			r.To = append(r.To, pe)
		}
		if c.chance(5) {
			// Invalid: Allow matches nothing, Deny and Pass deny all.
			r.To[0] = v1beta1.ClusterNetworkPolicyEgressPeer{Namespaces: badSelector()}
		}
		r.Protocols = genCNPProtocols(c, !outside)
		out = append(out, r)
	}
	return out
}

func genSubject(c *chooser) v1beta1.ClusterNetworkPolicySubject {
	if c.chance(3) {
		return v1beta1.ClusterNetworkPolicySubject{Namespaces: badSelector()}
	}
	if c.chance(50) {
		return v1beta1.ClusterNetworkPolicySubject{Namespaces: genSelector(c)}
	}
	return v1beta1.ClusterNetworkPolicySubject{Pods: &v1beta1.NamespacedPod{NamespaceSelector: *genSelector(c), PodSelector: *genSelector(c)}}
}

func genCNP(c *chooser, name string) *v1beta1.ClusterNetworkPolicy {
	cnp := &v1beta1.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	cnp.Spec.Tier = pickOne(c, []v1beta1.Tier{v1beta1.AdminTier, v1beta1.BaselineTier})
	cnp.Spec.Priority = pickOne(c, genPriorities)
	cnp.Spec.Subject = genSubject(c)
	actions := []v1beta1.ClusterNetworkPolicyRuleAction{v1beta1.ClusterNetworkPolicyRuleActionAccept, v1beta1.ClusterNetworkPolicyRuleActionDeny, v1beta1.ClusterNetworkPolicyRuleActionPass}
	for _, r := range genCNPRules(c, false, actions) {
		in := v1beta1.ClusterNetworkPolicyIngressRule{Name: r.Name, Action: r.Action, Protocols: r.Protocols}
		for _, pe := range r.To {
			in.From = append(in.From, v1beta1.ClusterNetworkPolicyIngressPeer{Namespaces: pe.Namespaces, Pods: pe.Pods})
		}
		cnp.Spec.Ingress = append(cnp.Spec.Ingress, in)
	}
	cnp.Spec.Egress = genCNPRules(c, true, actions)
	return cnp
}

// The ANP and BANP generators draw a CNP and translate it: the same shapes,
// the v1alpha1 spelling.

func anpSubject(s v1beta1.ClusterNetworkPolicySubject) v1alpha1.AdminNetworkPolicySubject {
	return v1alpha1.AdminNetworkPolicySubject{Namespaces: s.Namespaces, Pods: anpPods(s.Pods)}
}

func anpPods(p *v1beta1.NamespacedPod) *v1alpha1.NamespacedPod {
	if p == nil {
		return nil
	}
	return &v1alpha1.NamespacedPod{NamespaceSelector: p.NamespaceSelector, PodSelector: p.PodSelector}
}

func anpPorts(protos []v1beta1.ClusterNetworkPolicyProtocol) *[]v1alpha1.AdminNetworkPolicyPort {
	if protos == nil {
		return nil
	}
	out := []v1alpha1.AdminNetworkPolicyPort{}
	for _, p := range protos {
		var proto corev1.Protocol
		var port *v1beta1.Port
		switch {
		case p.TCP != nil:
			proto, port = corev1.ProtocolTCP, p.TCP.DestinationPort
		case p.UDP != nil:
			proto, port = corev1.ProtocolUDP, p.UDP.DestinationPort
		case p.SCTP != nil:
			proto, port = corev1.ProtocolSCTP, p.SCTP.DestinationPort
		default:
			name := p.DestinationNamedPort
			out = append(out, v1alpha1.AdminNetworkPolicyPort{NamedPort: &name})
			continue
		}
		if port.Range != nil {
			out = append(out, v1alpha1.AdminNetworkPolicyPort{PortRange: &v1alpha1.PortRange{Protocol: proto, Start: port.Range.Start, End: port.Range.End}})
		} else {
			out = append(out, v1alpha1.AdminNetworkPolicyPort{PortNumber: &v1alpha1.Port{Protocol: proto, Port: port.Number}})
		}
	}
	return &out
}

func anpAction(a v1beta1.ClusterNetworkPolicyRuleAction) string {
	if a == v1beta1.ClusterNetworkPolicyRuleActionAccept {
		return "Allow"
	}
	return string(a)
}

func genANP(c *chooser, name string) *v1alpha1.AdminNetworkPolicy {
	cnp := genCNP(c, name)
	anp := &v1alpha1.AdminNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	anp.Spec.Priority = cnp.Spec.Priority
	anp.Spec.Subject = anpSubject(cnp.Spec.Subject)
	for _, r := range cnp.Spec.Ingress {
		in := v1alpha1.AdminNetworkPolicyIngressRule{Name: r.Name, Action: v1alpha1.AdminNetworkPolicyRuleAction(anpAction(r.Action)), Ports: anpPorts(r.Protocols)}
		for _, pe := range r.From {
			in.From = append(in.From, v1alpha1.AdminNetworkPolicyIngressPeer{Namespaces: pe.Namespaces, Pods: anpPods(pe.Pods)})
		}
		anp.Spec.Ingress = append(anp.Spec.Ingress, in)
	}
	for _, r := range cnp.Spec.Egress {
		out := v1alpha1.AdminNetworkPolicyEgressRule{Name: r.Name, Action: v1alpha1.AdminNetworkPolicyRuleAction(anpAction(r.Action)), Ports: anpPorts(r.Protocols)}
		for _, pe := range r.To {
			out.To = append(out.To, v1alpha1.AdminNetworkPolicyEgressPeer{Namespaces: pe.Namespaces, Pods: anpPods(pe.Pods), Nodes: pe.Nodes, Networks: anpCIDRs(pe.Networks)})
		}
		anp.Spec.Egress = append(anp.Spec.Egress, out)
	}
	return anp
}

func anpCIDRs(in []v1beta1.CIDR) []v1alpha1.CIDR {
	if in == nil {
		return nil
	}
	out := make([]v1alpha1.CIDR, len(in))
	for i, s := range in {
		out[i] = v1alpha1.CIDR(s)
	}
	return out
}

func genBANP(c *chooser) *v1alpha1.BaselineAdminNetworkPolicy {
	cnp := genCNP(c, "default")
	banp := &v1alpha1.BaselineAdminNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	banp.Spec.Subject = anpSubject(cnp.Spec.Subject)
	action := func(a v1beta1.ClusterNetworkPolicyRuleAction) string {
		if a == v1beta1.ClusterNetworkPolicyRuleActionPass {
			return "Deny"
		}
		return anpAction(a)
	}
	for _, r := range cnp.Spec.Ingress {
		in := v1alpha1.BaselineAdminNetworkPolicyIngressRule{Name: r.Name, Action: v1alpha1.BaselineAdminNetworkPolicyRuleAction(action(r.Action)), Ports: anpPorts(r.Protocols)}
		for _, pe := range r.From {
			in.From = append(in.From, v1alpha1.AdminNetworkPolicyIngressPeer{Namespaces: pe.Namespaces, Pods: anpPods(pe.Pods)})
		}
		banp.Spec.Ingress = append(banp.Spec.Ingress, in)
	}
	for _, r := range cnp.Spec.Egress {
		out := v1alpha1.BaselineAdminNetworkPolicyEgressRule{Name: r.Name, Action: v1alpha1.BaselineAdminNetworkPolicyRuleAction(action(r.Action)), Ports: anpPorts(r.Protocols)}
		for _, pe := range r.To {
			out.To = append(out.To, v1alpha1.BaselineAdminNetworkPolicyEgressPeer{Namespaces: pe.Namespaces, Pods: anpPods(pe.Pods), Nodes: pe.Nodes, Networks: anpCIDRs(pe.Networks)})
		}
		banp.Spec.Egress = append(banp.Spec.Egress, out)
	}
	return banp
}

// genClusterEvent draws a change of a cluster-wide policy or a node.
func genClusterEvent(c *chooser) event {
	name := pickOne(c, genClusterNames)
	switch c.intn(8) {
	case 0, 1:
		obj := genANP(c, name)
		return event{"upsert AdminNetworkPolicy " + name, func(cl *cluster, e engineLike) { cl.anps[name] = obj; _ = e.UpsertAdminNetworkPolicy(obj) }}
	case 2, 3:
		obj := genCNP(c, name)
		return event{"upsert ClusterNetworkPolicy " + name, func(cl *cluster, e engineLike) { cl.cnps[name] = obj; _ = e.UpsertClusterNetworkPolicy(obj) }}
	case 4:
		obj := genBANP(c)
		return event{"upsert BaselineAdminNetworkPolicy default", func(cl *cluster, e engineLike) {
			cl.banp = obj
			_ = e.UpsertBaselineAdminNetworkPolicy(obj)
		}}
	case 5:
		node := genNode(c, pickOne(c, genNodes))
		return event{"upsert Node " + node.Name, func(cl *cluster, e engineLike) { cl.nodes[node.Name] = node; e.UpsertNode(node) }}
	case 6:
		switch c.intn(4) {
		case 0:
			return event{"delete AdminNetworkPolicy " + name, func(cl *cluster, e engineLike) { delete(cl.anps, name); e.DeleteAdminNetworkPolicy(name) }}
		case 1:
			return event{"delete ClusterNetworkPolicy " + name, func(cl *cluster, e engineLike) { delete(cl.cnps, name); e.DeleteClusterNetworkPolicy(name) }}
		case 2:
			return event{"delete BaselineAdminNetworkPolicy default", func(cl *cluster, e engineLike) {
				cl.banp = nil
				e.DeleteBaselineAdminNetworkPolicy("default")
			}}
		}
	}
	node := pickOne(c, genNodes)
	return event{"delete Node " + node, func(cl *cluster, e engineLike) { delete(cl.nodes, node); e.DeleteNode(node) }}
}
