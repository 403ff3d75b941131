package ir

import (
	"errors"
	"fmt"
	"net/netip"
)

// Held is what a backend holds, as far as checking a delta needs: which
// sets, rule lists and endpoints exist, with the attributes references
// depend on.
type Held interface {
	// AddressSet reports whether the set exists and whether it holds hosts
	// only.
	AddressSet(id string) (exists, hosts bool)
	// PortSet returns the protocol of an existing port set.
	PortSet(id string) (proto Protocol, exists bool)
	// RuleList returns the direction of an existing rule list.
	RuleList(id string) (dir Direction, exists bool)
	// Endpoint reports whether the endpoint exists.
	Endpoint(id string) bool
}

// CheckDelta verifies that d fits what a backend holds, without changing
// anything: what d changes or removes exists, what it adds does not, sets
// that hold hosts only get single addresses, protocols, actions, directions
// and tier kinds are known, port ranges are not empty, and every reference
// of an upserted rule list or endpoint resolves once d is applied. It
// returns every problem found, joined. Backends call it before turning a
// delta into packet-filter changes, so that a delta that does not fit
// changes nothing.
func CheckDelta(have Held, d *Delta) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	hostsOnly := func(id string, members []netip.Prefix) {
		for _, p := range members {
			if !p.IsSingleIP() {
				fail("address set %q: holds hosts only, but has %s", id, p)
				return
			}
		}
	}
	removedAddr := stringSet(d.RemovedAddressSets)
	addedAddr := map[string]bool{} // ID → hosts only
	for _, set := range d.AddedAddressSets {
		if exists, _ := have.AddressSet(set.ID); exists {
			fail("address set %q: added but exists", set.ID)
		} else if _, dup := addedAddr[set.ID]; dup {
			fail("address set %q: added twice", set.ID)
		}
		addedAddr[set.ID] = set.Hosts
		if set.Hosts {
			hostsOnly(set.ID, set.Members)
		}
	}
	for _, ch := range d.AddressSetChanges {
		hosts, added := addedAddr[ch.ID]
		if !added {
			var exists bool
			if exists, hosts = have.AddressSet(ch.ID); !exists {
				fail("address set %q: changed but does not exist", ch.ID)
				continue
			}
		}
		if hosts {
			hostsOnly(ch.ID, ch.Added)
		}
	}
	for _, id := range d.RemovedAddressSets {
		if exists, _ := have.AddressSet(id); !exists {
			fail("address set %q: removed but does not exist", id)
		}
	}
	addrAfter := func(id string) bool {
		if _, ok := addedAddr[id]; ok {
			return true
		}
		exists, _ := have.AddressSet(id)
		return exists && !removedAddr[id]
	}

	removedPorts := stringSet(d.RemovedPortSets)
	addedPorts := map[string]Protocol{}
	for _, set := range d.AddedPortSets {
		if _, exists := have.PortSet(set.ID); exists {
			fail("port set %q: added but exists", set.ID)
		} else if _, dup := addedPorts[set.ID]; dup {
			fail("port set %q: added twice", set.ID)
		}
		if !knownProtocol(set.Protocol) {
			fail("port set %q: unknown protocol %d", set.ID, set.Protocol)
		}
		addedPorts[set.ID] = set.Protocol
	}
	for _, ch := range d.PortSetChanges {
		if _, added := addedPorts[ch.ID]; !added {
			if _, exists := have.PortSet(ch.ID); !exists {
				fail("port set %q: changed but does not exist", ch.ID)
			}
		}
	}
	for _, id := range d.RemovedPortSets {
		if _, exists := have.PortSet(id); !exists {
			fail("port set %q: removed but does not exist", id)
		}
	}
	portAfter := func(id string) (Protocol, bool) {
		if p, ok := addedPorts[id]; ok {
			return p, true
		}
		p, exists := have.PortSet(id)
		return p, exists && !removedPorts[id]
	}

	removedLists := stringSet(d.RemovedRuleLists)
	upserted := make(map[string]Direction, len(d.RuleLists))
	for i := range d.RuleLists {
		rl := &d.RuleLists[i]
		if rl.Direction != Ingress && rl.Direction != Egress {
			fail("rule list %q: unknown direction %q", rl.ID, rl.Direction)
		}
		upserted[rl.ID] = rl.Direction
		for _, r := range rl.Rules {
			switch r.Action {
			case Allow, Deny, Pass:
			default:
				fail("rule list %q rule %d: unknown action %q", rl.ID, r.Index, r.Action)
			}
			for _, id := range r.Peers {
				if !addrAfter(id) {
					fail("rule list %q rule %d: unknown address set %q", rl.ID, r.Index, id)
				}
			}
			for _, pm := range r.Ports {
				if !knownProtocol(pm.Protocol) {
					fail("rule list %q rule %d: unknown protocol %d", rl.ID, r.Index, pm.Protocol)
				}
				if pm.NamedSet == "" {
					if pm.EndPort != 0 && pm.EndPort < pm.Port {
						fail("rule list %q rule %d: port range %d-%d is empty", rl.ID, r.Index, pm.Port, pm.EndPort)
					}
					continue
				}
				switch p, ok := portAfter(pm.NamedSet); {
				case !ok:
					fail("rule list %q rule %d: unknown port set %q", rl.ID, r.Index, pm.NamedSet)
				case p != pm.Protocol:
					fail("rule list %q rule %d: port set %q is %s, match is %s", rl.ID, r.Index, pm.NamedSet, p, pm.Protocol)
				}
			}
		}
	}
	for _, id := range d.RemovedRuleLists {
		if _, exists := have.RuleList(id); !exists {
			fail("rule list %q: removed but does not exist", id)
		}
	}
	listAfter := func(id string) (Direction, bool) {
		if dir, ok := upserted[id]; ok {
			return dir, true
		}
		dir, exists := have.RuleList(id)
		return dir, exists && !removedLists[id]
	}

	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		for _, dir := range []Direction{Ingress, Egress} {
			for _, t := range ep.Tiers(dir) {
				switch t.Kind {
				case TierAdmin, TierNetworkPolicy, TierBaseline:
				default:
					fail("endpoint %q: %s: unknown tier kind %q", ep.ID, dir, t.Kind)
				}
				for _, id := range t.RuleLists {
					switch got, ok := listAfter(id); {
					case !ok:
						fail("endpoint %q: %s tier %s: unknown rule list %q", ep.ID, dir, t.Kind, id)
					case got != dir:
						fail("endpoint %q: %s tier %s: rule list %q is for %s", ep.ID, dir, t.Kind, id, got)
					}
				}
			}
		}
		for _, ip := range ep.IPs {
			if !ip.IsValid() {
				fail("endpoint %q: invalid address", ep.ID)
			}
		}
	}
	for _, id := range d.RemovedEndpoints {
		if !have.Endpoint(id) {
			fail("endpoint %q: removed but does not exist", id)
		}
	}
	return errors.Join(errs...)
}

func knownProtocol(p Protocol) bool { return p == TCP || p == UDP || p == SCTP }

func stringSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
