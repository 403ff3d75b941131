package ir

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Validate checks that every reference in the snapshot resolves and that IDs
// are unique: endpoints name existing rule lists and no two share an
// address, rules name existing address and port sets, named port matches
// agree with their set's protocol, set members do not overlap. It returns every problem found, joined.
func (s *Snapshot) Validate() error {
	var errs []error
	addr := make(map[string]bool, len(s.AddressSets))
	for i := range s.AddressSets {
		set := &s.AddressSets[i]
		if addr[set.ID] {
			errs = append(errs, fmt.Errorf("address set %q: duplicate ID", set.ID))
		}
		addr[set.ID] = true
		if err := checkDisjoint(set.Members); err != nil {
			errs = append(errs, fmt.Errorf("address set %q: %w", set.ID, err))
		}
		if set.Hosts {
			for _, m := range set.Members {
				if !m.IsSingleIP() {
					errs = append(errs, fmt.Errorf("address set %q: holds hosts only, but has %s", set.ID, m))
					break
				}
			}
		}
	}
	ports := make(map[string]Protocol, len(s.PortSets))
	for _, set := range s.PortSets {
		if _, dup := ports[set.ID]; dup {
			errs = append(errs, fmt.Errorf("port set %q: duplicate ID", set.ID))
		}
		ports[set.ID] = set.Protocol
	}
	lists := make(map[string]*RuleList, len(s.RuleLists))
	for i := range s.RuleLists {
		rl := &s.RuleLists[i]
		if lists[rl.ID] != nil {
			errs = append(errs, fmt.Errorf("rule list %q: duplicate ID", rl.ID))
		}
		lists[rl.ID] = rl
		for _, r := range rl.Rules {
			errs = append(errs, checkRule(rl.ID, &r, addr, ports)...)
		}
	}
	eps := make(map[string]bool, len(s.Endpoints))
	owners := make(map[netip.Addr]string, len(s.Endpoints))
	for _, ep := range s.Endpoints {
		if eps[ep.ID] {
			errs = append(errs, fmt.Errorf("endpoint %q: duplicate ID", ep.ID))
		}
		eps[ep.ID] = true
		for _, ip := range ep.IPs {
			if o, ok := owners[ip]; ok && o != ep.ID {
				errs = append(errs, fmt.Errorf("endpoint %q: address %s is also endpoint %q's", ep.ID, ip, o))
			}
			owners[ip] = ep.ID
		}
		for _, dir := range []Direction{Ingress, Egress} {
			for _, t := range ep.Tiers(dir) {
				for _, id := range t.RuleLists {
					rl := lists[id]
					switch {
					case rl == nil:
						errs = append(errs, fmt.Errorf("endpoint %q: %s tier %s: unknown rule list %q", ep.ID, dir, t.Kind, id))
					case rl.Direction != dir:
						errs = append(errs, fmt.Errorf("endpoint %q: %s tier %s: rule list %q is for %s", ep.ID, dir, t.Kind, id, rl.Direction))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

func checkRule(list string, r *Rule, addr map[string]bool, ports map[string]Protocol) []error {
	var errs []error
	for _, id := range r.Peers {
		if !addr[id] {
			errs = append(errs, fmt.Errorf("rule list %q rule %d: unknown address set %q", list, r.Index, id))
		}
	}
	for _, pm := range r.Ports {
		if pm.NamedSet != "" {
			proto, ok := ports[pm.NamedSet]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("rule list %q rule %d: unknown port set %q", list, r.Index, pm.NamedSet))
			case proto != pm.Protocol:
				errs = append(errs, fmt.Errorf("rule list %q rule %d: port set %q is %s, match is %s", list, r.Index, pm.NamedSet, proto, pm.Protocol))
			}
			continue
		}
		if pm.EndPort < pm.Port {
			errs = append(errs, fmt.Errorf("rule list %q rule %d: port range %d-%d is empty", list, r.Index, pm.Port, pm.EndPort))
		}
	}
	switch r.Action {
	case Allow, Deny, Pass:
	default:
		errs = append(errs, fmt.Errorf("rule list %q rule %d: unknown action %q", list, r.Index, r.Action))
	}
	return errs
}

func checkDisjoint(ps []netip.Prefix) error {
	sorted := slices.Clone(ps)
	slices.SortFunc(sorted, ComparePrefix)
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1].Overlaps(sorted[i]) {
			return fmt.Errorf("members %s and %s overlap", sorted[i-1], sorted[i])
		}
	}
	return nil
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
// when d's Base is not s's generation, or d names a set, list or endpoint in a
// way that does not fit s (adding what exists, changing or removing what does
// not, leaving a reference dangling), s is left unchanged and the error says
// what did not fit.
func (s *Snapshot) Apply(d *Delta) error {
	if d.Base != s.Generation {
		return fmt.Errorf("delta from generation %d does not apply to generation %d", d.Base, s.Generation)
	}
	next, err := applied(s, d)
	if err != nil {
		return err
	}
	if err := next.Validate(); err != nil {
		return fmt.Errorf("delta %d→%d leaves the IR inconsistent: %w", d.Base, d.Generation, err)
	}
	*s = *next
	return nil
}

func applied(s *Snapshot, d *Delta) (*Snapshot, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	addr := make(map[string]map[netip.Prefix]struct{}, len(s.AddressSets)+len(d.AddedAddressSets))
	addrDesc := make(map[string]string, len(s.AddressSets))
	addrHosts := make(map[string]bool, len(s.AddressSets))
	for _, set := range s.AddressSets {
		addr[set.ID] = setOf(set.Members)
		addrDesc[set.ID], addrHosts[set.ID] = set.Description, set.Hosts
	}
	for _, set := range d.AddedAddressSets {
		if _, ok := addr[set.ID]; ok {
			fail("address set %q: added but exists", set.ID)
			continue
		}
		addr[set.ID] = setOf(set.Members)
		addrDesc[set.ID], addrHosts[set.ID] = set.Description, set.Hosts
	}
	for _, ch := range d.AddressSetChanges {
		m, ok := addr[ch.ID]
		if !ok {
			fail("address set %q: changed but does not exist", ch.ID)
			continue
		}
		for _, p := range ch.Removed {
			if _, ok := m[p]; !ok {
				fail("address set %q: removed member %s is absent", ch.ID, p)
			}
			delete(m, p)
		}
		for _, p := range ch.Added {
			if _, ok := m[p]; ok {
				fail("address set %q: added member %s is present", ch.ID, p)
			}
			m[p] = struct{}{}
		}
	}
	for _, id := range d.RemovedAddressSets {
		if _, ok := addr[id]; !ok {
			fail("address set %q: removed but does not exist", id)
		}
		delete(addr, id)
	}

	type portSet struct {
		proto   Protocol
		name    string
		members map[netip.AddrPort]struct{}
	}
	ports := make(map[string]*portSet, len(s.PortSets)+len(d.AddedPortSets))
	for _, set := range s.PortSets {
		ports[set.ID] = &portSet{set.Protocol, set.PortName, setOf(set.Members)}
	}
	for _, set := range d.AddedPortSets {
		if _, ok := ports[set.ID]; ok {
			fail("port set %q: added but exists", set.ID)
			continue
		}
		ports[set.ID] = &portSet{set.Protocol, set.PortName, setOf(set.Members)}
	}
	for _, ch := range d.PortSetChanges {
		ps, ok := ports[ch.ID]
		if !ok {
			fail("port set %q: changed but does not exist", ch.ID)
			continue
		}
		for _, p := range ch.Removed {
			if _, ok := ps.members[p]; !ok {
				fail("port set %q: removed member %s is absent", ch.ID, p)
			}
			delete(ps.members, p)
		}
		for _, p := range ch.Added {
			if _, ok := ps.members[p]; ok {
				fail("port set %q: added member %s is present", ch.ID, p)
			}
			ps.members[p] = struct{}{}
		}
	}
	for _, id := range d.RemovedPortSets {
		if _, ok := ports[id]; !ok {
			fail("port set %q: removed but does not exist", id)
		}
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
		if _, ok := lists[id]; !ok {
			fail("rule list %q: removed but does not exist", id)
		}
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
		if _, ok := eps[id]; !ok {
			fail("endpoint %q: removed but does not exist", id)
		}
		delete(eps, id)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	next := &Snapshot{Generation: d.Generation}
	for id, m := range addr {
		next.AddressSets = append(next.AddressSets, AddressSet{ID: id, Description: addrDesc[id], Hosts: addrHosts[id], Members: keysOf(m)})
	}
	for id, ps := range ports {
		next.PortSets = append(next.PortSets, PortSet{ID: id, Protocol: ps.proto, PortName: ps.name, Members: keysOf(ps.members)})
	}
	for _, rl := range lists {
		next.RuleLists = append(next.RuleLists, rl)
	}
	for _, ep := range eps {
		next.Endpoints = append(next.Endpoints, ep)
	}
	next.Sort()
	return next, nil
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
