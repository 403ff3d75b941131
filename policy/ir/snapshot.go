package ir

import (
	"cmp"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
)

// Validate checks the snapshot against the IR contract (see CheckDelta,
// which it calls on the delta that builds s from nothing): references
// resolve, IDs are unique, set members are canonical and do not overlap,
// port ranges are not empty, no two endpoints share an address. It returns
// nil or an error wrapping ErrInvalid that joins every problem found. The
// empty snapshot is valid.
func (s *Snapshot) Validate() error { return CheckDelta(noneHeld{}, s.FromNothing()) }

// FromNothing returns the delta that creates s from the empty state (Base
// 0): every set added, every rule list and endpoint upserted. It shares s's
// slices. A backend compiles a whole snapshot as this delta.
func (s *Snapshot) FromNothing() *Delta {
	return &Delta{
		Generation:       s.Generation,
		AddedAddressSets: s.AddressSets,
		AddedPortSets:    s.PortSets,
		RuleLists:        s.RuleLists,
		Endpoints:        s.Endpoints,
	}
}

// Clone returns a deep copy of s.
func (s *Snapshot) Clone() *Snapshot {
	c := &Snapshot{Generation: s.Generation}
	c.AddressSets = make([]AddressSet, len(s.AddressSets))
	for i, set := range s.AddressSets {
		set.Members = slices.Clone(set.Members)
		c.AddressSets[i] = set
	}
	c.PortSets = make([]PortSet, len(s.PortSets))
	for i, set := range s.PortSets {
		set.Members = slices.Clone(set.Members)
		c.PortSets[i] = set
	}
	c.RuleLists = make([]RuleList, len(s.RuleLists))
	for i := range s.RuleLists {
		c.RuleLists[i] = s.RuleLists[i].Clone()
	}
	c.Endpoints = make([]Endpoint, len(s.Endpoints))
	for i := range s.Endpoints {
		c.Endpoints[i] = s.Endpoints[i].Clone()
	}
	return c
}

// Clone returns a deep copy of rl.
func (rl RuleList) Clone() RuleList {
	rl.Rules = slices.Clone(rl.Rules)
	for i := range rl.Rules {
		rl.Rules[i].Peers = slices.Clone(rl.Rules[i].Peers)
		rl.Rules[i].Ports = slices.Clone(rl.Rules[i].Ports)
	}
	return rl
}

// Clone returns a deep copy of e.
func (e Endpoint) Clone() Endpoint {
	e.IPs = slices.Clone(e.IPs)
	e.Ingress = cloneTiers(e.Ingress)
	e.Egress = cloneTiers(e.Egress)
	return e
}

func cloneTiers(ts []Tier) []Tier {
	if ts == nil {
		return nil
	}
	out := make([]Tier, len(ts))
	for i, t := range ts {
		out[i] = Tier{Kind: t.Kind, RuleLists: slices.Clone(t.RuleLists)}
	}
	return out
}

// Sort puts every slice of s in its canonical order (see Snapshot).
func (s *Snapshot) Sort() {
	slices.SortFunc(s.AddressSets, func(a, b AddressSet) int { return cmp.Compare(a.ID, b.ID) })
	for i := range s.AddressSets {
		slices.SortFunc(s.AddressSets[i].Members, ComparePrefix)
	}
	slices.SortFunc(s.PortSets, func(a, b PortSet) int { return cmp.Compare(a.ID, b.ID) })
	for i := range s.PortSets {
		slices.SortFunc(s.PortSets[i].Members, CompareAddrPort)
	}
	slices.SortFunc(s.RuleLists, func(a, b RuleList) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Endpoints, func(a, b Endpoint) int { return cmp.Compare(a.ID, b.ID) })
}

// Apply applies d to s in place and advances s.Generation, all or nothing:
// when d's Base is not s's generation (ErrStaleBase) or d does not fit s
// (CheckDelta; ErrInvalid), s is left unchanged and the error says why.
func (s *Snapshot) Apply(d *Delta) error {
	if d == nil {
		return fmt.Errorf("%w: nil delta", ErrInvalid)
	}
	if d.Base != s.Generation {
		return fmt.Errorf("%w: delta %d→%d does not apply to generation %d", ErrStaleBase, d.Base, d.Generation, s.Generation)
	}
	if err := CheckDelta(s.Held(), d); err != nil {
		return fmt.Errorf("delta %d→%d: %w", d.Base, d.Generation, err)
	}
	*s = *applied(s, d)
	return nil
}

// applied returns s with the checked delta d applied.
func applied(s *Snapshot, d *Delta) *Snapshot {
	addr := make(map[string]*AddressSet, len(s.AddressSets)+len(d.AddedAddressSets))
	members := make(map[string]map[netip.Prefix]struct{}, len(s.AddressSets)+len(d.AddedAddressSets))
	for _, sets := range [][]AddressSet{s.AddressSets, d.AddedAddressSets} {
		for i := range sets {
			addr[sets[i].ID], members[sets[i].ID] = &sets[i], setOf(sets[i].Members)
		}
	}
	for _, ch := range d.AddressSetChanges {
		m := members[ch.ID]
		for _, p := range ch.Removed {
			delete(m, p)
		}
		for _, p := range ch.Added {
			m[p] = struct{}{}
		}
	}
	for _, id := range d.RemovedAddressSets {
		delete(addr, id)
	}

	ports := make(map[string]*PortSet, len(s.PortSets)+len(d.AddedPortSets))
	portMembers := make(map[string]map[netip.AddrPort]struct{}, len(s.PortSets)+len(d.AddedPortSets))
	for _, sets := range [][]PortSet{s.PortSets, d.AddedPortSets} {
		for i := range sets {
			ports[sets[i].ID], portMembers[sets[i].ID] = &sets[i], setOf(sets[i].Members)
		}
	}
	for _, ch := range d.PortSetChanges {
		m := portMembers[ch.ID]
		for _, p := range ch.Removed {
			delete(m, p)
		}
		for _, p := range ch.Added {
			m[p] = struct{}{}
		}
	}
	for _, id := range d.RemovedPortSets {
		delete(ports, id)
	}

	lists := make(map[string]RuleList, len(s.RuleLists)+len(d.RuleLists))
	for _, rl := range s.RuleLists {
		lists[rl.ID] = rl
	}
	for _, rl := range d.RuleLists {
		lists[rl.ID] = rl.Clone()
	}
	for _, id := range d.RemovedRuleLists {
		delete(lists, id)
	}

	eps := make(map[string]Endpoint, len(s.Endpoints)+len(d.Endpoints))
	for _, ep := range s.Endpoints {
		eps[ep.ID] = ep
	}
	for _, ep := range d.Endpoints {
		eps[ep.ID] = ep.Clone()
	}
	for _, id := range d.RemovedEndpoints {
		delete(eps, id)
	}

	next := &Snapshot{Generation: d.Generation}
	for id, set := range addr {
		next.AddressSets = append(next.AddressSets, AddressSet{ID: id, Description: set.Description, Hosts: set.Hosts, Members: keysOf(members[id])})
	}
	for id, set := range ports {
		next.PortSets = append(next.PortSets, PortSet{ID: id, Protocol: set.Protocol, PortName: set.PortName, Members: keysOf(portMembers[id])})
	}
	for _, rl := range lists {
		next.RuleLists = append(next.RuleLists, rl)
	}
	for _, ep := range eps {
		next.Endpoints = append(next.Endpoints, ep)
	}
	next.Sort()
	return next
}

// Held returns a view of s for CheckDelta. It indexes s once (a pass over
// every set member and endpoint); s must not change while the view is in
// use.
func (s *Snapshot) Held() Held {
	h := &snapHeld{
		addr:   make(map[string]*AddressSet, len(s.AddressSets)),
		member: make(map[string]map[netip.Prefix]struct{}, len(s.AddressSets)),
		ports:  make(map[string]*PortSet, len(s.PortSets)),
		pmem:   make(map[string]map[netip.AddrPort]struct{}, len(s.PortSets)),
		lists:  make(map[string]*RuleList, len(s.RuleLists)),
		eps:    make(map[string]*Endpoint, len(s.Endpoints)),
		owners: make(map[netip.Addr]string, len(s.Endpoints)),
		ifaces: make(map[string]string),
	}
	for i := range s.AddressSets {
		set := &s.AddressSets[i]
		h.addr[set.ID], h.member[set.ID] = set, setOf(set.Members)
	}
	for i := range s.PortSets {
		set := &s.PortSets[i]
		h.ports[set.ID], h.pmem[set.ID] = set, setOf(set.Members)
	}
	for i := range s.RuleLists {
		h.lists[s.RuleLists[i].ID] = &s.RuleLists[i]
	}
	for i := range s.Endpoints {
		ep := &s.Endpoints[i]
		h.eps[ep.ID] = ep
		for _, ip := range ep.IPs {
			h.owners[ip] = ep.ID
		}
		if ep.Interface != "" {
			h.ifaces[ep.Interface] = ep.ID
		}
	}
	return h
}

type snapHeld struct {
	addr   map[string]*AddressSet
	member map[string]map[netip.Prefix]struct{}
	ports  map[string]*PortSet
	pmem   map[string]map[netip.AddrPort]struct{}
	lists  map[string]*RuleList
	eps    map[string]*Endpoint
	owners map[netip.Addr]string
	ifaces map[string]string
}

func (h *snapHeld) AddressSet(id string) (bool, bool) {
	set := h.addr[id]
	return set != nil, set != nil && set.Hosts
}

func (h *snapHeld) HasAddress(id string, p netip.Prefix) bool {
	_, ok := h.member[id][p]
	return ok
}

func (h *snapHeld) AddressMembers(id string) iter.Seq[netip.Prefix] {
	if set := h.addr[id]; set != nil {
		return slices.Values(set.Members)
	}
	return slices.Values([]netip.Prefix(nil))
}

func (h *snapHeld) PortSet(id string) (Protocol, bool) {
	if set := h.ports[id]; set != nil {
		return set.Protocol, true
	}
	return 0, false
}

func (h *snapHeld) HasAddrPort(id string, ap netip.AddrPort) bool {
	_, ok := h.pmem[id][ap]
	return ok
}

func (h *snapHeld) RuleList(id string) *RuleList { return h.lists[id] }

func (h *snapHeld) RuleLists() iter.Seq[*RuleList] { return maps.Values(h.lists) }

func (h *snapHeld) Endpoint(id string) bool { return h.eps[id] != nil }

func (h *snapHeld) Owner(a netip.Addr) (string, bool) {
	id, ok := h.owners[a]
	return id, ok
}

func (h *snapHeld) Endpoints() iter.Seq[*Endpoint] { return maps.Values(h.eps) }

func (h *snapHeld) InterfaceOwner(name string) (string, bool) {
	id, ok := h.ifaces[name]
	return id, ok
}

func setOf[T comparable](xs []T) map[T]struct{} {
	m := make(map[T]struct{}, len(xs))
	for _, x := range xs {
		m[x] = struct{}{}
	}
	return m
}

func keysOf[T comparable](m map[T]struct{}) []T {
	out := make([]T, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
