package policy

import (
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/selector"
)

// nodeState is what the engine keeps of a Node: its labels and its
// InternalIP addresses, for the `nodes` peers of cluster policies. Nodes live
// in an index of their own, so that no pod selector ever matches a node.
type nodeState struct {
	labels map[string]string
	ips    []netip.Addr
}

// nodeIPs returns a node's InternalIP addresses of both families, sorted and
// unique. Unparsable addresses are skipped.
func nodeIPs(node *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil || ip.Zone() != "" {
			continue
		}
		out = append(out, ip.Unmap())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func (e *engine) upsertNode(node *corev1.Node) {
	if node == nil {
		return
	}
	labels := maps.Clone(node.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	ips := nodeIPs(node)
	old := e.nodes[node.Name]
	if old != nil && slices.Equal(old.ips, ips) {
		// Same addresses: only the match sets can change.
		old.labels = labels
		e.nodeChanges(old.ips, e.nodeIdx.Upsert(node.Name, labels))
		return
	}
	if old != nil {
		e.nodeChanges(old.ips, e.nodeIdx.Delete(node.Name))
	}
	e.nodes[node.Name] = &nodeState{labels: labels, ips: ips}
	e.nodeChanges(ips, e.nodeIdx.Upsert(node.Name, labels))
}

func (e *engine) deleteNode(name string) {
	old := e.nodes[name]
	if old == nil {
		return
	}
	delete(e.nodes, name)
	e.nodeChanges(old.ips, e.nodeIdx.Delete(name))
}

// nodeChanges applies the match-set changes of one node, whose addresses are
// ips, to the node address sets.
func (e *engine) nodeChanges(ips []netip.Addr, changes []selector.Change[string]) {
	for _, ch := range changes {
		set := e.nodeSets[ch.Selector]
		if set == nil {
			continue
		}
		for _, ip := range ips {
			if ch.Matched {
				e.addMember(set, ir.HostPrefix(ip))
			} else {
				e.removeMember(set, ir.HostPrefix(ip))
			}
		}
	}
}
