package rulecount

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
)

func plainOrigin(s string) (ir.Origin, bool) { return ir.Origin{Kind: "K", Name: s}, s != "" }
func plainName(s string) (string, bool)      { return s, true }

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"o ingress rule 0: allow", Ref{Origin: ir.Origin{Kind: "K", Name: "o"}, Direction: ir.Ingress, Action: ir.Allow}, true},
		{"o egress rule 12 my rule: x: deny", Ref{Origin: ir.Origin{Kind: "K", Name: "o"}, Direction: ir.Egress, Index: 12, Name: "my rule: x", Action: ir.Deny}, true},
		{"o egress rule 1 p: pass", Ref{Origin: ir.Origin{Kind: "K", Name: "o"}, Direction: ir.Egress, Index: 1, Name: "p", Action: ir.Pass}, true},
		{"o ingress rule 01: allow", Ref{}, false},
		{"o ingress rule -1: allow", Ref{}, false},
		{"o ingress rule 1: allow, skip the rest of the tier", Ref{}, false},
		{"o ingress rule 1", Ref{}, false},
		{"o ingress rule 1 : allow", Ref{}, false},
		{" ingress rule 1: allow", Ref{}, false},
		{"NetworkPolicy tier: list x", Ref{}, false},
		{"", Ref{}, false},
	} {
		got, ok := ParseRule(tc.in, plainOrigin, plainName)
		assert.Equal(t, tc.ok, ok, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestParseTierJump(t *testing.T) {
	for _, tc := range []struct {
		in   string
		tier ir.TierKind
		list string
		ok   bool
	}{
		{"NetworkPolicy tier: list np:a/b:ingress", ir.TierNetworkPolicy, "np:a/b:ingress", true},
		{"Admin tier: list anp:x:egress", ir.TierAdmin, "anp:x:egress", true},
		{"Baseline tier: list b", ir.TierBaseline, "b", true},
		{"Admin tier: 2 lists", "", "", false},
		{"Other tier: list x", "", "", false},
		{"Admin tier: list ", "", "", false},
	} {
		tier, list, ok := ParseTierJump(tc.in)
		assert.Equal(t, tc.ok, ok, tc.in)
		assert.Equal(t, tc.tier, tier, tc.in)
		assert.Equal(t, tc.list, list, tc.in)
	}
}

// TestTally sums the kernel rules of one IR rule across chains (families)
// and takes the tier and ID of any of its chains, or the kind's tier.
func TestTally(t *testing.T) {
	var ta Tally
	np := Ref{Origin: ir.Origin{Kind: "NetworkPolicy", Namespace: "a", Name: "b"}, Direction: ir.Ingress, Action: ir.Allow}
	cnp := Ref{Origin: ir.Origin{Kind: "ClusterNetworkPolicy", Name: strings.Repeat("c", 3)}, Direction: ir.Egress, Index: 1, Action: ir.Deny}
	ta.List("l4", "", "np:a/b:ingress")
	ta.Rule("l4", np, backend.Count{Packets: 1, Bytes: 10})
	ta.Rule("l4", np, backend.Count{Packets: 2, Bytes: 20})
	ta.Rule("l6", np, backend.Count{Packets: 4, Bytes: 40})
	ta.Rule("c4", cnp, backend.Count{Packets: 1, Bytes: 1})
	ta.Rule("c6", cnp, backend.Count{})
	ta.List("c6", ir.TierBaseline, "") // recorded after the rule: still applied
	ta.Default(ir.TierNetworkPolicy, ir.Ingress, ir.Deny, backend.Count{Packets: 5})
	ta.Default(ir.TierNetworkPolicy, ir.Ingress, ir.Deny, backend.Count{Packets: 1})
	ta.Unattributed(backend.Count{Packets: 9})
	c := ta.Counters()
	assert.Equal(t, backend.Counters{
		Rules: []backend.RuleCounter{
			{Tier: ir.TierBaseline, Origin: cnp.Origin, Direction: ir.Egress, Index: 1, Action: ir.Deny, Count: backend.Count{Packets: 1, Bytes: 1}},
			{List: "np:a/b:ingress", Tier: ir.TierNetworkPolicy, Origin: np.Origin, Direction: ir.Ingress, Action: ir.Allow, Count: backend.Count{Packets: 7, Bytes: 70}},
		},
		Defaults:     []backend.DefaultCounter{{Tier: ir.TierNetworkPolicy, Direction: ir.Ingress, Action: ir.Deny, Count: backend.Count{Packets: 6}}},
		Unattributed: backend.Count{Packets: 9},
	}, c)
	assert.Equal(t, []backend.PolicyCounter{
		{Tier: ir.TierBaseline, Origin: cnp.Origin, Direction: ir.Egress, Action: ir.Deny, Count: backend.Count{Packets: 1, Bytes: 1}},
		{Tier: ir.TierNetworkPolicy, Origin: np.Origin, Direction: ir.Ingress, Action: ir.Allow, Count: backend.Count{Packets: 7, Bytes: 70}},
	}, c.PerPolicy())
	assert.Empty(t, (&Tally{}).Counters().Rules)
}

// FuzzParseRule: any text parses without a panic, and what parses names a
// direction, an action and a non-negative index.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"o ingress rule 0: allow", "o egress rule 12 my rule: x: deny", "o ingress rule 1: allow, skip", "NetworkPolicy tier: list x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok := ParseRule(s, plainOrigin, plainName)
		if !ok {
			assert.Equal(t, Ref{}, ref)
			return
		}
		assert.Contains(t, []ir.Direction{ir.Ingress, ir.Egress}, ref.Direction)
		assert.Contains(t, []ir.Action{ir.Allow, ir.Deny, ir.Pass}, ref.Action)
		assert.GreaterOrEqual(t, ref.Index, 0)
		_, _, _ = ParseTierJump(s)
	})
}
