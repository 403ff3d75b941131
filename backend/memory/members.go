package memory

import (
	"net/netip"
	"slices"

	"github.com/palisade-net/palisade/policy/ir"
)

// applyMembers applies, in place, a delta that only adds and removes
// members of existing sets of single addresses (pod sets) and of port sets:
// what a label change, or a pod coming or going without policy of its own,
// produces. Its cost is that of the sets it touches, not of the whole
// state. It reports false, changing nothing, for any other delta and for
// one that does not fit (then Apply takes the general path, which reports
// what did not fit).
func (b *Backend) applyMembers(d *ir.Delta) bool {
	if d.Base != b.snap.Generation || len(d.AddedAddressSets)+len(d.RemovedAddressSets)+len(d.AddedPortSets)+
		len(d.RemovedPortSets)+len(d.RuleLists)+len(d.RemovedRuleLists)+len(d.Endpoints)+len(d.RemovedEndpoints) > 0 {
		return false
	}
	addrAt := make([]int, len(d.AddressSetChanges))
	seenAddr := make(map[string]bool, len(d.AddressSetChanges))
	for k, ch := range d.AddressSetChanges {
		i, ok := slices.BinarySearchFunc(b.snap.AddressSets, ch.ID, func(s ir.AddressSet, id string) int { return compareString(s.ID, id) })
		if !ok || !b.snap.AddressSets[i].Hosts || seenAddr[ch.ID] {
			return false
		}
		seenAddr[ch.ID] = true
		addrAt[k] = i
		if !fits(b.snap.AddressSets[i].Members, ch.Added, ch.Removed, ir.ComparePrefix, netip.Prefix.IsSingleIP) {
			return false
		}
	}
	portAt := make([]int, len(d.PortSetChanges))
	seenPort := make(map[string]bool, len(d.PortSetChanges))
	for k, ch := range d.PortSetChanges {
		i, ok := slices.BinarySearchFunc(b.snap.PortSets, ch.ID, func(s ir.PortSet, id string) int { return compareString(s.ID, id) })
		if !ok || seenPort[ch.ID] {
			return false
		}
		seenPort[ch.ID] = true
		portAt[k] = i
		if !fits(b.snap.PortSets[i].Members, ch.Added, ch.Removed, ir.CompareAddrPort, func(netip.AddrPort) bool { return true }) {
			return false
		}
	}
	// Everything fits: apply.
	for k, ch := range d.AddressSetChanges {
		set := &b.snap.AddressSets[addrAt[k]]
		set.Members = changed(set.Members, ch.Added, ch.Removed, ir.ComparePrefix)
		// The evaluator's copy holds masked prefixes; a single address is
		// its own mask.
		b.state.addr[ch.ID] = slices.Clone(set.Members)
	}
	for k, ch := range d.PortSetChanges {
		set := &b.snap.PortSets[portAt[k]]
		set.Members = changed(set.Members, ch.Added, ch.Removed, ir.CompareAddrPort)
		m := b.state.ports[ch.ID]
		for _, ap := range ch.Removed {
			delete(m, ap)
		}
		for _, ap := range ch.Added {
			m[ap] = true
		}
	}
	b.snap.Generation = d.Generation
	return true
}

func compareString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fits reports whether removing removed from the sorted members and adding
// added is exact: every removed member is present, every added one absent
// and valid, none listed twice or on both sides.
func fits[T comparable](members, added, removed []T, cmp func(a, b T) int, valid func(T) bool) bool {
	seen := make(map[T]bool, len(added)+len(removed))
	for _, x := range removed {
		if _, ok := slices.BinarySearchFunc(members, x, cmp); !ok || seen[x] {
			return false
		}
		seen[x] = true
	}
	for _, x := range added {
		if _, ok := slices.BinarySearchFunc(members, x, cmp); ok || seen[x] || !valid(x) {
			return false
		}
		seen[x] = true
	}
	return true
}

// changed returns a new sorted slice: members without removed, with added.
func changed[T comparable](members, added, removed []T, cmp func(a, b T) int) []T {
	gone := make(map[T]bool, len(removed))
	for _, x := range removed {
		gone[x] = true
	}
	out := make([]T, 0, len(members)+len(added)-len(removed))
	for _, x := range members {
		if !gone[x] {
			out = append(out, x)
		}
	}
	out = append(out, added...)
	slices.SortFunc(out, cmp)
	return out
}
