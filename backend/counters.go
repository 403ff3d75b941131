package backend

import (
	"cmp"
	"context"
	"slices"

	"github.com/palisade-net/palisade/policy/ir"
)

// CounterReader is an optional interface of a Backend that reads how many
// packets and bytes each rule of the packet filter has matched. Discover it
// with As, so that decorators (backend/conntrack's Follower) pass it
// through:
//
//	if cr, ok := backend.As[backend.CounterReader](be); ok { c, err := cr.Counters(ctx) ... }
//
// Counters goes through the backend's own kernel connection, changes
// nothing, and may be called at any time, concurrently with the other
// methods; it does not need a Sync first, so a fresh Backend reads the
// counters of a node another process programmed.
//
// Counters are attributed to policy by what the packet filter itself
// carries (the comment on each rule naming its origin, direction, rule
// index and action, and the comments on the jumps naming each rule list's
// tier and ID), each checked against the name of the chain it sits in; no
// IR or engine is needed. A rule whose comment does not read back exactly
// as the backend writes it (cut to the kernel's comment limit, or a rule
// another component added: a log rule, say) is never guessed at: its
// counts go to Unattributed, or nowhere when it decides nothing (no
// verdict). A backend that programmed the rules itself may match a rule
// whose comment was cut by its whole content instead (backend/nftables
// does). Kernel counters count packets, including those of retransmits;
// they start at zero when a rule is created or rewritten (a changed rule
// list rewrites its chain), so a caller exporting them as monotonic
// counters sees a reset then, as after a restart.
//
// backend/nftables and backend/iptables read the kernel's counters;
// backend/memory counts the decisions of its Evaluate calls (one packet
// per call, zero bytes).
type CounterReader interface {
	// Counters returns the counters of every rule of every rule list
	// programmed and the tiers' default verdicts. It is empty (no error)
	// when nothing is programmed.
	Counters(ctx context.Context) (Counters, error)
}

// Count is a number of packets and bytes.
type Count struct {
	Packets, Bytes uint64
}

// Add returns c plus o.
func (c Count) Add(o Count) Count { return Count{c.Packets + o.Packets, c.Bytes + o.Bytes} }

// Counters is what a CounterReader read: one entry per rule (summed over
// the address families and over the kernel rules one IR rule compiles to),
// sorted by origin (kind, namespace, name), direction, rule index and
// action, and one per default verdict.
type Counters struct {
	Rules    []RuleCounter
	Defaults []DefaultCounter
	// Unattributed counts the packets matched by rules of our rule lists
	// whose comment could not be mapped back to a rule (see CounterReader).
	Unattributed Count
}

// RuleCounter is what one rule of a rule list matched.
type RuleCounter struct {
	// List is the rule list's ID when the packet filter carries it whole
	// (an ID longer than the backend's comment limit is cut, and left
	// empty here); Origin, Direction and Index identify the rule anyway.
	List string
	// Tier is the tier the list is programmed in: NetworkPolicy, Admin or
	// Baseline, empty when no endpoint uses the list yet (or the backend
	// could not tell; a ClusterNetworkPolicy can be in either
	// cluster-wide tier).
	Tier      ir.TierKind
	Origin    ir.Origin
	Direction ir.Direction
	// Index and Name are the rule's position and name in its object.
	Index  int
	Name   string
	Action ir.Action
	Count
}

// DefaultCounter is what a tier's default verdict matched: the packets of
// isolated endpoints that no rule of their NetworkPolicy tier allowed
// (Tier NetworkPolicy, Action Deny), per direction.
type DefaultCounter struct {
	Tier      ir.TierKind
	Direction ir.Direction
	Action    ir.Action
	Count
}

// PolicyCounter is the sum of the rules of one policy object, per
// direction and action.
type PolicyCounter struct {
	Tier      ir.TierKind
	Origin    ir.Origin
	Direction ir.Direction
	Action    ir.Action
	Count
}

// PerPolicy sums c.Rules per (tier, origin, direction, action), in the
// order of c.Rules. It is empty when c.Rules is.
func (c Counters) PerPolicy() []PolicyCounter {
	var out []PolicyCounter
	idx := map[PolicyCounter]int{}
	for _, r := range c.Rules {
		k := PolicyCounter{Tier: r.Tier, Origin: r.Origin, Direction: r.Direction, Action: r.Action}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, k)
		}
		out[i].Count = out[i].Count.Add(r.Count)
	}
	return out
}

// Rule returns the counter of rule index of the list of origin in dir
// with action, and false when c holds none.
func (c Counters) Rule(origin ir.Origin, dir ir.Direction, index int, action ir.Action) (RuleCounter, bool) {
	for _, r := range c.Rules {
		if r.Origin == origin && r.Direction == dir && r.Index == index && r.Action == action {
			return r, true
		}
	}
	return RuleCounter{}, false
}

// Default returns the default counter of tier in dir (zero when absent).
func (c Counters) Default(tier ir.TierKind, dir ir.Direction) Count {
	var n Count
	for _, d := range c.Defaults {
		if d.Tier == tier && d.Direction == dir {
			n = n.Add(d.Count)
		}
	}
	return n
}

// SortCounters puts c's entries in the order Counters documents.
func SortCounters(c *Counters) {
	slices.SortFunc(c.Rules, func(a, b RuleCounter) int {
		return cmp.Or(
			cmp.Compare(a.Origin.Kind, b.Origin.Kind),
			cmp.Compare(a.Origin.Namespace, b.Origin.Namespace),
			cmp.Compare(a.Origin.Name, b.Origin.Name),
			cmp.Compare(a.Direction, b.Direction),
			cmp.Compare(a.Index, b.Index),
			cmp.Compare(a.Action, b.Action),
		)
	})
	slices.SortFunc(c.Defaults, func(a, b DefaultCounter) int {
		return cmp.Or(cmp.Compare(a.Tier, b.Tier), cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Action, b.Action))
	})
}
