package policy

import (
	"net/netip"
	"slices"
)

// Several pods can report the same address: a pod being deleted whose
// address the IPAM has already given to a new pod, a pod on a lost node
// whose address was reused elsewhere. The address then belongs to one of
// them, so that the IR never holds two endpoints with one address (a
// kernel dispatches on the address) and a set never holds an address for a
// pod that no longer has it:
//
//   - a pod not being deleted beats one being deleted;
//   - then the most recently created pod wins (the IPAM gave it the
//     address last);
//   - then the first by namespace/name, so the result never depends on
//     the order of events.
//
// The others are treated as if they did not report that address; a pod
// left with no address of its own is neither an endpoint nor a peer.

// beats reports whether a's claim to an address ranks above b's.
func (a *podState) beats(b *podState) bool {
	if a.deleting != b.deleting {
		return !a.deleting
	}
	if a.created != b.created {
		return a.created > b.created
	}
	return a.key < b.key
}

// claims records which pods report each address: one claimant in first
// (the common case, no allocation), any further ones in more.
type claims struct {
	first map[netip.Addr]string
	more  map[netip.Addr][]string
}

func newClaims() claims {
	return claims{first: make(map[netip.Addr]string), more: make(map[netip.Addr][]string)}
}

// add records key's claim to ip and appends to out the address's other
// claimants, once each.
func (c *claims) add(out []string, ip netip.Addr, key string) []string {
	if _, ok := c.first[ip]; !ok {
		c.first[ip] = key // the only claimant: nobody else to tell
		return out
	}
	out = c.others(out, ip, key)
	c.more[ip] = append(c.more[ip], key)
	return out
}

func (c *claims) remove(ip netip.Addr, key string) {
	more := c.more[ip]
	if c.first[ip] == key {
		if len(more) == 0 {
			delete(c.first, ip)
			return
		}
		c.first[ip], more = more[0], more[1:]
	} else {
		more = slices.DeleteFunc(more, func(k string) bool { return k == key })
	}
	if len(more) == 0 {
		delete(c.more, ip)
	} else {
		c.more[ip] = more
	}
}

// others appends to out the claimants of ip other than key, once each.
func (c *claims) others(out []string, ip netip.Addr, key string) []string {
	if k, ok := c.first[ip]; ok && k != key && !slices.Contains(out, k) {
		out = append(out, k)
	}
	for _, k := range c.more[ip] {
		if k != key && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// reclaim replaces old's claims (nil: none) with p's (nil: none) and
// returns the other pods that claim any of those addresses: their share
// may have changed.
func (e *engine) reclaim(old, p *podState) []string {
	self := ""
	switch {
	case p != nil:
		self = p.key
	case old != nil:
		self = old.key
	}
	oldClaims := old != nil && old.candidate
	newClaims := p != nil && p.candidate
	if oldClaims && newClaims && slices.Equal(old.claimed, p.claimed) &&
		old.deleting == p.deleting && old.created == p.created {
		return nil // the same claims with the same rank: nobody's share moves
	}
	var others []string
	if oldClaims {
		for _, ip := range old.claimed {
			e.claims.remove(ip, old.key)
			others = e.claims.others(others, ip, self)
		}
	}
	if newClaims {
		for _, ip := range p.claimed {
			others = e.claims.add(others, ip, p.key)
		}
	}
	return others
}

// own settles p's owned addresses, and so whether it is active and local.
// p need not be in e.pods yet.
func (e *engine) own(p *podState) {
	p.ips = p.claimed // the common case: every address is the pod's alone
	if !p.candidate {
		p.ips = nil
	} else {
		for i, ip := range p.claimed {
			if !e.owns(p, ip) {
				p.ips = slices.Clone(p.claimed[:i])
				for _, ip := range p.claimed[i+1:] {
					if e.owns(p, ip) {
						p.ips = append(p.ips, ip)
					}
				}
				break
			}
		}
	}
	p.active = len(p.ips) > 0
	p.local = p.active && p.onNode
}

// owns reports whether p's claim to ip beats every other claimant's.
func (e *engine) owns(p *podState, ip netip.Addr) bool {
	more := e.claims.more[ip]
	if len(more) == 0 {
		return true // p is the only claimant
	}
	for _, k := range append([]string{e.claims.first[ip]}, more...) {
		if k == p.key {
			continue
		}
		if o := e.pods[k]; o != nil && o.beats(p) {
			return false
		}
	}
	return true
}

// reown settles again the addresses of the pod with key k after another
// pod's claims changed, and applies the result if it differs.
func (e *engine) reown(k string) {
	o := e.pods[k]
	if o == nil {
		return
	}
	n := *o
	e.own(&n)
	if n.active == o.active && slices.Equal(n.ips, o.ips) {
		return
	}
	e.applyPod(&n)
}

// sharedAddresses lists the addresses with more than one claimant.
func (e *engine) sharedAddresses() []SharedAddress {
	out := make([]SharedAddress, 0, len(e.claims.more))
	for ip, more := range e.claims.more {
		keys := append([]string{e.claims.first[ip]}, more...)
		owner := keys[0]
		for _, k := range keys[1:] {
			if o, p := e.pods[owner], e.pods[k]; o != nil && p != nil && p.beats(o) {
				owner = k
			}
		}
		others := slices.DeleteFunc(keys, func(k string) bool { return k == owner })
		slices.Sort(others)
		out = append(out, SharedAddress{Address: ip, Owner: owner, Others: others})
	}
	slices.SortFunc(out, func(a, b SharedAddress) int { return a.Address.Compare(b.Address) })
	return out
}

// podAt returns the pod that owns address a, of those that claim it.
func (e *engine) podAt(a netip.Addr) (string, bool) {
	a = a.Unmap()
	for _, k := range e.claims.others(nil, a, "") {
		if p := e.pods[k]; p != nil && slices.Contains(p.ips, a) {
			return k, true
		}
	}
	return "", false
}
