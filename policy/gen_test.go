package policy_test

import (
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// chooser draws small choices from a byte string (fuzz input) or, when the
// bytes run out, from a deterministic generator.
type chooser struct {
	data []byte
	seed uint64
}

func (c *chooser) intn(n int) int {
	if n <= 1 {
		return 0
	}
	if len(c.data) > 0 {
		b := c.data[0]
		c.data = c.data[1:]
		return int(b) % n
	}
	// splitmix64
	c.seed += 0x9e3779b97f4a7c15
	z := c.seed
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int(z % uint64(n))
}

func (c *chooser) chance(percent int) bool { return c.intn(100) < percent }

func pickOne[T any](c *chooser, xs []T) T { return xs[c.intn(len(xs))] }

// The universe random clusters are drawn from: small, so that selectors,
// IPs and names collide often.
var (
	genNamespaces = []string{"a", "b", "c"}
	genPods       = []string{"p0", "p1", "p2", "p3"}
	genKeys       = []string{"app", "tier", "env"}
	genValues     = []string{"x", "y", "z"}
	genPortNames  = []string{"http", "dns", "metrics"}
	genNodes      = []string{"n1", "n2"}
	genEpoch      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func genLabels(c *chooser) map[string]string {
	m := map[string]string{}
	for _, k := range genKeys {
		if c.chance(50) {
			m[k] = pickOne(c, genValues)
		}
	}
	return m
}

func genNamespace(c *chooser, name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: genLabels(c)}}
}

// genIP draws pod addresses from a pool small enough to collide, in
// 10.0.0.0/29 and fd00::/125.
func genIP(c *chooser, v6 bool) string {
	if v6 {
		return fmt.Sprintf("fd00::%d", c.intn(8))
	}
	return fmt.Sprintf("10.0.0.%d", c.intn(8))
}

func genPod(c *chooser, ns, name string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: genLabels(c)},
		Spec:       corev1.PodSpec{NodeName: pickOne(c, genNodes)},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	switch c.intn(10) {
	case 0: // no IP yet
	case 1, 2: // dual-stack
		p.Status.PodIP = genIP(c, false)
		p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}, {IP: genIP(c, true)}}
	case 3: // IPv6 only
		p.Status.PodIP = genIP(c, true)
	default:
		p.Status.PodIP = genIP(c, false)
	}
	// Addresses collide often: the claims are ranked by deletion, then
	// creation time, then name, so both vary.
	p.CreationTimestamp = metav1.NewTime(genEpoch.Add(time.Duration(c.intn(3)) * time.Second))
	if c.chance(15) {
		t := metav1.NewTime(genEpoch.Add(time.Minute))
		p.DeletionTimestamp = &t
	}
	switch c.intn(20) {
	case 0:
		p.Spec.HostNetwork = true
	case 1:
		p.Status.Phase = corev1.PodSucceeded
	case 2:
		p.Status.Phase = corev1.PodFailed
	}
	var ports []corev1.ContainerPort
	for _, name := range genPortNames {
		if c.chance(40) {
			ports = append(ports, corev1.ContainerPort{
				Name:          name,
				ContainerPort: int32(80 + c.intn(3)),
				Protocol:      pickOne(c, []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}),
			})
		}
	}
	p.Spec.Containers = []corev1.Container{{Name: "c", Ports: ports}}
	return p
}

func genSelector(c *chooser) *metav1.LabelSelector {
	s := &metav1.LabelSelector{}
	if c.chance(50) {
		s.MatchLabels = map[string]string{pickOne(c, genKeys): pickOne(c, genValues)}
	}
	for n := c.intn(3); n > 0; n-- {
		r := metav1.LabelSelectorRequirement{Key: pickOne(c, genKeys)}
		switch c.intn(4) {
		case 0:
			r.Operator = metav1.LabelSelectorOpIn
			r.Values = []string{pickOne(c, genValues), pickOne(c, genValues)}
		case 1:
			r.Operator = metav1.LabelSelectorOpNotIn
			r.Values = []string{pickOne(c, genValues)}
		case 2:
			r.Operator = metav1.LabelSelectorOpExists
		case 3:
			r.Operator = metav1.LabelSelectorOpDoesNotExist
		}
		s.MatchExpressions = append(s.MatchExpressions, r)
	}
	return s
}

var genCIDRs = []string{"10.0.0.0/24", "10.0.0.0/30", "10.0.0.4/31", "0.0.0.0/0", "fd00::/64", "fd00::/126", "::/0", "10.0.0.2/32"}

func genPeer(c *chooser) networkingv1.NetworkPolicyPeer {
	switch c.intn(4) {
	case 0:
		return networkingv1.NetworkPolicyPeer{PodSelector: genSelector(c)}
	case 1:
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: genSelector(c)}
	case 2:
		return networkingv1.NetworkPolicyPeer{PodSelector: genSelector(c), NamespaceSelector: genSelector(c)}
	}
	cidr := pickOne(c, genCIDRs)
	b := &networkingv1.IPBlock{CIDR: cidr}
	prefix := netip.MustParsePrefix(cidr)
	for n := c.intn(3); n > 0; n-- {
		// An except inside the cidr: a random sub-prefix of it.
		bits := prefix.Bits() + 1 + c.intn(prefix.Addr().BitLen()-prefix.Bits())
		if bits > prefix.Addr().BitLen() {
			continue
		}
		addr := prefix.Addr()
		if prefix.Addr().Is4() {
			a := addr.As4()
			a[3] = byte(c.intn(8))
			addr = netip.AddrFrom4(a)
		} else {
			a := addr.As16()
			a[15] = byte(c.intn(8))
			addr = netip.AddrFrom16(a)
		}
		sub := netip.PrefixFrom(addr, bits).Masked()
		if prefix.Contains(sub.Addr()) {
			b.Except = append(b.Except, sub.String())
		}
	}
	return networkingv1.NetworkPolicyPeer{IPBlock: b}
}

func genPorts(c *chooser) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for n := c.intn(3); n > 0; n-- {
		var p networkingv1.NetworkPolicyPort
		if c.chance(75) {
			proto := pickOne(c, []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP})
			p.Protocol = &proto
		}
		switch c.intn(4) {
		case 0: // every port of the protocol
		case 1:
			port := intstr.FromString(pickOne(c, genPortNames))
			p.Port = &port
		case 2:
			port := intstr.FromInt32(int32(80 + c.intn(3)))
			p.Port = &port
		case 3:
			port := intstr.FromInt32(int32(80 + c.intn(2)))
			end := port.IntVal + int32(c.intn(2))
			p.Port, p.EndPort = &port, &end
		}
		out = append(out, p)
	}
	return out
}

func genPolicy(c *chooser, ns, name string) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	np.Spec.PodSelector = *genSelector(c)
	switch c.intn(4) {
	case 0:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 1:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	case 2:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	for n := c.intn(3); n > 0; n-- {
		var r networkingv1.NetworkPolicyIngressRule
		for m := c.intn(3); m > 0; m-- {
			r.From = append(r.From, genPeer(c))
		}
		r.Ports = genPorts(c)
		np.Spec.Ingress = append(np.Spec.Ingress, r)
	}
	for n := c.intn(3); n > 0; n-- {
		var r networkingv1.NetworkPolicyEgressRule
		for m := c.intn(3); m > 0; m-- {
			r.To = append(r.To, genPeer(c))
		}
		r.Ports = genPorts(c)
		np.Spec.Egress = append(np.Spec.Egress, r)
	}
	if c.chance(5) {
		// Invalid: it must isolate and allow nothing.
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/33"}}},
		})
	}
	if c.chance(3) {
		np.Spec.PodSelector.MatchExpressions = append(np.Spec.PodSelector.MatchExpressions,
			metav1.LabelSelectorRequirement{Key: "app", Operator: "Near"})
	}
	return np
}

// cluster is a random cluster state.
type cluster struct {
	namespaces map[string]*corev1.Namespace
	pods       map[string]*corev1.Pod
	policies   map[string]*networkingv1.NetworkPolicy
	anps       map[string]*v1alpha1.AdminNetworkPolicy
	cnps       map[string]*v1beta1.ClusterNetworkPolicy
	banp       *v1alpha1.BaselineAdminNetworkPolicy
	nodes      map[string]*corev1.Node
}

func newCluster() *cluster {
	return &cluster{
		namespaces: map[string]*corev1.Namespace{},
		pods:       map[string]*corev1.Pod{},
		policies:   map[string]*networkingv1.NetworkPolicy{},
		anps:       map[string]*v1alpha1.AdminNetworkPolicy{},
		cnps:       map[string]*v1beta1.ClusterNetworkPolicy{},
		nodes:      map[string]*corev1.Node{},
	}
}

// event is one change to a cluster and to an engine.
type event struct {
	desc  string
	apply func(cl *cluster, e engineLike)
}

// engineLike is the part of policy.Engine the generator drives.
type engineLike interface {
	UpsertNamespace(*corev1.Namespace)
	DeleteNamespace(string)
	UpsertPod(*corev1.Pod) error
	DeletePod(string, string)
	UpsertNetworkPolicy(*networkingv1.NetworkPolicy) error
	DeleteNetworkPolicy(string, string)
	UpsertAdminNetworkPolicy(*v1alpha1.AdminNetworkPolicy) error
	DeleteAdminNetworkPolicy(string)
	UpsertBaselineAdminNetworkPolicy(*v1alpha1.BaselineAdminNetworkPolicy) error
	DeleteBaselineAdminNetworkPolicy(string)
	UpsertClusterNetworkPolicy(*v1beta1.ClusterNetworkPolicy) error
	DeleteClusterNetworkPolicy(string)
	UpsertNode(*corev1.Node)
	DeleteNode(string)
}

func genEvent(c *chooser) event {
	if c.chance(30) {
		return genClusterEvent(c)
	}
	ns := pickOne(c, genNamespaces)
	switch c.intn(8) {
	case 0:
		obj := genNamespace(c, ns)
		return event{"upsert namespace " + ns, func(cl *cluster, e engineLike) { cl.namespaces[ns] = obj; e.UpsertNamespace(obj) }}
	case 1:
		return event{"delete namespace " + ns, func(cl *cluster, e engineLike) { delete(cl.namespaces, ns); e.DeleteNamespace(ns) }}
	case 2, 3, 4:
		obj := genPod(c, ns, pickOne(c, genPods))
		return event{"upsert pod " + ns + "/" + obj.Name, func(cl *cluster, e engineLike) {
			cl.pods[ns+"/"+obj.Name] = obj
			_ = e.UpsertPod(obj)
		}}
	case 5:
		name := pickOne(c, genPods)
		return event{"delete pod " + ns + "/" + name, func(cl *cluster, e engineLike) { delete(cl.pods, ns+"/"+name); e.DeletePod(ns, name) }}
	case 6:
		obj := genPolicy(c, ns, pickOne(c, []string{"np0", "np1", "np2"}))
		return event{"upsert policy " + ns + "/" + obj.Name, func(cl *cluster, e engineLike) {
			cl.policies[ns+"/"+obj.Name] = obj
			_ = e.UpsertNetworkPolicy(obj)
		}}
	}
	name := pickOne(c, []string{"np0", "np1", "np2"})
	return event{"delete policy " + ns + "/" + name, func(cl *cluster, e engineLike) { delete(cl.policies, ns+"/"+name); e.DeleteNetworkPolicy(ns, name) }}
}

// load feeds a whole cluster to an engine.
func (cl *cluster) load(e engineLike) {
	for _, ns := range cl.namespaces {
		e.UpsertNamespace(ns)
	}
	for _, p := range cl.pods {
		_ = e.UpsertPod(p)
	}
	for _, np := range cl.policies {
		_ = e.UpsertNetworkPolicy(np)
	}
	for _, n := range cl.nodes {
		e.UpsertNode(n)
	}
	for _, anp := range cl.anps {
		_ = e.UpsertAdminNetworkPolicy(anp)
	}
	for _, cnp := range cl.cnps {
		_ = e.UpsertClusterNetworkPolicy(cnp)
	}
	if cl.banp != nil {
		_ = e.UpsertBaselineAdminNetworkPolicy(cl.banp)
	}
}
