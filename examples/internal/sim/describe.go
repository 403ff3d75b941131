package sim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
)

// Describe names what decided one direction at one endpoint, given the
// traces of that direction (memory.Backend.Explain): the tier, policy and rule (by
// index and name), and every Pass on the way.
func Describe(d memory.Decision, traces []memory.ListTrace) string {
	var passes []string
	for _, lt := range traces {
		if !lt.Evaluated || !lt.Tier.FirstMatch() {
			continue
		}
		for _, rt := range lt.Rules {
			if rt.Matched() {
				if rt.Rule.Action == ir.Pass {
					passes = append(passes, fmt.Sprintf("a Pass by %s rule %s (%s tier)", lt.Origin, RuleName(rt.Rule), lt.Tier))
				}
				break
			}
		}
	}
	var out string
	switch {
	case d.Endpoint == "" || (d.Tier == "" && d.Allowed) || d.Rule < 0:
		out = d.String()
	default:
		verb := "allowed"
		if !d.Allowed {
			verb = "denied"
		}
		name := strconv.Itoa(d.Rule)
		for _, lt := range traces {
			for _, rt := range lt.Rules {
				if lt.RuleList == d.RuleList && rt.Rule.Index == d.Rule {
					name = RuleName(rt.Rule)
				}
			}
		}
		out = fmt.Sprintf("%s by %s rule %s", verb, d.Origin, name)
		if d.Tier != ir.TierNetworkPolicy {
			out += fmt.Sprintf(" (%s tier)", d.Tier)
		}
	}
	if len(passes) > 0 {
		out += ", after " + strings.Join(passes, " and ")
	}
	return out
}

// RuleName is a rule's index, with its name when it has one.
func RuleName(r ir.Rule) string {
	if r.Name == "" {
		return strconv.Itoa(r.Index)
	}
	return fmt.Sprintf("%d %q", r.Index, r.Name)
}
