package policytest

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Family is an IP address family.
type Family string

const (
	// IPv4 is the IPv4 family.
	IPv4 Family = "IPv4"
	// IPv6 is the IPv6 family.
	IPv6 Family = "IPv6"
)

// FamilyOf returns the family of a (an IPv4-mapped IPv6 address is IPv4).
func FamilyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

const (
	// DefaultNode is the node every model pod runs on unless Model.Node says
	// otherwise.
	DefaultNode = "node-1"
	// NamespaceNameLabel is the label the API server puts on every namespace.
	NamespaceNameLabel = "kubernetes.io/metadata.name"
)

// Model describes the cluster the scenarios run in: namespaces, the pods in
// each, the container ports of every pod, and the IP families.
type Model struct {
	// Namespaces and Pods are names; every namespace holds every pod name.
	Namespaces []string
	Pods       []string
	// Ports and Protocols give each pod one container per (port, protocol),
	// its port named ServePortName(port, protocol).
	Ports     []int32
	Protocols []corev1.Protocol
	// Families are the pod IP families; the first is status.podIP. At
	// least one.
	Families []Family
	// Node, when set, returns the node a pod runs on; nil puts every pod on
	// DefaultNode.
	Node func(namespace, pod string) string
}

// StandardModel returns the upstream suite's model: namespaces x, y, z, pods
// a, b, c, ports 80 and 81 on TCP, UDP and SCTP, every pod on DefaultNode.
// families defaults to IPv4 alone.
func StandardModel(families ...Family) Model {
	if len(families) == 0 {
		families = []Family{IPv4}
	}
	return Model{
		Namespaces: []string{"x", "y", "z"},
		Pods:       []string{"a", "b", "c"},
		Ports:      []int32{80, 81},
		Protocols:  []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP},
		Families:   slices.Clone(families),
	}
}

// StandardPods returns the standard model's pods as "namespace/pod", in
// matrix order: x/a, x/b, x/c, y/a, …, z/c.
func StandardPods() []string {
	return StandardModel().PodNames()
}

// PodNames returns every pod as "namespace/pod", namespace by namespace.
func (m Model) PodNames() []string {
	var out []string
	for _, ns := range m.Namespaces {
		for _, p := range m.Pods {
			out = append(out, ns+"/"+p)
		}
	}
	return out
}

// PodIP returns the deterministic address of a model pod in fam: 10.0.n.m or
// fd00::n:m, n and m the 1-based positions of the namespace and the pod. ok
// is false for a name outside the model.
func (m Model) PodIP(namespace, pod string, fam Family) (addr netip.Addr, ok bool) {
	n := slices.Index(m.Namespaces, namespace) + 1
	p := slices.Index(m.Pods, pod) + 1
	if n == 0 || p == 0 || n > 255 || p > 255 {
		return netip.Addr{}, false
	}
	switch fam {
	case IPv4:
		return netip.AddrFrom4([4]byte{10, 0, byte(n), byte(p)}), true
	case IPv6:
		var b [16]byte
		b[0], b[1] = 0xfd, 0x00
		b[13], b[15] = byte(n), byte(p)
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// NamespaceObject returns the model's namespace: labelled ns=<name> and
// kubernetes.io/metadata.name=<name>.
func (m Model) NamespaceObject(name string) *corev1.Namespace {
	return Namespace(name, map[string]string{"ns": name, NamespaceNameLabel: name})
}

// PodObject returns the model's pod: labelled pod=<name>, with its
// containers, IPs and node. It returns an error for a name outside the model.
func (m Model) PodObject(namespace, name string) (*corev1.Pod, error) {
	var ips []string
	for _, fam := range m.Families {
		a, ok := m.PodIP(namespace, name, fam)
		if !ok {
			return nil, fmt.Errorf("pod %s/%s: not in the model (or family %q unknown)", namespace, name, fam)
		}
		ips = append(ips, a.String())
	}
	var ports []corev1.ContainerPort
	for _, port := range m.Ports {
		for _, proto := range m.Protocols {
			ports = append(ports, ContainerPort(ServePortName(port, proto), port, proto))
		}
	}
	node := DefaultNode
	if m.Node != nil {
		node = m.Node(namespace, name)
	}
	return Pod(namespace, name,
		WithLabels(map[string]string{"pod": name}),
		WithContainerPorts(ports...),
		WithIPs(ips...),
		OnNode(node),
	), nil
}

// Cluster returns the model's namespaces and pods, without policies.
func (m Model) Cluster() (*Cluster, error) {
	c := NewCluster()
	for _, ns := range m.Namespaces {
		c.SetNamespace(m.NamespaceObject(ns))
		for _, name := range m.Pods {
			p, err := m.PodObject(ns, name)
			if err != nil {
				return nil, err
			}
			c.SetPod(p)
		}
	}
	return c, nil
}
