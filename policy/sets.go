package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/selector"
)

// memberSet holds a set's members with reference counts (two pods can share
// an IP for a moment) and the changes not yet emitted.
type memberSet[T comparable] struct {
	members map[T]int32
	// emitted says whether the last delta (Delta or Checkpoint) contained
	// the set.
	emitted bool
	// pending holds, for an emitted set, members added (true) or removed
	// (false) since; an add and a remove of the same member cancel.
	pending map[T]bool
}

// add counts one more reason for m and reports whether m became a member.
func (s *memberSet[T]) add(m T) bool {
	s.members[m]++
	if s.members[m] != 1 {
		return false
	}
	s.note(m, true)
	return true
}

// remove drops one reason for m and reports whether m stopped being a member.
func (s *memberSet[T]) remove(m T) bool {
	n, ok := s.members[m]
	if !ok {
		return false
	}
	if n > 1 {
		s.members[m] = n - 1
		return false
	}
	delete(s.members, m)
	s.note(m, false)
	return true
}

func (s *memberSet[T]) note(m T, added bool) {
	if !s.emitted {
		return
	}
	if prev, ok := s.pending[m]; ok && prev != added {
		delete(s.pending, m)
		return
	}
	if s.pending == nil {
		s.pending = make(map[T]bool)
	}
	s.pending[m] = added
}

// reset replaces the members, noting the difference.
func (s *memberSet[T]) reset(members map[T]int32) {
	for m := range s.members {
		if _, ok := members[m]; !ok {
			s.note(m, false)
		}
	}
	for m := range members {
		if _, ok := s.members[m]; !ok {
			s.note(m, true)
		}
	}
	s.members = members
}

// list returns the members sorted by cmp.
func (s *memberSet[T]) list(cmp func(a, b T) int) []T {
	if len(s.members) == 0 {
		return nil
	}
	out := make([]T, 0, len(s.members))
	for m := range s.members {
		out = append(out, m)
	}
	slices.SortFunc(out, cmp)
	return out
}

// takePending returns the pending additions and removals, sorted, and clears
// them.
func (s *memberSet[T]) takePending(cmp func(a, b T) int) (added, removed []T) {
	for m, add := range s.pending {
		if add {
			added = append(added, m)
		} else {
			removed = append(removed, m)
		}
	}
	slices.SortFunc(added, cmp)
	slices.SortFunc(removed, cmp)
	s.pending = nil
	return added, removed
}

// addrSet is an IR address set: the pods a selector matches, or an ipBlock.
type addrSet struct {
	memberSet[netip.Prefix]
	id   string
	desc string
	// refs counts the rules using the set; at zero it is withdrawn at the
	// next Delta.
	refs int
	// pods reports a set fed by a pod selector, nodes one fed by a node
	// selector (the nodes' InternalIPs); sel is its selector and selID its
	// registration (in the pod or the node index) while refs > 0.
	pods  bool
	nodes bool
	sel   selector.Selector
	selID selector.ID
	// block holds an ipBlock set's members.
	block []netip.Prefix
}

// portSet is an IR port set: the (IP, port) pairs of every active pod with a
// named container port.
type portSet struct {
	memberSet[netip.AddrPort]
	id   string
	port namedPort
	refs int
}

// peer is what a rule's peer resolves to before it becomes a set.
type peer struct {
	pods  bool
	nodes bool
	sel   selector.Selector // pods or nodes
	block []netip.Prefix    // ipBlock: cidr minus excepts
	key   string            // canonical form, the set's identity
	desc  string
}

func podPeer(sel selector.Selector) peer {
	return peer{pods: true, sel: sel, key: "pods:" + sel.String(), desc: describeSelector(sel)}
}

// nodePeer is the InternalIP addresses of the nodes sel matches.
func nodePeer(sel selector.Selector) peer {
	desc := "all nodes"
	if !sel.IsEverything() {
		desc = "nodes " + sel.String()
	}
	return peer{nodes: true, sel: sel, key: "nodes:" + sel.String(), desc: desc}
}

func blockPeer(cidr netip.Prefix, excepts []netip.Prefix) peer {
	var b strings.Builder
	b.WriteString(cidr.Masked().String())
	ex := slices.Clone(excepts)
	slices.SortFunc(ex, ir.ComparePrefix)
	ex = slices.Compact(ex)
	for i, p := range ex {
		if i == 0 {
			b.WriteString(" except ")
		} else {
			b.WriteString(",")
		}
		b.WriteString(p.Masked().String())
	}
	return peer{block: ir.Subtract(cidr, ex), key: "net:" + b.String(), desc: b.String()}
}

func (p peer) setID() string {
	sum := sha256.Sum256([]byte(p.key))
	if p.pods {
		return "pods-" + hex.EncodeToString(sum[:8])
	}
	if p.nodes {
		return "nodes-" + hex.EncodeToString(sum[:8])
	}
	return "net-" + hex.EncodeToString(sum[:8])
}

func portSetID(k namedPort) string {
	switch k.proto { // on every pod's every named port: no ToLower allocation
	case ir.TCP:
		return "tcp-" + k.name
	case ir.UDP:
		return "udp-" + k.name
	case ir.SCTP:
		return "sctp-" + k.name
	}
	return strings.ToLower(k.proto.String()) + "-" + k.name
}

// acquireAddrSet takes a reference on the set for p, creating or reviving it.
func (e *engine) acquireAddrSet(p peer) *addrSet {
	id := p.setID()
	set := e.addrSets[id]
	if set == nil {
		set = &addrSet{id: id, desc: p.desc, pods: p.pods, nodes: p.nodes, sel: p.sel, block: p.block}
		set.members = map[netip.Prefix]int32{}
		e.addrSets[id] = set
	}
	set.refs++
	if set.refs > 1 {
		return set
	}
	e.changedAddr[id] = struct{}{}
	members := make(map[netip.Prefix]int32)
	if set.pods {
		selID, _ := e.idx.Add(set.sel)
		set.selID = selID
		e.usersOf(selID).set = set
		for key := range e.idx.Matches(selID) {
			for _, ip := range e.pods[key].ips {
				members[ir.HostPrefix(ip)]++
			}
		}
	} else if set.nodes {
		selID, _ := e.nodeIdx.Add(set.sel)
		set.selID = selID
		e.nodeSets[selID] = set
		for name := range e.nodeIdx.Matches(selID) {
			for _, ip := range e.nodes[name].ips {
				members[ir.HostPrefix(ip)]++
			}
		}
	} else {
		for _, pfx := range set.block {
			members[pfx] = 1
		}
	}
	set.reset(members)
	return set
}

// releaseAddrSet drops a reference; the last one withdraws the set.
func (e *engine) releaseAddrSet(set *addrSet) {
	set.refs--
	if set.refs > 0 {
		return
	}
	e.changedAddr[set.id] = struct{}{}
	switch {
	case set.pods:
		e.usersOf(set.selID).set = nil
		e.releaseSelector(set.selID)
	case set.nodes:
		if e.nodeIdx.Release(set.selID) {
			delete(e.nodeSets, set.selID)
		}
	}
}

func (e *engine) addMember(set *addrSet, p netip.Prefix) {
	if set.add(p) {
		e.changedAddr[set.id] = struct{}{}
	}
}

func (e *engine) removeMember(set *addrSet, p netip.Prefix) {
	if set.remove(p) {
		e.changedAddr[set.id] = struct{}{}
	}
}

func (e *engine) acquirePortSet(k namedPort) *portSet {
	id := portSetID(k)
	set := e.portSets[id]
	if set == nil {
		set = &portSet{id: id, port: k}
		set.members = map[netip.AddrPort]int32{}
		e.portSets[id] = set
		e.portSetsByPort[k] = set
	}
	set.refs++
	if set.refs > 1 {
		return set
	}
	e.changedPortSet[id] = struct{}{}
	members := make(map[netip.AddrPort]int32)
	for p := range e.podsByPort[k] {
		for m := range podPortMembers(p, k) {
			members[m]++
		}
	}
	set.reset(members)
	return set
}

func (e *engine) releasePortSet(set *portSet) {
	set.refs--
	if set.refs == 0 {
		e.changedPortSet[set.id] = struct{}{}
	}
}

func (e *engine) addPortMember(set *portSet, m netip.AddrPort) {
	if set.add(m) {
		e.changedPortSet[set.id] = struct{}{}
	}
}

func (e *engine) removePortMember(set *portSet, m netip.AddrPort) {
	if set.remove(m) {
		e.changedPortSet[set.id] = struct{}{}
	}
}

func (e *engine) usersOf(id selector.ID) *selectorUsers {
	u := e.users[id]
	if u == nil {
		u = &selectorUsers{policies: make(map[*policyState]struct{})}
		e.users[id] = u
	}
	return u
}

// releaseSelector drops one registration of id, and its users entry when no
// one uses it any more.
func (e *engine) releaseSelector(id selector.ID) {
	if e.idx.Release(id) {
		delete(e.users, id)
	}
}

// describeSelector renders an index selector for people: the namespace part
// (labels under nsLabelPrefix) and the pod part.
func describeSelector(sel selector.Selector) string {
	if sel.IsNothing() {
		return "no pods"
	}
	var nsReqs, podReqs []string
	for _, r := range sel.Requirements() {
		if strings.HasPrefix(r.Key, nsLabelPrefix) {
			r.Key = strings.TrimPrefix(r.Key, nsLabelPrefix)
			if r.Key == NamespaceNameLabel && r.Op == selector.In && len(r.Values) == 1 {
				nsReqs = append(nsReqs, "name="+r.Values[0])
				continue
			}
			nsReqs = append(nsReqs, describeRequirement(r))
		} else {
			podReqs = append(podReqs, describeRequirement(r))
		}
	}
	pods := "all pods"
	if len(podReqs) > 0 {
		pods = "pods " + strings.Join(podReqs, ",")
	}
	if len(nsReqs) == 0 {
		return pods + " in all namespaces"
	}
	if len(nsReqs) == 1 && strings.HasPrefix(nsReqs[0], "name=") {
		return pods + " in namespace " + strings.TrimPrefix(nsReqs[0], "name=")
	}
	return pods + " in namespaces " + strings.Join(nsReqs, ",")
}

func describeRequirement(r selector.Requirement) string {
	switch r.Op {
	case selector.In:
		if len(r.Values) == 1 {
			return r.Key + "=" + r.Values[0]
		}
		return r.Key + " in (" + strings.Join(r.Values, ",") + ")"
	case selector.NotIn:
		if len(r.Values) == 1 {
			return r.Key + "!=" + r.Values[0]
		}
		return r.Key + " notin (" + strings.Join(r.Values, ",") + ")"
	case selector.Exists:
		return r.Key
	case selector.DoesNotExist:
		return "!" + r.Key
	}
	return r.Key + " " + string(r.Op)
}
