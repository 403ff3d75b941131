package iptables

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/internal/rulecount"
	"github.com/palisade-net/palisade/policy/ir"
)

// savedWithCounters turns an iptables-restore input into iptables-save -c
// output, every rule with 1 packet of 100 bytes.
func savedWithCounters(restore string) string {
	var b strings.Builder
	for _, l := range strings.Split(restore, "\n") {
		if strings.HasPrefix(l, "-A ") {
			l = "[1:100] " + l
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// TestCountersMapping reads back what Sync wrote, with counters: an NFLOG
// rule and a rule whose comment was cut sit in a list chain beside ours.
func TestCountersMapping(t *testing.T) {
	ctx := context.Background()
	b, f := newFakeBackend(t)
	c, err := b.Counters(ctx)
	require.NoError(t, err)
	assert.Empty(t, c.Rules, "nothing programmed")

	snap, _ := backendtest.CountersSnapshot()
	_, err = b.Sync(ctx, snap)
	require.NoError(t, err)
	allowChain := b.n.listChain("np:shop/allow-client:ingress")
	extra := "[50:5000] -A " + allowChain + ` -m comment --comment "NetworkPolicy shop/allow-client ingress rule 0: allow" -j NFLOG --nflog-group 3` + "\n" +
		"[7:700] -A " + allowChain + ` -m comment --comment "NetworkPolicy shop/allow-client ingress rule 0" -j DROP` + "\n"
	f.mu.Lock()
	if f.output == nil {
		f.output = map[string]string{}
	}
	for _, cl := range f.calls {
		if strings.HasSuffix(cl.name, "-restore") && strings.Contains(cl.name, "tables") {
			save := strings.TrimSuffix(cl.name, "-restore") + "-save"
			f.output[save] = savedWithCounters(cl.stdin)
			if strings.HasPrefix(cl.name, "iptables") {
				f.output[save] = strings.Replace(f.output[save], "COMMIT", extra+"COMMIT", 1)
			}
		}
	}
	f.mu.Unlock()

	c, err = b.Counters(ctx)
	require.NoError(t, err)
	// allow-client rule 0: 2 ports × 1 peer × 2 families.
	r, ok := c.Rule(backendtest.CountersAllowOrigin, ir.Ingress, 0, ir.Allow)
	require.True(t, ok)
	assert.Equal(t, backend.Count{Packets: 4, Bytes: 400}, r.Count)
	assert.Equal(t, "np:shop/allow-client:ingress", r.List)
	assert.Equal(t, ir.TierNetworkPolicy, r.Tier)
	r, ok = c.Rule(backendtest.CountersAdminOrigin, ir.Ingress, 1, ir.Pass)
	require.True(t, ok)
	assert.Equal(t, backend.Count{Packets: 2, Bytes: 200}, r.Count)
	assert.Equal(t, "pass-other", r.Name)
	assert.Equal(t, ir.TierAdmin, r.Tier)
	assert.Equal(t, "anp:guard:ingress", r.List)
	assert.Equal(t, backend.Count{Packets: 7, Bytes: 700}, c.Unattributed)
	assert.Equal(t, backend.Count{Packets: 2, Bytes: 200}, c.Default(ir.TierNetworkPolicy, ir.Ingress))
	assert.Equal(t, backend.Count{Packets: 2, Bytes: 200}, c.Default(ir.TierNetworkPolicy, ir.Egress))
	assert.Len(t, c.Rules, 4)
}

func TestParseSavedRule(t *testing.T) {
	for _, tc := range []struct {
		line string
		want savedRule
		ok   bool
	}{
		{`[3:180] -A PALISADE-Lab -p udp -m comment --comment "NetworkPolicy a/b ingress rule 0: allow" -g PALISADE-ALLOW`,
			savedRule{chain: "PALISADE-Lab", n: backend.Count{Packets: 3, Bytes: 180}, comment: "NetworkPolicy a/b ingress rule 0: allow", target: "-g PALISADE-ALLOW"}, true},
		{`[0:0] -A PALISADE-Pab -m comment --comment start -j MARK --set-xmark 0x0/0x3000000`,
			savedRule{chain: "PALISADE-Pab", comment: "start", target: "-j MARK"}, true},
		{`-A FORWARD -j X`, savedRule{}, false},
		{`[x:1] -A FORWARD -j X`, savedRule{}, false},
	} {
		got, ok := parseSavedRule(tc.line)
		assert.Equal(t, tc.ok, ok, tc.line)
		if ok {
			assert.Equal(t, tc.want, got, tc.line)
		}
	}
}

func TestParseRuleComment(t *testing.T) {
	for _, tc := range []struct {
		rl ir.RuleList
		r  ir.Rule
		ok bool
	}{
		{ir.RuleList{Origin: ir.Origin{Kind: "NetworkPolicy", Namespace: "a", Name: "b"}, Direction: ir.Ingress}, ir.Rule{Index: 3, Action: ir.Allow}, true},
		{ir.RuleList{Origin: ir.Origin{Kind: "AdminNetworkPolicy", Name: "x"}, Direction: ir.Egress}, ir.Rule{Index: 0, Name: "a name: with colons", Action: ir.Deny}, true},
		{ir.RuleList{Origin: ir.Origin{Kind: "ClusterNetworkPolicy", Name: "x"}, Direction: ir.Egress}, ir.Rule{Index: 12, Name: "p", Action: ir.Pass}, true},
		{ir.RuleList{Origin: ir.Origin{Kind: "NetworkPolicy", Namespace: "a", Name: strings.Repeat("n", 250)}, Direction: ir.Ingress}, ir.Rule{Index: 1, Action: ir.Allow}, false},
	} {
		c := sanitize(ruleComment(&tc.rl, &tc.r))
		ref, ok := parseRuleComment(c)
		if !assert.Equal(t, tc.ok, ok, c) || !ok {
			continue
		}
		assert.Equal(t, tc.rl.Origin, ref.Origin, c)
		assert.Equal(t, tc.rl.Direction, ref.Direction, c)
		assert.Equal(t, tc.r.Index, ref.Index, c)
		assert.Equal(t, tc.r.Name, ref.Name, c)
		assert.Equal(t, tc.r.Action, ref.Action, c)
	}
}

// FuzzTallySave: any iptables-save -c text is read without a panic, and
// every rule it attributes names its policy exactly as the compiler would
// write the rule's comment.
func FuzzTallySave(f *testing.F) {
	f.Add("*filter\n[3:180] -A PALISADE-Lab -p udp -m comment --comment \"NetworkPolicy a/b ingress rule 0: allow\" -g PALISADE-ALLOW\nCOMMIT\n")
	f.Add("*filter\n[1:2] -A PALISADE-Pab -m comment --comment \"NetworkPolicy tier: no rule matched, isolated\" -j DROP\n[0:0] -A PALISADE-Pab -m comment --comment \"start of the ingress check\" -j MARK\n")
	f.Add("[x:1] -A\n*filter\n[1:1] -A PALISADE-L -j")
	n := &names{chain: DefaultChainPrefix, set: DefaultSetPrefix, allow: DefaultAllowMark, pass: DefaultPassMark}
	f.Fuzz(func(t *testing.T, out string) {
		var ta rulecount.Tally
		if err := tallySave(n, []byte(out), &ta); err != nil {
			return
		}
		for _, r := range ta.Counters().Rules {
			rl := ir.RuleList{Origin: r.Origin, Direction: r.Direction}
			ru := ir.Rule{Index: r.Index, Name: r.Name, Action: r.Action}
			assert.Contains(t, out, sanitize(ruleComment(&rl, &ru)))
		}
	})
}
