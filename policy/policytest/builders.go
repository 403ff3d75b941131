package policytest

import (
	"slices"

	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Namespace returns a namespace with exactly the given labels (copied). It
// does not add kubernetes.io/metadata.name: the API server does, and a test
// may want to see what happens without it.
func Namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: maps.Clone(labels)},
	}
}

// PodTweak changes a pod under construction.
type PodTweak func(*corev1.Pod)

// Pod returns a running pod in namespace ns, without labels, IPs, containers
// or node, changed by each tweak in order.
func Pod(ns, name string, tweaks ...PodTweak) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, tw := range tweaks {
		tw(p)
	}
	return p
}

// WithLabels adds labels to the pod, replacing values of existing keys.
func WithLabels(labels map[string]string) PodTweak {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		maps.Copy(p.Labels, labels)
	}
}

// WithIPs sets status.podIP to the first address and status.podIPs to all of
// them, in order. No addresses clears both.
func WithIPs(ips ...string) PodTweak {
	return func(p *corev1.Pod) {
		p.Status.PodIP = ""
		p.Status.PodIPs = nil
		for i, ip := range ips {
			if i == 0 {
				p.Status.PodIP = ip
			}
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
		}
	}
}

// WithContainerPorts adds one container per port, named like the upstream
// suite's containers ("cont-80-tcp"); a port without a protocol is TCP.
func WithContainerPorts(ports ...corev1.ContainerPort) PodTweak {
	return func(p *corev1.Pod) {
		for _, cp := range ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
				Name:  fmt.Sprintf("cont-%d-%s", cp.ContainerPort, strings.ToLower(string(proto))),
				Ports: []corev1.ContainerPort{cp},
			})
		}
	}
}

// ContainerPort returns a container port.
func ContainerPort(name string, port int32, proto corev1.Protocol) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: proto}
}

// ServePortName is the upstream suite's name for a container port:
// "serve-80-tcp".
func ServePortName(port int32, proto corev1.Protocol) string {
	return fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
}

// OnNode sets spec.nodeName.
func OnNode(node string) PodTweak {
	return func(p *corev1.Pod) { p.Spec.NodeName = node }
}

// HostNetwork sets spec.hostNetwork.
func HostNetwork() PodTweak {
	return func(p *corev1.Pod) { p.Spec.HostNetwork = true }
}

// WithPhase sets status.phase.
func WithPhase(phase corev1.PodPhase) PodTweak {
	return func(p *corev1.Pod) { p.Status.Phase = phase }
}

// PolicyTweak changes a NetworkPolicy under construction.
type PolicyTweak func(*networkingv1.NetworkPolicy)

// NetworkPolicy returns a policy in namespace ns with an empty pod selector
// (every pod of the namespace), no policy types and no rules, changed by each
// tweak in order.
func NetworkPolicy(ns, name string, tweaks ...PolicyTweak) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
	}
	for _, tw := range tweaks {
		tw(np)
	}
	return np
}

// WithPodSelector sets spec.podSelector.
func WithPodSelector(sel *metav1.LabelSelector) PolicyTweak {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.PodSelector = metav1.LabelSelector{}
		if sel != nil {
			np.Spec.PodSelector = *sel.DeepCopy()
		}
	}
}

// WithPolicyTypes sets spec.policyTypes (no types clears it).
func WithPolicyTypes(types ...networkingv1.PolicyType) PolicyTweak {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.PolicyTypes = append([]networkingv1.PolicyType(nil), types...)
	}
}

// WithIngress appends ingress rules. The first time it is applied it also
// makes spec.ingress a present (possibly empty) list and appends Ingress to
// spec.policyTypes unless it is there already (with WithPolicyTypes, a
// type listed twice could make more than two, which the API server
// refuses), as the upstream suite's helper does: WithIngress() alone
// isolates the selected pods for ingress and allows nothing.
func WithIngress(rules ...networkingv1.NetworkPolicyIngressRule) PolicyTweak {
	return func(np *networkingv1.NetworkPolicy) {
		if np.Spec.Ingress == nil {
			np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{}
			if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
				np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
			}
		}
		for _, r := range rules {
			np.Spec.Ingress = append(np.Spec.Ingress, *r.DeepCopy())
		}
	}
}

// WithEgress is WithIngress for egress.
func WithEgress(rules ...networkingv1.NetworkPolicyEgressRule) PolicyTweak {
	return func(np *networkingv1.NetworkPolicy) {
		if np.Spec.Egress == nil {
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{}
			if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
				np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			}
		}
		for _, r := range rules {
			np.Spec.Egress = append(np.Spec.Egress, *r.DeepCopy())
		}
	}
}

// rule is the direction-neutral content of an ingress or egress rule.
type rule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

// RuleTweak changes a rule under construction.
type RuleTweak func(*rule)

// Peers appends peers (from for ingress, to for egress).
func Peers(peers ...networkingv1.NetworkPolicyPeer) RuleTweak {
	return func(r *rule) { r.peers = append(r.peers, peers...) }
}

// Ports appends ports.
func Ports(ports ...networkingv1.NetworkPolicyPort) RuleTweak {
	return func(r *rule) { r.ports = append(r.ports, ports...) }
}

// IngressRule returns an ingress rule; without tweaks it allows everything.
func IngressRule(tweaks ...RuleTweak) networkingv1.NetworkPolicyIngressRule {
	var r rule
	for _, tw := range tweaks {
		tw(&r)
	}
	return networkingv1.NetworkPolicyIngressRule{From: r.peers, Ports: r.ports}
}

// EgressRule returns an egress rule; without tweaks it allows everything.
func EgressRule(tweaks ...RuleTweak) networkingv1.NetworkPolicyEgressRule {
	var r rule
	for _, tw := range tweaks {
		tw(&r)
	}
	return networkingv1.NetworkPolicyEgressRule{To: r.peers, Ports: r.ports}
}

// PodPeer selects pods of the policy's namespace.
func PodPeer(pods *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: pods.DeepCopy()}
}

// NamespacePeer selects every pod of the selected namespaces.
func NamespacePeer(namespaces *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: namespaces.DeepCopy()}
}

// PodInNamespacePeer selects the pods matching pods in the namespaces
// matching namespaces (both selectors in one peer: AND).
func PodInNamespacePeer(namespaces, pods *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: namespaces.DeepCopy(), PodSelector: pods.DeepCopy()}
}

// IPBlockPeer selects cidr minus every except.
func IPBlockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

// MatchLabels returns a selector with the given matchLabels (copied); an
// empty or nil map gives the empty selector, which selects everything.
func MatchLabels(labels map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: maps.Clone(labels)}
}

// MatchExpressions returns a selector made of requirements.
func MatchExpressions(reqs ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: reqs}
}

// Requirement returns a selector requirement.
func Requirement(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

// PortTweak changes a policy port under construction.
type PortTweak func(*networkingv1.NetworkPolicyPort)

// Port returns a numeric policy port with no protocol (TCP).
func Port(port int32, tweaks ...PortTweak) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(port)
	np := networkingv1.NetworkPolicyPort{Port: &p}
	for _, tw := range tweaks {
		tw(&np)
	}
	return np
}

// NamedPort returns a policy port naming a container port, with no protocol
// (TCP).
func NamedPort(name string, tweaks ...PortTweak) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	np := networkingv1.NetworkPolicyPort{Port: &p}
	for _, tw := range tweaks {
		tw(&np)
	}
	return np
}

// AnyPort returns a policy port without a port: every port of the protocol.
func AnyPort(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

// WithProtocol sets the port's protocol.
func WithProtocol(proto corev1.Protocol) PortTweak {
	return func(p *networkingv1.NetworkPolicyPort) { p.Protocol = &proto }
}

// WithEndPort sets the port's endPort.
func WithEndPort(end int32) PortTweak {
	return func(p *networkingv1.NetworkPolicyPort) { p.EndPort = &end }
}
