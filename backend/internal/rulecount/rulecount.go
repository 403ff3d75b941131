package rulecount

import (
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
)

// Ref is a rule as its comment names it.
type Ref struct {
	Origin    ir.Origin
	Direction ir.Direction
	Index     int
	Name      string
	Action    ir.Action
}

// List and Rule return the IR pieces a backend's comment function takes.
func (r Ref) List() *ir.RuleList { return &ir.RuleList{Origin: r.Origin, Direction: r.Direction} }

// Rule returns the rule part of r.
func (r Ref) Rule() *ir.Rule { return &ir.Rule{Index: r.Index, Name: r.Name, Action: r.Action} }

// ParseRule parses a rule comment of the form
//
//	<origin> <ingress|egress> rule <index>[ <name>]: <allow|deny|pass>
//
// with origin and name decoded by the backend's own functions (the two
// backends write them differently). ok is false for any other text.
func ParseRule(c string, origin func(string) (ir.Origin, bool), name func(string) (string, bool)) (ref Ref, ok bool) {
	var rest string
	for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		sep := " " + strings.ToLower(string(dir)) + " rule "
		if i := strings.Index(c, sep); i > 0 {
			if ref.Origin, ok = origin(c[:i]); !ok {
				return Ref{}, false
			}
			ref.Direction, rest = dir, c[i+len(sep):]
			break
		}
	}
	if ref.Direction == "" {
		return Ref{}, false
	}
	i := strings.LastIndex(rest, ": ")
	if i < 0 {
		return Ref{}, false
	}
	switch rest[i+2:] {
	case "allow":
		ref.Action = ir.Allow
	case "deny":
		ref.Action = ir.Deny
	case "pass":
		ref.Action = ir.Pass
	default:
		return Ref{}, false
	}
	rest = rest[:i]
	digits, named, hasName := strings.Cut(rest, " ")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || strconv.Itoa(n) != digits {
		return Ref{}, false
	}
	ref.Index = n
	if hasName {
		if ref.Name, ok = name(named); !ok || ref.Name == "" {
			return Ref{}, false
		}
	}
	return ref, true
}

// ParseTierJump parses the comment of a jump to a rule list's chain,
// "<tier> tier: list <id>", as both kernel backends write it.
func ParseTierJump(c string) (tier ir.TierKind, list string, ok bool) {
	t, id, ok := strings.Cut(c, " tier: list ")
	if !ok || id == "" {
		return "", "", false
	}
	switch tk := ir.TierKind(t); tk {
	case ir.TierAdmin, ir.TierNetworkPolicy, ir.TierBaseline:
		return tk, id, true
	}
	return "", "", false
}

// IsolatedComment is the comment of the default drop at the end of a
// NetworkPolicy tier, in both kernel backends.
const IsolatedComment = "NetworkPolicy tier: no rule matched, isolated"

// Tally collects the counters of one read. The zero value is ready.
type Tally struct {
	chains       map[string]chainInfo
	rules        map[ruleKey]*ruleEntry
	defaults     map[defKey]backend.Count
	unattributed backend.Count
}

type chainInfo struct {
	tier ir.TierKind
	list string
}

type ruleEntry struct {
	rc     backend.RuleCounter
	chains []string
}

type ruleKey struct {
	origin ir.Origin
	dir    ir.Direction
	index  int
	action ir.Action
}

type defKey struct {
	tier   ir.TierKind
	dir    ir.Direction
	action ir.Action
}

// List records what is known of the rule list in chain: its tier (empty
// when unknown) and its ID (empty when unknown; the caller has checked it
// against the chain's name). Known values are never overwritten by empty
// ones.
func (t *Tally) List(chain string, tier ir.TierKind, id string) {
	if t.chains == nil {
		t.chains = map[string]chainInfo{}
	}
	ci := t.chains[chain]
	if tier != "" {
		ci.tier = tier
	}
	if id != "" {
		ci.list = id
	}
	t.chains[chain] = ci
}

// Rule adds n to the rule ref, read from chain.
func (t *Tally) Rule(chain string, ref Ref, n backend.Count) {
	if t.rules == nil {
		t.rules = map[ruleKey]*ruleEntry{}
	}
	k := ruleKey{ref.Origin, ref.Direction, ref.Index, ref.Action}
	e := t.rules[k]
	if e == nil {
		e = &ruleEntry{rc: backend.RuleCounter{Origin: ref.Origin, Direction: ref.Direction, Index: ref.Index, Name: ref.Name, Action: ref.Action}}
		t.rules[k] = e
	}
	e.rc.Count = e.rc.Count.Add(n)
	if !slices.Contains(e.chains, chain) {
		e.chains = append(e.chains, chain)
	}
}

// Default adds n to the default verdict of tier in dir.
func (t *Tally) Default(tier ir.TierKind, dir ir.Direction, action ir.Action, n backend.Count) {
	if t.defaults == nil {
		t.defaults = map[defKey]backend.Count{}
	}
	k := defKey{tier, dir, action}
	t.defaults[k] = t.defaults[k].Add(n)
}

// Unattributed adds n to the counts of rules that could not be mapped.
func (t *Tally) Unattributed(n backend.Count) { t.unattributed = t.unattributed.Add(n) }

// Counters returns what was collected, sorted, each rule with the tier and
// list ID recorded (List) for one of its chains; a rule whose chains have
// no tier recorded gets the tier its origin's kind implies, when the kind
// implies one.
func (t *Tally) Counters() backend.Counters {
	c := backend.Counters{Unattributed: t.unattributed}
	for _, e := range t.rules {
		rc := e.rc
		for _, ch := range e.chains {
			ci := t.chains[ch]
			if rc.List == "" {
				rc.List = ci.list
			}
			if rc.Tier == "" {
				rc.Tier = ci.tier
			}
		}
		if rc.Tier == "" {
			rc.Tier = TierOfKind(rc.Origin.Kind)
		}
		c.Rules = append(c.Rules, rc)
	}
	for k, n := range t.defaults {
		c.Defaults = append(c.Defaults, backend.DefaultCounter{Tier: k.tier, Direction: k.dir, Action: k.action, Count: n})
	}
	backend.SortCounters(&c)
	return c
}

// TierOfKind is the tier a policy kind is always in; empty for
// ClusterNetworkPolicy (either cluster-wide tier) and unknown kinds.
func TierOfKind(kind string) ir.TierKind {
	switch kind {
	case "NetworkPolicy":
		return ir.TierNetworkPolicy
	case "AdminNetworkPolicy":
		return ir.TierAdmin
	case "BaselineAdminNetworkPolicy":
		return ir.TierBaseline
	}
	return ""
}
