package memory

import (
	"context"
	"sync/atomic"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/internal/rulecount"
	"github.com/palisade-net/palisade/policy/ir"
)

var _ backend.CounterReader = (*Backend)(nil)

// counts are the decision counters of one state: per rule of each list
// (by list ID and rule index) and per direction for the isolated default.
// They are read-only maps of atomic counters, so Evaluate counts without
// a lock.
type counts struct {
	rules    map[ruleKey]*atomic.Uint64
	isolated [2]*atomic.Uint64 // ingress, egress
}

type ruleKey struct {
	list  string
	index int
}

// reindex indexes next and carries the counters of old over to every rule
// list whose rules did not change, as a kernel keeps the counters of a
// chain it does not rewrite; a new or changed list starts at zero.
func reindex(next *ir.Snapshot, old *state, oldSnap *ir.Snapshot) *state {
	st := index(next)
	st.counts.rules = map[ruleKey]*atomic.Uint64{}
	prev := map[string]*ir.RuleList{}
	if oldSnap != nil {
		for i := range oldSnap.RuleLists {
			prev[oldSnap.RuleLists[i].ID] = &oldSnap.RuleLists[i]
		}
	}
	for i := range next.RuleLists {
		rl := &next.RuleLists[i]
		keep := old != nil && prev[rl.ID] != nil && rulesEqual(*prev[rl.ID], *rl)
		for _, r := range rl.Rules {
			k := ruleKey{rl.ID, r.Index}
			c := new(atomic.Uint64)
			if keep && old.counts.rules[k] != nil {
				c = old.counts.rules[k]
			}
			st.counts.rules[k] = c
		}
	}
	for i := range st.counts.isolated {
		if old != nil && old.counts.isolated[i] != nil {
			st.counts.isolated[i] = old.counts.isolated[i]
		} else {
			st.counts.isolated[i] = new(atomic.Uint64)
		}
	}
	return st
}

// count records the decisions of v: one packet for the rule or default
// that decided each enforced direction.
func (st *state) count(v Verdict) {
	for i, d := range []Decision{v.Ingress, v.Egress} {
		switch {
		case d.Endpoint == "" || d.Tier == "":
		case d.Rule < 0 && d.Tier == ir.TierNetworkPolicy && !d.Allowed:
			if c := st.counts.isolated[i]; c != nil {
				c.Add(1)
			}
		case d.Rule >= 0:
			if c := st.counts.rules[ruleKey{d.RuleList, d.Rule}]; c != nil {
				c.Add(1)
			}
		}
	}
}

// Counters returns, for every rule of every rule list held, the number of
// Evaluate calls it decided (as packets; bytes stay zero), and for each
// direction the calls denied by an isolated endpoint's NetworkPolicy tier
// for lack of a matching rule. Explain does not count, nor does a flow
// decided without the checks (node to its pods, a pod to itself). A Pass
// rule decides nothing and stays at zero, where a kernel counts the
// packets it passed on. Counters of a list that Sync or Apply replaced
// with different rules start again at zero, as the kernel's do; Cleanup
// clears them all. It never fails but with ctx's error.
func (b *Backend) Counters(ctx context.Context) (backend.Counters, error) {
	if err := ctx.Err(); err != nil {
		return backend.Counters{}, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	var t rulecount.Tally
	for i := range b.snap.Endpoints {
		ep := &b.snap.Endpoints[i]
		for _, tiers := range [][]ir.Tier{ep.Ingress, ep.Egress} {
			for _, tier := range tiers {
				for _, id := range tier.RuleLists {
					t.List(id, tier.Kind, id)
				}
			}
		}
	}
	for i := range b.snap.RuleLists {
		rl := &b.snap.RuleLists[i]
		t.List(rl.ID, "", rl.ID)
		for _, r := range rl.Rules {
			var n uint64
			if c := b.state.counts.rules[ruleKey{rl.ID, r.Index}]; c != nil {
				n = c.Load()
			}
			ref := rulecount.Ref{Origin: rl.Origin, Direction: rl.Direction, Index: r.Index, Name: r.Name, Action: r.Action}
			t.Rule(rl.ID, ref, backend.Count{Packets: n})
		}
	}
	for i, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		if c := b.state.counts.isolated[i]; c != nil && c.Load() > 0 {
			t.Default(ir.TierNetworkPolicy, dir, ir.Deny, backend.Count{Packets: c.Load()})
		}
	}
	return t.Counters(), nil
}
