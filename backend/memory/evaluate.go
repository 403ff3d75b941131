package memory

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/palisade-net/palisade/policy/ir"
)

// Flow is a connection attempt: the first packet from Src to Dst, to
// destination port Port of Protocol.
type Flow struct {
	Src, Dst netip.Addr
	Protocol ir.Protocol
	Port     uint16
}

func (f Flow) String() string {
	return fmt.Sprintf("%s -> %s %s/%d", f.Src, f.Dst, f.Protocol, f.Port)
}

// Verdict is the outcome of a flow, with the decision of each end.
type Verdict struct {
	Allowed bool
	// Egress is the decision at the source endpoint, Ingress at the
	// destination endpoint.
	Egress, Ingress Decision
	// Reason explains a verdict not reached by the two checks (node to
	// local pod, traffic of a pod to itself), else empty.
	Reason string
}

// Decision is the outcome of one direction's check at one endpoint.
type Decision struct {
	// Endpoint is the endpoint checked; empty when the address belongs to
	// no local endpoint (the direction is not enforced here).
	Endpoint string
	Allowed  bool
	// Tier, RuleList, Origin and Rule name what decided. Rule is -1 when no
	// rule decided: the endpoint is not restricted in this direction
	// (Tier empty), no tier decided (Tier empty, every tier passed), or the
	// NetworkPolicy tier denied for lack of a matching rule.
	Tier     ir.TierKind
	RuleList string
	Origin   ir.Origin
	Rule     int
	Action   ir.Action
}

// String renders the decision for people.
func (d Decision) String() string {
	switch {
	case d.Endpoint == "":
		return "not enforced here"
	case d.Tier == "" && d.Allowed:
		return "allowed (no policy decides)"
	case d.Rule < 0:
		return fmt.Sprintf("denied (isolated by %s, no rule matched)", d.Tier)
	case d.Tier != ir.TierNetworkPolicy:
		return fmt.Sprintf("%s by %s rule %d (%s tier)", lower(d.Action), d.Origin, d.Rule, d.Tier)
	}
	return fmt.Sprintf("%s by %s rule %d", lower(d.Action), d.Origin, d.Rule)
}

func lower(a ir.Action) string {
	switch a {
	case ir.Allow:
		return "allowed"
	case ir.Deny:
		return "denied"
	}
	return "passed"
}

// state is the indexed form of a snapshot.
type state struct {
	addr      map[string][]netip.Prefix // sorted, disjoint
	ports     map[string]map[netip.AddrPort]bool
	lists     map[string]*ir.RuleList
	endpoints map[netip.Addr]*ir.Endpoint
	counts    counts // Counters
}

func index(s *ir.Snapshot) *state {
	st := &state{
		addr:      make(map[string][]netip.Prefix, len(s.AddressSets)),
		ports:     make(map[string]map[netip.AddrPort]bool, len(s.PortSets)),
		lists:     make(map[string]*ir.RuleList, len(s.RuleLists)),
		endpoints: make(map[netip.Addr]*ir.Endpoint, len(s.Endpoints)),
	}
	for _, set := range s.AddressSets {
		m := slices.Clone(set.Members)
		for i := range m {
			// inSet looks a prefix up by its first address.
			m[i] = m[i].Masked()
		}
		slices.SortFunc(m, ir.ComparePrefix)
		st.addr[set.ID] = m
	}
	for _, set := range s.PortSets {
		m := make(map[netip.AddrPort]bool, len(set.Members))
		for _, ap := range set.Members {
			m[ap] = true
		}
		st.ports[set.ID] = m
	}
	for i := range s.RuleLists {
		st.lists[s.RuleLists[i].ID] = &s.RuleLists[i]
	}
	for i := range s.Endpoints {
		for _, ip := range s.Endpoints[i].IPs {
			st.endpoints[ip] = &s.Endpoints[i]
		}
	}
	return st
}

// inSet reports whether a lies in one of the disjoint, sorted prefixes.
func inSet(set []netip.Prefix, a netip.Addr) bool {
	// The candidate is the last prefix whose first address is <= a.
	i, _ := slices.BinarySearchFunc(set, a, func(p netip.Prefix, a netip.Addr) int {
		return p.Addr().Compare(a)
	})
	if i < len(set) && set[i].Addr() == a {
		return true
	}
	return i > 0 && set[i-1].Contains(a)
}

// Endpoint returns the endpoint that owns ip, if any.
func (b *Backend) Endpoint(ip netip.Addr) (ir.Endpoint, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ep := b.state.endpoints[ip.Unmap()]
	if ep == nil {
		return ir.Endpoint{}, false
	}
	return ep.Clone(), true
}

// Evaluate decides a flow: allowed when the source endpoint's egress tiers and
// the destination endpoint's ingress tiers both allow it. An address that is
// no local endpoint is not checked. Traffic from a node address (Config) to
// a local endpoint, and from an endpoint to itself, is always allowed.
func (b *Backend) Evaluate(f Flow) Verdict {
	b.mu.RLock()
	defer b.mu.RUnlock()
	v, _ := b.state.evaluate(f, b.cfg.NodeIPs, false)
	b.state.count(v)
	return v
}

// Explain decides a flow like Evaluate and also returns, for each enforced
// end, every rule list that applies and how each of its rules fared.
func (b *Backend) Explain(f Flow) (Verdict, []ListTrace) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.state.evaluate(f, b.cfg.NodeIPs, true)
}

// ListTrace is how one rule list fared for a flow at one endpoint.
type ListTrace struct {
	Endpoint  string
	Direction ir.Direction
	Tier      ir.TierKind
	RuleList  string
	Origin    ir.Origin
	// Evaluated is false for lists after the one that decided.
	Evaluated bool
	Rules     []RuleTrace
}

// RuleTrace is how one rule fared: whether its peer and its port matched.
type RuleTrace struct {
	Rule        ir.Rule
	PeerMatched bool
	PortMatched bool
}

// Matched reports whether the whole rule matched.
func (r RuleTrace) Matched() bool { return r.PeerMatched && r.PortMatched }

func (st *state) evaluate(f Flow, nodeIPs []netip.Addr, explain bool) (Verdict, []ListTrace) {
	f.Src, f.Dst = f.Src.Unmap(), f.Dst.Unmap()
	var v Verdict
	src, dst := st.endpoints[f.Src], st.endpoints[f.Dst]
	if dst != nil && slices.Contains(nodeIPs, f.Src) {
		v.Allowed, v.Reason = true, "traffic from the node to its local pods is always allowed"
		return v, nil
	}
	if src != nil && src == dst {
		v.Allowed, v.Reason = true, "traffic of a pod to itself never leaves the pod"
		return v, nil
	}
	var traces []ListTrace
	v.Egress, traces = st.decide(src, ir.Egress, f.Dst, f, explain, traces)
	v.Ingress, traces = st.decide(dst, ir.Ingress, f.Src, f, explain, traces)
	v.Allowed = v.Egress.Allowed && v.Ingress.Allowed
	return v, traces
}

// decide runs one direction's tiers at ep against the peer address.
func (st *state) decide(ep *ir.Endpoint, dir ir.Direction, peer netip.Addr, f Flow, explain bool, traces []ListTrace) (Decision, []ListTrace) {
	d := Decision{Allowed: true, Rule: -1}
	if ep == nil {
		return d, traces
	}
	d.Endpoint = ep.ID
	decided := false
	for _, tier := range ep.Tiers(dir) {
		if decided && !explain {
			break
		}
		tierDone := false // the tier reached a verdict or a Pass
		matchedAny := false
		for _, id := range tier.RuleLists {
			rl := st.lists[id]
			lt := ListTrace{Endpoint: ep.ID, Direction: dir, Tier: tier.Kind, RuleList: id, Origin: rl.Origin, Evaluated: !decided && !tierDone}
			for _, r := range rl.Rules {
				rt := RuleTrace{Rule: r, PeerMatched: st.peerMatches(&r, peer), PortMatched: st.portMatches(&r, f)}
				if explain {
					lt.Rules = append(lt.Rules, rt)
				}
				if !rt.Matched() || decided || tierDone {
					continue
				}
				if !tier.Kind.FirstMatch() {
					if !matchedAny {
						matchedAny = true
						d = Decision{Endpoint: ep.ID, Allowed: true, Tier: tier.Kind, RuleList: id, Origin: rl.Origin, Rule: r.Index, Action: ir.Allow}
					}
					continue
				}
				switch r.Action {
				case ir.Allow, ir.Deny:
					d = Decision{Endpoint: ep.ID, Allowed: r.Action == ir.Allow, Tier: tier.Kind, RuleList: id, Origin: rl.Origin, Rule: r.Index, Action: r.Action}
					decided = true
				case ir.Pass:
					tierDone = true
				}
				if !explain && (decided || tierDone) {
					break
				}
			}
			if explain {
				traces = append(traces, lt)
			}
			if !explain && (decided || tierDone || matchedAny) {
				break
			}
		}
		if decided {
			continue
		}
		if !tier.Kind.FirstMatch() {
			decided = true
			if !matchedAny {
				d = Decision{Endpoint: ep.ID, Allowed: false, Tier: tier.Kind, Rule: -1, Action: ir.Deny}
			}
		}
	}
	return d, traces
}

func (st *state) peerMatches(r *ir.Rule, peer netip.Addr) bool {
	if r.AllPeers {
		return true
	}
	for _, id := range r.Peers {
		if inSet(st.addr[id], peer) {
			return true
		}
	}
	return false
}

func (st *state) portMatches(r *ir.Rule, f Flow) bool {
	if r.AllPorts {
		return true
	}
	for _, p := range r.Ports {
		if p.Protocol != f.Protocol {
			continue
		}
		if p.NamedSet != "" {
			if st.ports[p.NamedSet][netip.AddrPortFrom(f.Dst, f.Port)] {
				return true
			}
			continue
		}
		if p.Port == 0 || (f.Port >= p.Port && f.Port <= p.EndPort) {
			return true
		}
	}
	return false
}
