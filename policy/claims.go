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
	if !a.created.Equal(b.created) {
		return a.created.After(b.created)
	}
	return a.key < b.key
}

// reclaim replaces old's claims (nil: none) with p's (nil: none) and
// returns the other pods that claim any of those addresses: their share
// may have changed.
func (e *engine) reclaim(old, p *podState) []string {
	var touched []netip.Addr
	if old != nil && old.candidate {
		for _, ip := range old.claimed {
			ks := slices.DeleteFunc(e.claimants[ip], func(k string) bool { return k == old.key })
			if len(ks) == 0 {
				delete(e.claimants, ip)
			} else {
				e.claimants[ip] = ks
			}
			touched = append(touched, ip)
		}
	}
	if p != nil && p.candidate {
		for _, ip := range p.claimed {
			e.claimants[ip] = append(e.claimants[ip], p.key)
			touched = append(touched, ip)
		}
	}
	var others []string
	self := ""
	if p != nil {
		self = p.key
	} else if old != nil {
		self = old.key
	}
	for _, ip := range touched {
		for _, k := range e.claimants[ip] {
			if k != self && !slices.Contains(others, k) {
				others = append(others, k)
			}
		}
	}
	return others
}

// own settles p's owned addresses, and so whether it is active and local.
// p need not be in e.pods yet.
func (e *engine) own(p *podState) {
	p.ips = nil
	if p.candidate {
		for _, ip := range p.claimed {
			if e.owns(p, ip) {
				p.ips = append(p.ips, ip)
			}
		}
	}
	if len(p.ips) == len(p.claimed) {
		p.ips = p.claimed // the common case: no copy
	}
	p.active = len(p.ips) > 0
	p.local = p.active && p.onNode
}

// owns reports whether p's claim to ip beats every other claimant's.
func (e *engine) owns(p *podState, ip netip.Addr) bool {
	for _, k := range e.claimants[ip] {
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
