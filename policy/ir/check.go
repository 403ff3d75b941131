package ir

import (
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"
)

// Held is what a backend holds, as far as checking a delta needs. CheckDelta
// calls the iterating methods only for the rare deltas that need them
// (removing sets or rule lists, adding prefixes to an ipBlock set, turning a
// list used by a NetworkPolicy tier into one with other than Allow rules),
// so a backend's cost for a one-pod delta stays a few map lookups.
type Held interface {
	// AddressSet reports whether the set exists and whether it holds hosts
	// only.
	AddressSet(id string) (exists, hosts bool)
	// HasAddress reports whether the existing set id holds member p.
	HasAddress(id string, p netip.Prefix) bool
	// AddressMembers yields the members of the existing set id.
	AddressMembers(id string) iter.Seq[netip.Prefix]
	// PortSet returns the protocol of an existing port set.
	PortSet(id string) (proto Protocol, exists bool)
	// HasAddrPort reports whether the existing port set id holds member ap.
	HasAddrPort(id string, ap netip.AddrPort) bool
	// RuleList returns an existing rule list, nil when there is none. The
	// checker does not change it.
	RuleList(id string) *RuleList
	// RuleLists yields every rule list held.
	RuleLists() iter.Seq[*RuleList]
	// Endpoint reports whether the endpoint exists.
	Endpoint(id string) bool
	// Owner returns the ID of the endpoint that holds address a.
	Owner(a netip.Addr) (id string, ok bool)
	// Endpoints yields every endpoint held. The checker does not change
	// them.
	Endpoints() iter.Seq[*Endpoint]
	// InterfaceOwner returns the ID of the endpoint whose Interface is
	// name; ok is false when none is (and for the empty name).
	InterfaceOwner(name string) (id string, ok bool)
}

// CheckDelta is the validator of the IR contract: Snapshot.Validate,
// Snapshot.Apply and every backend call it, so that they accept and reject
// exactly the same IR. It verifies that d fits what a backend holds,
// without changing anything, and that the state after d is valid:
//
//   - what d changes or removes exists, what it adds does not, no ID appears
//     twice in one list of d, and nothing is both added (or replaced) and
//     removed by d;
//   - set members are canonical (valid, masked, no zone, IPv4 never written
//     as IPv4-mapped IPv6); members of an address set never overlap; sets
//     with Hosts hold single addresses; a removed member is present, an
//     added one absent (after the removals of the same change);
//   - set IDs are 1 to 24 bytes of [a-z0-9-] (backends name their sets
//     after them); protocols, actions, directions and tier kinds are known;
//   - a PortMatch is either a named port (NamedSet set, Port and EndPort 0,
//     Protocol the set's), every port (Port and EndPort 0) or a range with
//     1 <= Port <= EndPort: {Port: 80, EndPort: 0} is invalid;
//   - every reference resolves after d: rules name existing address and port
//     sets, endpoints name existing rule lists of their direction, and the
//     lists of a NetworkPolicy tier hold Allow rules only;
//   - no two endpoints share an address;
//   - an endpoint's Interface is empty or a legal Linux interface name
//     (1 to 15 bytes, none of '/', ':', whitespace or control characters,
//     not "." or ".."), and no two endpoints share an interface.
//
// It returns nil, or an error wrapping ErrInvalid that joins every problem
// found, each naming the object and field. A nil d is invalid. Backends
// call it before turning a delta into packet-filter changes, so that a
// delta that does not fit changes nothing.
func CheckDelta(have Held, d *Delta) error {
	if d == nil {
		return fmt.Errorf("%w: nil delta", ErrInvalid)
	}
	c := &checker{have: have, d: d}
	c.addressSets()
	c.portSets()
	c.ruleLists()
	c.endpoints()
	if len(c.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(c.errs...))
}

type checker struct {
	have Held
	d    *Delta
	errs []error

	addedAddr    map[string]*AddressSet
	removedAddr  map[string]bool
	addedPorts   map[string]*PortSet
	removedPorts map[string]bool
	upserted     map[string]*RuleList
	removedLists map[string]bool
	upsertedEps  map[string]bool
	removedEps   map[string]bool

	// goodRefs are the tier references found to resolve: endpoints share
	// few distinct ones, so each is checked once.
	goodRefs map[tierRef]struct{}
}

// tierRef is a reference from a tier of an endpoint to a rule list.
type tierRef struct {
	dir  Direction
	kind TierKind
	list string
}

func (c *checker) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// ids checks a list of IDs for empty and repeated ones and returns them as
// a set.
func (c *checker) ids(what string, ids []string, verb string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		switch {
		case id == "":
			c.fail("%s: %s with an empty ID", what, verb)
		case m[id]:
			c.fail("%s %q: %s twice", what, id, verb)
		}
		m[id] = true
	}
	return m
}

// --- address sets ---

// checkPrefix reports a member that is not in canonical form, or not a
// single address in a set of hosts. ok is false when p is unusable.
func (c *checker) checkPrefix(set string, p netip.Prefix, hosts bool) bool {
	switch {
	case !p.IsValid():
		c.fail("address set %q: invalid member %s", set, p)
		return false
	case p.Addr().Zone() != "":
		c.fail("address set %q: member %s has a zone", set, p)
		return false
	case p.Addr().Is4In6():
		c.fail("address set %q: member %s is an IPv4-mapped IPv6 prefix; use the IPv4 form", set, p)
		return false
	case p != p.Masked():
		c.fail("address set %q: member %s has host bits set (%s)", set, p, p.Masked())
		return false
	case hosts && !p.IsSingleIP():
		c.fail("address set %q: holds hosts only, but has %s", set, p)
		return false
	}
	return true
}

// disjoint reports the first two overlapping prefixes of ps.
func (c *checker) disjoint(set string, ps []netip.Prefix) {
	sorted := slices.Clone(ps)
	slices.SortFunc(sorted, ComparePrefix)
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1].Overlaps(sorted[i]) {
			c.fail("address set %q: members %s and %s overlap", set, sorted[i-1], sorted[i])
			return
		}
	}
}

func (c *checker) addressSets() {
	d := c.d
	c.addedAddr = make(map[string]*AddressSet, len(d.AddedAddressSets))
	for i := range d.AddedAddressSets {
		set := &d.AddedAddressSets[i]
		switch exists, _ := c.have.AddressSet(set.ID); {
		case !setIDOK(set.ID):
			c.fail("address set %q: ID must be 1 to 24 bytes of [a-z0-9-]", set.ID)
		case c.addedAddr[set.ID] != nil:
			c.fail("address set %q: duplicate ID", set.ID)
		case exists:
			c.fail("address set %q: added but exists", set.ID)
		}
		c.addedAddr[set.ID] = set
		valid := make([]netip.Prefix, 0, len(set.Members))
		for _, p := range set.Members {
			if c.checkPrefix(set.ID, p, set.Hosts) {
				valid = append(valid, p)
			}
		}
		c.disjoint(set.ID, valid)
	}
	changed := make(map[string]bool, len(d.AddressSetChanges))
	for i := range d.AddressSetChanges {
		ch := &d.AddressSetChanges[i]
		if changed[ch.ID] {
			c.fail("address set %q: changed twice", ch.ID)
			continue
		}
		changed[ch.ID] = true
		var hosts bool
		var has func(netip.Prefix) bool
		var members func() iter.Seq[netip.Prefix]
		if set := c.addedAddr[ch.ID]; set != nil {
			m := setOf(set.Members)
			hosts = set.Hosts
			has = func(p netip.Prefix) bool { _, ok := m[p]; return ok }
			members = func() iter.Seq[netip.Prefix] { return slices.Values(set.Members) }
		} else {
			var exists bool
			if exists, hosts = c.have.AddressSet(ch.ID); !exists {
				c.fail("address set %q: changed but does not exist", ch.ID)
				continue
			}
			has = func(p netip.Prefix) bool { return c.have.HasAddress(ch.ID, p) }
			members = func() iter.Seq[netip.Prefix] { return c.have.AddressMembers(ch.ID) }
		}
		removed := make(map[netip.Prefix]bool, len(ch.Removed))
		for _, p := range ch.Removed {
			switch {
			case !c.checkPrefix(ch.ID, p, false):
			case removed[p]:
				c.fail("address set %q: member %s removed twice", ch.ID, p)
			case !has(p):
				c.fail("address set %q: removed member %s is absent", ch.ID, p)
			}
			removed[p] = true
		}
		added := make(map[netip.Prefix]bool, len(ch.Added))
		for _, p := range ch.Added {
			switch {
			case !c.checkPrefix(ch.ID, p, hosts):
				continue
			case added[p]:
				c.fail("address set %q: member %s added twice", ch.ID, p)
			case has(p) && !removed[p]:
				c.fail("address set %q: added member %s is present", ch.ID, p)
			}
			added[p] = true
		}
		if !hosts && len(added) > 0 {
			// Single addresses cannot overlap but by being equal, which
			// the presence checks cover; prefixes need the whole set.
			var after []netip.Prefix
			for p := range members() {
				if !removed[p] && !added[p] {
					after = append(after, p)
				}
			}
			for p := range added {
				after = append(after, p)
			}
			c.disjoint(ch.ID, after)
		}
	}
	c.removedAddr = c.ids("address set", d.RemovedAddressSets, "removed")
	for _, id := range d.RemovedAddressSets {
		switch exists, _ := c.have.AddressSet(id); {
		case c.addedAddr[id] != nil:
			c.fail("address set %q: added and removed in one delta", id)
		case !exists && id != "":
			c.fail("address set %q: removed but does not exist", id)
		}
	}
}

func (c *checker) addrAfter(id string) bool {
	if c.addedAddr[id] != nil {
		return true
	}
	exists, _ := c.have.AddressSet(id)
	return exists && !c.removedAddr[id]
}

// --- port sets ---

func (c *checker) checkAddrPort(set string, ap netip.AddrPort) bool {
	a := ap.Addr()
	switch {
	case !a.IsValid():
		c.fail("port set %q: invalid member %s", set, ap)
		return false
	case a.Zone() != "":
		c.fail("port set %q: member %s has a zone", set, ap)
		return false
	case a.Is4In6():
		c.fail("port set %q: member %s has an IPv4-mapped IPv6 address; use the IPv4 form", set, ap)
		return false
	}
	return true
}

func (c *checker) portSets() {
	d := c.d
	c.addedPorts = make(map[string]*PortSet, len(d.AddedPortSets))
	for i := range d.AddedPortSets {
		set := &d.AddedPortSets[i]
		switch _, exists := c.have.PortSet(set.ID); {
		case !setIDOK(set.ID):
			c.fail("port set %q: ID must be 1 to 24 bytes of [a-z0-9-]", set.ID)
		case c.addedPorts[set.ID] != nil:
			c.fail("port set %q: duplicate ID", set.ID)
		case exists:
			c.fail("port set %q: added but exists", set.ID)
		}
		c.addedPorts[set.ID] = set
		if !knownProtocol(set.Protocol) {
			c.fail("port set %q: unknown protocol %d", set.ID, set.Protocol)
		}
		seen := make(map[netip.AddrPort]bool, len(set.Members))
		for _, ap := range set.Members {
			if c.checkAddrPort(set.ID, ap) && seen[ap] {
				c.fail("port set %q: member %s appears twice", set.ID, ap)
			}
			seen[ap] = true
		}
	}
	changed := make(map[string]bool, len(d.PortSetChanges))
	for i := range d.PortSetChanges {
		ch := &d.PortSetChanges[i]
		if changed[ch.ID] {
			c.fail("port set %q: changed twice", ch.ID)
			continue
		}
		changed[ch.ID] = true
		var has func(netip.AddrPort) bool
		if set := c.addedPorts[ch.ID]; set != nil {
			m := setOf(set.Members)
			has = func(ap netip.AddrPort) bool { _, ok := m[ap]; return ok }
		} else if _, exists := c.have.PortSet(ch.ID); exists {
			has = func(ap netip.AddrPort) bool { return c.have.HasAddrPort(ch.ID, ap) }
		} else {
			c.fail("port set %q: changed but does not exist", ch.ID)
			continue
		}
		removed := make(map[netip.AddrPort]bool, len(ch.Removed))
		for _, ap := range ch.Removed {
			switch {
			case !c.checkAddrPort(ch.ID, ap):
			case removed[ap]:
				c.fail("port set %q: member %s removed twice", ch.ID, ap)
			case !has(ap):
				c.fail("port set %q: removed member %s is absent", ch.ID, ap)
			}
			removed[ap] = true
		}
		added := make(map[netip.AddrPort]bool, len(ch.Added))
		for _, ap := range ch.Added {
			switch {
			case !c.checkAddrPort(ch.ID, ap):
			case added[ap]:
				c.fail("port set %q: member %s added twice", ch.ID, ap)
			case has(ap) && !removed[ap]:
				c.fail("port set %q: added member %s is present", ch.ID, ap)
			}
			added[ap] = true
		}
	}
	c.removedPorts = c.ids("port set", d.RemovedPortSets, "removed")
	for _, id := range d.RemovedPortSets {
		switch _, exists := c.have.PortSet(id); {
		case c.addedPorts[id] != nil:
			c.fail("port set %q: added and removed in one delta", id)
		case !exists && id != "":
			c.fail("port set %q: removed but does not exist", id)
		}
	}
}

func (c *checker) portAfter(id string) (Protocol, bool) {
	if set := c.addedPorts[id]; set != nil {
		return set.Protocol, true
	}
	p, exists := c.have.PortSet(id)
	return p, exists && !c.removedPorts[id]
}

// --- rule lists ---

func (c *checker) ruleLists() {
	d := c.d
	c.upserted = make(map[string]*RuleList, len(d.RuleLists))
	for i := range d.RuleLists {
		rl := &d.RuleLists[i]
		switch {
		case rl.ID == "":
			c.fail("rule list: upserted with an empty ID")
		case c.upserted[rl.ID] != nil:
			c.fail("rule list %q: duplicate ID", rl.ID)
		}
		c.upserted[rl.ID] = rl
		if rl.Direction != Ingress && rl.Direction != Egress {
			c.fail("rule list %q: unknown direction %q", rl.ID, rl.Direction)
		}
		for j := range rl.Rules {
			c.rule(rl.ID, &rl.Rules[j])
		}
	}
	c.removedLists = c.ids("rule list", d.RemovedRuleLists, "removed")
	for _, id := range d.RemovedRuleLists {
		switch {
		case c.upserted[id] != nil:
			c.fail("rule list %q: upserted and removed in one delta", id)
		case id != "" && c.have.RuleList(id) == nil:
			c.fail("rule list %q: removed but does not exist", id)
		}
	}
	if len(d.RemovedAddressSets) == 0 && len(d.RemovedPortSets) == 0 {
		return
	}
	// Held lists that d leaves in place must not lose their sets.
	for rl := range c.have.RuleLists() {
		if c.upserted[rl.ID] != nil || c.removedLists[rl.ID] {
			continue
		}
		for j := range rl.Rules {
			r := &rl.Rules[j]
			for _, id := range r.Peers {
				if c.removedAddr[id] {
					c.fail("rule list %q rule %d: address set %q is removed but still used", rl.ID, r.Index, id)
				}
			}
			for _, pm := range r.Ports {
				if pm.NamedSet != "" && c.removedPorts[pm.NamedSet] {
					c.fail("rule list %q rule %d: port set %q is removed but still used", rl.ID, r.Index, pm.NamedSet)
				}
			}
		}
	}
}

func (c *checker) rule(list string, r *Rule) {
	switch r.Action {
	case Allow, Deny, Pass:
	default:
		c.fail("rule list %q rule %d: unknown action %q", list, r.Index, r.Action)
	}
	if r.AllPeers && len(r.Peers) > 0 {
		c.fail("rule list %q rule %d: AllPeers with peers %v", list, r.Index, r.Peers)
	}
	for _, id := range r.Peers {
		if !c.addrAfter(id) {
			c.fail("rule list %q rule %d: unknown address set %q", list, r.Index, id)
		}
	}
	if r.AllPorts && len(r.Ports) > 0 {
		c.fail("rule list %q rule %d: AllPorts with port matches", list, r.Index)
	}
	for _, pm := range r.Ports {
		if !knownProtocol(pm.Protocol) {
			c.fail("rule list %q rule %d: unknown protocol %d", list, r.Index, pm.Protocol)
		}
		if pm.NamedSet != "" {
			if pm.Port != 0 || pm.EndPort != 0 {
				c.fail("rule list %q rule %d: named port %q with a port range %d-%d", list, r.Index, pm.NamedSet, pm.Port, pm.EndPort)
			}
			switch p, ok := c.portAfter(pm.NamedSet); {
			case !ok:
				c.fail("rule list %q rule %d: unknown port set %q", list, r.Index, pm.NamedSet)
			case p != pm.Protocol:
				c.fail("rule list %q rule %d: port set %q is %s, match is %s", list, r.Index, pm.NamedSet, p, pm.Protocol)
			}
			continue
		}
		switch {
		case pm.Port == 0 && pm.EndPort != 0:
			c.fail("rule list %q rule %d: port range 0-%d: port 0 means every port and needs EndPort 0", list, r.Index, pm.EndPort)
		case pm.EndPort < pm.Port:
			c.fail("rule list %q rule %d: port range %d-%d is empty (a single port has EndPort equal to Port)", list, r.Index, pm.Port, pm.EndPort)
		}
	}
}

func (c *checker) listAfter(id string) *RuleList {
	if rl := c.upserted[id]; rl != nil {
		return rl
	}
	if c.removedLists[id] {
		return nil
	}
	return c.have.RuleList(id)
}

// --- endpoints ---

func (c *checker) endpoints() {
	d := c.d
	c.upsertedEps = make(map[string]bool, len(d.Endpoints))
	for i := range d.Endpoints {
		c.upsertedEps[d.Endpoints[i].ID] = true
	}
	c.removedEps = c.ids("endpoint", d.RemovedEndpoints, "removed")
	for _, id := range d.RemovedEndpoints {
		switch {
		case c.upsertedEps[id]:
			c.fail("endpoint %q: upserted and removed in one delta", id)
		case id != "" && !c.have.Endpoint(id):
			c.fail("endpoint %q: removed but does not exist", id)
		}
	}
	seen := make(map[string]bool, len(d.Endpoints))
	owners := make(map[netip.Addr]string, len(d.Endpoints))
	ifOwners := make(map[string]string)
	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		switch {
		case ep.ID == "":
			c.fail("endpoint: upserted with an empty ID")
		case seen[ep.ID]:
			c.fail("endpoint %q: duplicate ID", ep.ID)
		}
		seen[ep.ID] = true
		for _, ip := range ep.IPs {
			switch {
			case !ip.IsValid():
				c.fail("endpoint %q: invalid address", ep.ID)
				continue
			case ip.Zone() != "":
				c.fail("endpoint %q: address %s has a zone", ep.ID, ip)
				continue
			case ip.Is4In6():
				c.fail("endpoint %q: address %s is IPv4-mapped IPv6; use the IPv4 form", ep.ID, ip)
				continue
			}
			if o, ok := owners[ip]; ok {
				if o == ep.ID {
					c.fail("endpoint %q: address %s appears twice", ep.ID, ip)
				} else {
					c.fail("endpoint %q: address %s is also endpoint %q's", ep.ID, ip, o)
				}
				continue
			}
			owners[ip] = ep.ID
			if o, ok := c.have.Owner(ip); ok && o != ep.ID && !c.removedEps[o] && !c.upsertedEps[o] {
				c.fail("endpoint %q: address %s is also endpoint %q's", ep.ID, ip, o)
			}
		}
		c.iface(ep, ifOwners)
		c.tiers(ep)
	}
	affected := c.affectedLists()
	if len(affected) == 0 {
		return
	}
	// One pass over the held endpoints, looking only at references to the
	// affected lists.
	for ep := range c.have.Endpoints() {
		if c.upsertedEps[ep.ID] || c.removedEps[ep.ID] {
			continue
		}
		for _, dir := range []Direction{Ingress, Egress} {
			for _, t := range ep.Tiers(dir) {
				for _, id := range t.RuleLists {
					if affected[id] {
						c.reference(ep, dir, t.Kind, id)
					}
				}
			}
		}
	}
}

// affectedLists are the lists d can break an endpoint it leaves in place
// with: lists it removes, and lists it replaces with a list of another
// direction or with other than Allow rules (which a NetworkPolicy tier
// cannot hold).
func (c *checker) affectedLists() map[string]bool {
	var affected map[string]bool
	add := func(id string) {
		if affected == nil {
			affected = map[string]bool{}
		}
		affected[id] = true
	}
	for _, id := range c.d.RemovedRuleLists {
		add(id)
	}
	for id, rl := range c.upserted {
		if old := c.have.RuleList(id); old != nil && (old.Direction != rl.Direction || !allowOnly(rl)) {
			add(id)
		}
	}
	return affected
}

func allowOnly(rl *RuleList) bool {
	for i := range rl.Rules {
		if rl.Rules[i].Action != Allow {
			return false
		}
	}
	return true
}

func (c *checker) tiers(ep *Endpoint) {
	for _, dir := range []Direction{Ingress, Egress} {
		for _, t := range ep.Tiers(dir) {
			switch t.Kind {
			case TierAdmin, TierNetworkPolicy, TierBaseline:
			default:
				c.fail("endpoint %q: %s: unknown tier kind %q", ep.ID, dir, t.Kind)
			}
			for _, id := range t.RuleLists {
				c.reference(ep, dir, t.Kind, id)
			}
		}
	}
}

// reference checks that list id resolves for a tier of kind in ep's
// direction dir once d is applied.
func (c *checker) reference(ep *Endpoint, dir Direction, kind TierKind, id string) {
	ref := tierRef{dir, kind, id}
	if _, ok := c.goodRefs[ref]; ok {
		return
	}
	rl := c.listAfter(id)
	switch {
	case rl == nil:
		c.fail("endpoint %q: %s tier %s: unknown rule list %q", ep.ID, dir, kind, id)
	case rl.Direction != dir:
		c.fail("endpoint %q: %s tier %s: rule list %q is for %s", ep.ID, dir, kind, id, rl.Direction)
	case kind == TierNetworkPolicy && !allowOnly(rl):
		c.fail("endpoint %q: %s tier %s: rule list %q has rules other than Allow", ep.ID, dir, kind, id)
	default:
		if c.goodRefs == nil {
			c.goodRefs = make(map[tierRef]struct{})
		}
		c.goodRefs[ref] = struct{}{}
	}
}

// iface checks ep's Interface: a legal name, held by no other endpoint
// after d (owners holds the names taken by the endpoints of d so far).
func (c *checker) iface(ep *Endpoint, owners map[string]string) {
	name := ep.Interface
	if name == "" {
		return
	}
	if err := CheckInterfaceName(name); err != nil {
		c.fail("endpoint %q: Interface: %w", ep.ID, err)
		return
	}
	if o, ok := owners[name]; ok {
		c.fail("endpoint %q: interface %q is also endpoint %q's", ep.ID, name, o)
		return
	}
	owners[name] = ep.ID
	if o, ok := c.have.InterfaceOwner(name); ok && o != ep.ID && !c.removedEps[o] && !c.upsertedEps[o] {
		c.fail("endpoint %q: interface %q is also endpoint %q's", ep.ID, name, o)
	}
}

// CheckInterfaceName reports whether name is a legal Linux interface name,
// as the kernel's dev_valid_name accepts it: 1 to 15 bytes, not "." or
// "..", without '/', ':', whitespace or control characters. The empty name
// is an error.
func CheckInterfaceName(name string) error {
	switch {
	case name == "":
		return errors.New("empty interface name")
	case len(name) > 15:
		return fmt.Errorf("interface name %q is %d bytes, longer than 15", name, len(name))
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is not allowed", name)
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b == '/' || b == ':' || b <= ' ' || b == 0x7f {
			return fmt.Errorf("interface name %q holds %q", name, b)
		}
	}
	return nil
}

// setIDOK reports whether id has the form AddressSet.ID promises, from
// which every backend derives its set names.
func setIDOK(id string) bool {
	if len(id) == 0 || len(id) > 24 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func knownProtocol(p Protocol) bool { return p == TCP || p == UDP || p == SCTP }

// noneHeld holds nothing: checking a snapshot is checking the delta that
// creates it from nothing.
type noneHeld struct{}

func (noneHeld) AddressSet(string) (bool, bool)       { return false, false }
func (noneHeld) HasAddress(string, netip.Prefix) bool { return false }
func (noneHeld) AddressMembers(string) iter.Seq[netip.Prefix] {
	return func(func(netip.Prefix) bool) {}
}
func (noneHeld) PortSet(string) (Protocol, bool)         { return 0, false }
func (noneHeld) HasAddrPort(string, netip.AddrPort) bool { return false }
func (noneHeld) RuleList(string) *RuleList               { return nil }
func (noneHeld) RuleLists() iter.Seq[*RuleList]          { return func(func(*RuleList) bool) {} }
func (noneHeld) Endpoint(string) bool                    { return false }
func (noneHeld) Owner(netip.Addr) (string, bool)         { return "", false }
func (noneHeld) Endpoints() iter.Seq[*Endpoint]          { return func(func(*Endpoint) bool) {} }
func (noneHeld) InterfaceOwner(string) (string, bool)    { return "", false }
