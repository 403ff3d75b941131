package policy_test

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-net/palisade/policy/ir"
)

// reference decides flows straight from the Kubernetes objects, written from
// DESIGN.md's semantics without any of the engine's machinery (no index, no
// sets, no IR), so that the two can be compared on random clusters.
type reference struct {
	cl *cluster
	// pols caches clusterPolicies (nil: computed on each use).
	pols []refPolicy
	// sels caches compiled selectors by address (nil: no cache); the
	// objects do not change while a reference is in use.
	sels map[*metav1.LabelSelector]compiledSelector
}

type compiledSelector struct {
	sel labels.Selector
	err error
}

// selector compiles s, through the cache when there is one.
func (r reference) selector(s *metav1.LabelSelector) (labels.Selector, error) {
	if r.sels == nil {
		return metav1.LabelSelectorAsSelector(s)
	}
	c, ok := r.sels[s]
	if !ok {
		c.sel, c.err = metav1.LabelSelectorAsSelector(s)
		r.sels[s] = c
	}
	return c.sel, c.err
}

func (r reference) nsLabels(ns string) labels.Set {
	out := labels.Set{"kubernetes.io/metadata.name": ns}
	if obj := r.cl.namespaces[ns]; obj != nil {
		for k, v := range obj.Labels {
			out[k] = v
		}
		out["kubernetes.io/metadata.name"] = ns
	}
	return out
}

func podActive(p *corev1.Pod) bool {
	return !p.Spec.HostNetwork && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && len(podAddrs(p)) > 0
}

func podAddrs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	for _, s := range append([]string{p.Status.PodIP}, func() []string {
		var ss []string
		for _, ip := range p.Status.PodIPs {
			ss = append(ss, ip.IP)
		}
		return ss
	}()...) {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// owner returns the pod that owns ip, or nil: of the active pods that
// report it, one not being deleted over one being deleted, then the most
// recently created, then the first by namespace/name.
func (r reference) owner(ip netip.Addr) *corev1.Pod {
	var best *corev1.Pod
	for _, p := range r.cl.pods {
		if !podActive(p) || !slices.Contains(podAddrs(p), ip) {
			continue
		}
		if best == nil || claimBeats(p, best) {
			best = p
		}
	}
	return best
}

func claimBeats(a, b *corev1.Pod) bool {
	if (a.DeletionTimestamp != nil) != (b.DeletionTimestamp != nil) {
		return a.DeletionTimestamp == nil
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.After(b.CreationTimestamp.Time)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// valid reports whether a policy passes validation (the kinds of invalid
// input the generator makes, and the rest of DESIGN.md's list).
func valid(np *networkingv1.NetworkPolicy) bool {
	if _, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil {
		return false
	}
	checkPeers := func(peers []networkingv1.NetworkPolicyPeer) bool {
		for _, pe := range peers {
			if pe.PodSelector != nil {
				if _, err := metav1.LabelSelectorAsSelector(pe.PodSelector); err != nil {
					return false
				}
			}
			if pe.NamespaceSelector != nil {
				if _, err := metav1.LabelSelectorAsSelector(pe.NamespaceSelector); err != nil {
					return false
				}
			}
			if pe.IPBlock != nil {
				cidr, err := netip.ParsePrefix(pe.IPBlock.CIDR)
				if err != nil {
					return false
				}
				for _, ex := range pe.IPBlock.Except {
					e, err := netip.ParsePrefix(ex)
					if err != nil || e.Addr().Is4() != cidr.Addr().Is4() || !cidr.Masked().Contains(e.Addr()) || e.Bits() <= cidr.Bits() {
						return false
					}
				}
			}
		}
		return true
	}
	checkPorts := func(ports []networkingv1.NetworkPolicyPort) bool {
		for _, p := range ports {
			if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP && *p.Protocol != corev1.ProtocolUDP && *p.Protocol != corev1.ProtocolSCTP {
				return false
			}
			if p.EndPort != nil && (p.Port == nil || p.Port.Type != intstr.Int || *p.EndPort < p.Port.IntVal) {
				return false
			}
		}
		return true
	}
	for _, r := range np.Spec.Ingress {
		if !checkPeers(r.From) || !checkPorts(r.Ports) {
			return false
		}
	}
	for _, r := range np.Spec.Egress {
		if !checkPeers(r.To) || !checkPorts(r.Ports) {
			return false
		}
	}
	return true
}

func (r reference) selects(np *networkingv1.NetworkPolicy, pod *corev1.Pod) bool {
	if np.Namespace != pod.Namespace {
		return false
	}
	sel, err := r.selector(&np.Spec.PodSelector)
	if err != nil {
		return true // an invalid selector selects the whole namespace
	}
	return sel.Matches(labels.Set(pod.Labels))
}

func hasType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return t == networkingv1.PolicyTypeIngress || len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, t)
}

// peerMatches: does a NetworkPolicyPeer of a policy in ns match the address
// (owned by pod, or by no pod)?
func (r reference) peerMatches(ns string, pe networkingv1.NetworkPolicyPeer, ip netip.Addr, pod *corev1.Pod) bool {
	if pe.IPBlock != nil {
		cidr := netip.MustParsePrefix(pe.IPBlock.CIDR).Masked()
		if !cidr.Contains(ip) {
			return false
		}
		for _, ex := range pe.IPBlock.Except {
			if netip.MustParsePrefix(ex).Masked().Contains(ip) {
				return false
			}
		}
		return true
	}
	if pod == nil {
		return false
	}
	if pe.NamespaceSelector == nil {
		if pod.Namespace != ns {
			return false
		}
	} else {
		sel, _ := r.selector(pe.NamespaceSelector)
		if !sel.Matches(r.nsLabels(pod.Namespace)) {
			return false
		}
	}
	if pe.PodSelector != nil {
		sel, _ := r.selector(pe.PodSelector)
		return sel.Matches(labels.Set(pod.Labels))
	}
	return true
}

// portMatches: do the rule's ports match the destination (owned by dstPod,
// or by no pod)?
func portMatches(ports []networkingv1.NetworkPolicyPort, proto ir.Protocol, port uint16, dstPod *corev1.Pod) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		want := corev1.ProtocolTCP
		if p.Protocol != nil {
			want = *p.Protocol
		}
		if string(want) != proto.String() {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.Int:
			end := p.Port.IntVal
			if p.EndPort != nil {
				end = *p.EndPort
			}
			if int32(port) >= p.Port.IntVal && int32(port) <= end {
				return true
			}
		default:
			if hasNamedPort(dstPod, p.Port.StrVal, proto, port) {
				return true
			}
		}
	}
	return false
}

// hasNamedPort reports whether pod (nil: no pod) has a container port named
// name of protocol proto with number port.
func hasNamedPort(pod *corev1.Pod, name string, proto ir.Protocol, port uint16) bool {
	if pod == nil {
		return false
	}
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			cproto := cp.Protocol
			if cproto == "" {
				cproto = corev1.ProtocolTCP
			}
			if cp.Name == name && string(cproto) == proto.String() && cp.ContainerPort == int32(port) {
				return true
			}
		}
	}
	return false
}

// allowed decides src → dst, each address being its owner's.
func (r reference) allowed(src, dst netip.Addr, proto ir.Protocol, port uint16) bool {
	srcPod, dstPod := r.owner(src), r.owner(dst)
	if srcPod != nil && srcPod == dstPod {
		return true
	}
	egress := r.tiers(srcPod, true, dst, dstPod, dstPod, proto, port, func(np *networkingv1.NetworkPolicy) bool {
		for _, rule := range np.Spec.Egress {
			if r.anyPeer(np.Namespace, rule.To, dst, dstPod) && portMatches(rule.Ports, proto, port, dstPod) {
				return true
			}
		}
		return false
	})
	ingress := r.tiers(dstPod, false, src, srcPod, dstPod, proto, port, func(np *networkingv1.NetworkPolicy) bool {
		for _, rule := range np.Spec.Ingress {
			if r.anyPeer(np.Namespace, rule.From, src, srcPod) && portMatches(rule.Ports, proto, port, dstPod) {
				return true
			}
		}
		return false
	})
	return egress && ingress
}

func (r reference) anyPeer(ns string, peers []networkingv1.NetworkPolicyPeer, ip netip.Addr, pod *corev1.Pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, pe := range peers {
		if r.peerMatches(ns, pe, ip, pod) {
			return true
		}
	}
	return false
}

// tiers decides one direction at pod (nil: not enforced, allowed): the Admin
// tier, then NetworkPolicy when the pod is isolated, then the Baseline tier,
// then allow. ip and peerPod are the other end, dstPod the destination.
func (r reference) tiers(pod *corev1.Pod, egress bool, ip netip.Addr, peerPod, dstPod *corev1.Pod, proto ir.Protocol, port uint16, npAllows func(*networkingv1.NetworkPolicy) bool) bool {
	if pod == nil {
		return true
	}
	if allowed, decided := r.tierVerdict(ir.TierAdmin, pod, egress, ip, peerPod, dstPod, proto, port); decided {
		return allowed
	}
	t := networkingv1.PolicyTypeIngress
	if egress {
		t = networkingv1.PolicyTypeEgress
	}
	if r.isolated(pod, t) {
		return r.direction(pod, t, npAllows)
	}
	if allowed, decided := r.tierVerdict(ir.TierBaseline, pod, egress, ip, peerPod, dstPod, proto, port); decided {
		return allowed
	}
	return true
}

func (r reference) isolated(pod *corev1.Pod, t networkingv1.PolicyType) bool {
	for _, np := range r.cl.policies {
		if r.selects(np, pod) && hasType(np, t) {
			return true
		}
	}
	return false
}

// direction: a pod not isolated for t allows; an isolated one allows when a
// valid selecting policy's rule allows.
func (r reference) direction(pod *corev1.Pod, t networkingv1.PolicyType, allows func(*networkingv1.NetworkPolicy) bool) bool {
	if pod == nil {
		return true
	}
	isolated := false
	for _, np := range r.cl.policies {
		if !r.selects(np, pod) || !hasType(np, t) {
			continue
		}
		isolated = true
		if valid(np) && allows(np) {
			return true
		}
	}
	return !isolated
}
