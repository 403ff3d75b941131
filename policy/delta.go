package policy

import (
	"cmp"
	"maps"
	"reflect"
	"slices"

	"github.com/palisade-net/palisade/policy/ir"
)

// refreshEndpoints recomputes the endpoints of the dirty pods. Removals
// come first, so that what they release (an interface) is free for the
// others.
func (e *engine) refreshEndpoints() {
	var computed map[string]*ir.Endpoint
	for key := range e.dirtyPods {
		p := e.pods[key]
		cur := e.endpoints[key]
		if p == nil || !p.local {
			if cur != nil {
				e.releaseInterface(cur)
				delete(e.endpoints, key)
				e.changedEPs[key] = struct{}{}
			}
			continue
		}
		if computed == nil {
			computed = make(map[string]*ir.Endpoint, len(e.dirtyPods))
		}
		computed[key] = e.computeEndpoint(p)
	}
	e.assignInterfaces(computed)
	for key, ep := range computed {
		if cur := e.endpoints[key]; cur == nil || !cur.Equal(ep) {
			e.endpoints[key] = ep
			e.changedEPs[key] = struct{}{}
		}
	}
	e.dirtyPods = make(map[string]struct{}) // not clear(): its cost follows the map's peak size
}

// computeEndpoint builds the IR endpoint of a local pod from the policies
// whose subject selector matches it.
func (e *engine) computeEndpoint(p *podState) *ir.Endpoint {
	ep := &ir.Endpoint{ID: p.key, IPs: slices.Clone(p.ips)}
	var selecting []*policyState
	for _, id := range e.idx.SelectorsOf(p.key) {
		if u := e.users[id]; u != nil {
			for st := range u.policies {
				selecting = append(selecting, st)
			}
		}
	}
	if len(selecting) == 0 {
		return ep
	}
	slices.SortFunc(selecting, comparePolicies)
	for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		var tiers []ir.Tier
		for _, st := range selecting {
			id, ok := st.lists[dir]
			if !ok {
				continue
			}
			if n := len(tiers); n == 0 || tiers[n-1].Kind != st.tier {
				tiers = append(tiers, ir.Tier{Kind: st.tier})
			}
			t := &tiers[len(tiers)-1]
			t.RuleLists = append(t.RuleLists, id)
		}
		if dir == ir.Ingress {
			ep.Ingress = tiers
		} else {
			ep.Egress = tiers
		}
	}
	return ep
}

// comparePolicies orders policies for evaluation: by tier (Admin,
// NetworkPolicy, Baseline); within a tier by priority, lower first; at equal
// priority an AdminNetworkPolicy before a ClusterNetworkPolicy before a
// BaselineAdminNetworkPolicy (which has the highest priority number anyway);
// then by namespace and name. The order is total, so every backend evaluates
// the lists of an endpoint's tier in the same order: the order of
// ir.Tier.RuleLists.
func comparePolicies(a, b *policyState) int {
	return cmp.Or(
		cmp.Compare(tierRank(a.tier), tierRank(b.tier)),
		cmp.Compare(a.priority, b.priority),
		cmp.Compare(kindRank(a.key.kind), kindRank(b.key.kind)),
		cmp.Compare(a.key.namespace, b.key.namespace),
		cmp.Compare(a.key.name, b.key.name),
	)
}

func kindRank(kind string) int {
	switch kind {
	case kindAdminNetworkPolicy:
		return 0
	case kindClusterNetworkPolicy:
		return 1
	case kindBaselineAdminNetworkPolicy:
		return 2
	}
	return 3
}

func tierRank(k ir.TierKind) int {
	switch k {
	case ir.TierAdmin:
		return 0
	case ir.TierNetworkPolicy:
		return 1
	}
	return 2
}

// nameState returns the generation of the current state: the last one
// named, or a new one when the state was mutated since.
func (e *engine) nameState() uint64 {
	if e.mutated {
		e.generation++
		e.mutated = false
	}
	return e.generation
}

// delta collects every change since the base (the state the last delta
// ended at), marks it emitted and makes the current state the base. With
// build false it only marks (checkpoint emits the full state instead) and
// returns a delta with nothing but generations.
func (e *engine) delta(build bool) *ir.Delta {
	e.refreshEndpoints()
	d := &ir.Delta{Base: e.base}
	changed := false

	for id := range e.changedAddr {
		set := e.addrSets[id]
		switch {
		case set.refs > 0 && !set.emitted:
			if build {
				d.AddedAddressSets = append(d.AddedAddressSets, ir.AddressSet{ID: id, Description: set.desc, Hosts: set.pods || set.nodes, Members: set.list(ir.ComparePrefix)})
			}
			changed = true
			set.emitted, set.pending = true, nil
		case set.refs > 0:
			changed = changed || len(set.pending) > 0
			if !build {
				set.pending = nil
				continue
			}
			added, removed := set.takePending(ir.ComparePrefix)
			if len(added)+len(removed) > 0 {
				d.AddressSetChanges = append(d.AddressSetChanges, ir.AddressSetChange{ID: id, Added: added, Removed: removed})
			}
		default:
			if set.emitted {
				changed = true
				d.RemovedAddressSets = append(d.RemovedAddressSets, id)
			}
			delete(e.addrSets, id)
		}
	}
	e.changedAddr = make(map[string]struct{})

	for id := range e.changedPortSet {
		set := e.portSets[id]
		switch {
		case set.refs > 0 && !set.emitted:
			if build {
				d.AddedPortSets = append(d.AddedPortSets, ir.PortSet{ID: id, Protocol: set.port.proto, PortName: set.port.name, Members: set.list(ir.CompareAddrPort)})
			}
			changed = true
			set.emitted, set.pending = true, nil
		case set.refs > 0:
			changed = changed || len(set.pending) > 0
			if !build {
				set.pending = nil
				continue
			}
			added, removed := set.takePending(ir.CompareAddrPort)
			if len(added)+len(removed) > 0 {
				d.PortSetChanges = append(d.PortSetChanges, ir.PortSetChange{ID: id, Added: added, Removed: removed})
			}
		default:
			if set.emitted {
				changed = true
				d.RemovedPortSets = append(d.RemovedPortSets, id)
			}
			delete(e.portSets, id)
			delete(e.portSetsByPort, set.port)
		}
	}
	e.changedPortSet = make(map[string]struct{})

	for id := range e.changedLists {
		cur, prev := e.lists[id], e.emittedLists[id]
		switch {
		case cur != nil && (prev == nil || !reflect.DeepEqual(cur, prev)):
			changed = true
			if build {
				d.RuleLists = append(d.RuleLists, cur.Clone())
			}
			e.emittedLists[id] = cur
		case cur == nil && prev != nil:
			changed = true
			d.RemovedRuleLists = append(d.RemovedRuleLists, id)
			delete(e.emittedLists, id)
		}
	}
	e.changedLists = make(map[string]struct{})

	for id := range e.changedEPs {
		cur, prev := e.endpoints[id], e.emittedEPs[id]
		switch {
		case cur != nil && (prev == nil || !cur.Equal(prev)):
			changed = true
			if build {
				d.Endpoints = append(d.Endpoints, cur.Clone())
			}
			e.emittedEPs[id] = cur
		case cur == nil && prev != nil:
			changed = true
			d.RemovedEndpoints = append(d.RemovedEndpoints, id)
			delete(e.emittedEPs, id)
		}
	}
	e.changedEPs = make(map[string]struct{})

	sortDelta(d)
	switch {
	case changed && e.generation == e.base:
		// A change always gets a new generation, even one no mutation
		// flagged.
		e.generation++
		e.mutated = false
	case changed || e.generation != e.base:
		// A Snapshot may have named a state since the base.
		e.nameState()
	default:
		// Nothing changed: the state is the base's, whatever happened.
		e.mutated = false
	}
	d.Generation = e.generation
	e.base = e.generation
	return d
}

// checkpoint ends the current delta and returns the full state.
func (e *engine) checkpoint() *ir.Snapshot {
	e.delta(false)
	return e.snapshot()
}

// snapshot returns the full state. It changes nothing a Delta reports: the
// pending changes stay pending.
func (e *engine) snapshot() *ir.Snapshot {
	e.refreshEndpoints()
	s := &ir.Snapshot{Generation: e.nameState()}
	for id, set := range e.addrSets {
		if set.refs == 0 {
			continue // withdrawn at the next delta
		}
		s.AddressSets = append(s.AddressSets, ir.AddressSet{ID: id, Description: set.desc, Hosts: set.pods || set.nodes, Members: set.list(ir.ComparePrefix)})
	}
	for id, set := range e.portSets {
		if set.refs == 0 {
			continue
		}
		s.PortSets = append(s.PortSets, ir.PortSet{ID: id, Protocol: set.port.proto, PortName: set.port.name, Members: set.list(ir.CompareAddrPort)})
	}
	// Rule lists and endpoints are many: build them in order (sorting the
	// IDs moves 16 bytes per swap, sorting the values 80 and more), so
	// that Sort finds them sorted.
	s.RuleLists = make([]ir.RuleList, 0, len(e.lists))
	for _, id := range slices.Sorted(maps.Keys(e.lists)) {
		s.RuleLists = append(s.RuleLists, e.lists[id].Clone())
	}
	s.Endpoints = make([]ir.Endpoint, 0, len(e.endpoints))
	for _, id := range slices.Sorted(maps.Keys(e.endpoints)) {
		s.Endpoints = append(s.Endpoints, e.endpoints[id].Clone())
	}
	s.Sort()
	return s
}

func sortDelta(d *ir.Delta) {
	byID := func(a, b string) int { return cmp.Compare(a, b) }
	slices.SortFunc(d.AddedAddressSets, func(a, b ir.AddressSet) int { return byID(a.ID, b.ID) })
	slices.SortFunc(d.AddressSetChanges, func(a, b ir.AddressSetChange) int { return byID(a.ID, b.ID) })
	slices.Sort(d.RemovedAddressSets)
	slices.SortFunc(d.AddedPortSets, func(a, b ir.PortSet) int { return byID(a.ID, b.ID) })
	slices.SortFunc(d.PortSetChanges, func(a, b ir.PortSetChange) int { return byID(a.ID, b.ID) })
	slices.Sort(d.RemovedPortSets)
	slices.SortFunc(d.RuleLists, func(a, b ir.RuleList) int { return byID(a.ID, b.ID) })
	slices.Sort(d.RemovedRuleLists)
	slices.SortFunc(d.Endpoints, func(a, b ir.Endpoint) int { return byID(a.ID, b.ID) })
	slices.Sort(d.RemovedEndpoints)
}

func (e *engine) problems() []*ValidationError {
	var out []*ValidationError
	for _, st := range e.policies {
		if st.err != nil {
			out = append(out, st.err)
		}
	}
	slices.SortFunc(out, func(a, b *ValidationError) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}
