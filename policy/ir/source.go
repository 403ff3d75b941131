package ir

import (
	"net/netip"
	"slices"
)

// SourcePair is an interface and an address its endpoint may send from
// (source validation, Endpoint.Interface).
type SourcePair struct {
	Interface string
	Addr      netip.Addr
}

// SourceChange is what a delta changes in source validation: the pairs
// and interfaces its endpoints had before it and no longer have, and those
// they gain. Each list is sorted; a pair or interface an endpoint keeps
// (or another endpoint of the delta takes over) is in none.
type SourceChange struct {
	RemovedPairs, AddedPairs           []SourcePair
	RemovedInterfaces, AddedInterfaces []string
}

// Empty reports whether the change changes nothing.
func (c *SourceChange) Empty() bool {
	return len(c.RemovedPairs)+len(c.AddedPairs)+len(c.RemovedInterfaces)+len(c.AddedInterfaces) == 0
}

// SourceChanges computes the SourceChange of d, whose endpoints held
// before it held returns (nil for one not held). A backend calls it before
// applying d. IPv4-mapped addresses count as IPv4.
func SourceChanges(held func(id string) *Endpoint, d *Delta) SourceChange {
	before, after := map[SourcePair]bool{}, map[SourcePair]bool{}
	ifBefore, ifAfter := map[string]bool{}, map[string]bool{}
	add := func(ep *Endpoint, pairs map[SourcePair]bool, ifaces map[string]bool) {
		if ep == nil || ep.Interface == "" {
			return
		}
		ifaces[ep.Interface] = true
		for _, ip := range ep.IPs {
			pairs[SourcePair{ep.Interface, ip.Unmap()}] = true
		}
	}
	for _, id := range d.RemovedEndpoints {
		add(held(id), before, ifBefore)
	}
	for i := range d.Endpoints {
		add(held(d.Endpoints[i].ID), before, ifBefore)
		add(&d.Endpoints[i], after, ifAfter)
	}
	var c SourceChange
	c.RemovedPairs, c.AddedPairs = minus(before, after), minus(after, before)
	c.RemovedInterfaces, c.AddedInterfaces = minus(ifBefore, ifAfter), minus(ifAfter, ifBefore)
	slices.SortFunc(c.RemovedPairs, compareSourcePairs)
	slices.SortFunc(c.AddedPairs, compareSourcePairs)
	slices.Sort(c.RemovedInterfaces)
	slices.Sort(c.AddedInterfaces)
	return c
}

func minus[T comparable](a, b map[T]bool) []T {
	var out []T
	for x := range a {
		if !b[x] {
			out = append(out, x)
		}
	}
	return out
}

func compareSourcePairs(a, b SourcePair) int {
	if a.Interface != b.Interface {
		if a.Interface < b.Interface {
			return -1
		}
		return 1
	}
	return a.Addr.Compare(b.Addr)
}

// TrackInterfaces updates owners (interface → endpoint ID, as Held's
// InterfaceOwner answers) for d, whose endpoints held before it held
// returns: a backend calls it with SourceChanges, before applying d.
func TrackInterfaces(owners map[string]string, held func(id string) *Endpoint, d *Delta) {
	drop := func(id string) {
		if ep := held(id); ep != nil && ep.Interface != "" && owners[ep.Interface] == id {
			delete(owners, ep.Interface)
		}
	}
	for _, id := range d.RemovedEndpoints {
		drop(id)
	}
	for i := range d.Endpoints {
		drop(d.Endpoints[i].ID)
	}
	for i := range d.Endpoints {
		if ep := &d.Endpoints[i]; ep.Interface != "" {
			owners[ep.Interface] = ep.ID
		}
	}
}
