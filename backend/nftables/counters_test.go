package nftables

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/policy/ir"
)

// readRules is the fake kernel's dump of its table's chains and rules.
func (f *fakeKernel) readRules(_ context.Context, table string) ([]*chainModel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tbl
	if t == nil || t.name != table {
		return nil, nil
	}
	var out []*chainModel
	for _, c := range t.chains {
		cc := *c
		cc.rules = slices.Clone(c.rules)
		out = append(out, &cc)
	}
	return out, nil
}

// withCounter returns r's expressions with every counter set to n.
func withCounter(t *testing.T, r *ruleModel, n backend.Count) *ruleModel {
	t.Helper()
	out := *r
	out.exprs = nil
	for _, b := range r.exprs {
		if e, err := decodeExpr(b); err == nil {
			if _, ok := e.(*expr.Counter); ok {
				enc, err := expr.Marshal(unix.NFPROTO_INET, &expr.Counter{Packets: n.Packets, Bytes: n.Bytes})
				require.NoError(t, err)
				b = enc
			}
		}
		out.exprs = append(out.exprs, b)
	}
	return &out
}

// TestCountersMapping reads counters from the fake kernel: every rule of
// the table counts one packet of 100 bytes; a log rule and a rule whose
// comment was cut sit in a list chain beside ours.
func TestCountersMapping(t *testing.T) {
	ctx := context.Background()
	f := &fakeKernel{}
	b := newFakeBackend(f, "palisade")
	c, err := b.Counters(ctx)
	require.NoError(t, err)
	assert.Empty(t, c.Rules, "no table")

	snap, _ := backendtest.CountersSnapshot()
	_, err = b.Sync(ctx, snap)
	require.NoError(t, err)
	one := backend.Count{Packets: 1, Bytes: 100}
	allowChain := listChainName(ir.IPv4, "np:shop/allow-client:ingress")
	f.bump(func(tbl *fakeTable) {
		for _, ch := range tbl.chains {
			for i, r := range ch.rules {
				ch.rules[i] = withCounter(t, r, one)
			}
		}
		ch := tbl.chains[allowChain]
		require.NotNil(t, ch)
		// A log rule (no verdict) with the comment of rule 0, first.
		logRule, err := newRule(join(frag{exprs: []expr.Any{&expr.Log{Key: 1 << unix.NFTA_LOG_GROUP, Group: 3}}, text: "log group 3"}, counter()),
			ch.rules[0].text)
		require.NoError(t, err)
		logRule.udata = ch.rules[0].udata
		// A rule whose comment was cut before its action.
		cut, err := newRule(join(counter(), drop()), "NetworkPolicy/shop/allow-client ingress rule 0")
		require.NoError(t, err)
		ch.rules = append([]*ruleModel{withCounter(t, logRule, backend.Count{Packets: 50, Bytes: 5000})}, ch.rules...)
		ch.rules = append(ch.rules, withCounter(t, cut, backend.Count{Packets: 7, Bytes: 700}))
	})

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
	assert.Equal(t, backend.Count{Packets: 2, Bytes: 200}, r.Count, "the Pass copies in tier chains are not counted")
	assert.Equal(t, "pass-other", r.Name)
	assert.Equal(t, ir.TierAdmin, r.Tier)
	assert.Equal(t, backend.Count{Packets: 7, Bytes: 700}, c.Unattributed)
	// One profile per family for server's ingress, one for client's egress.
	assert.Equal(t, backend.Count{Packets: 2, Bytes: 200}, c.Default(ir.TierNetworkPolicy, ir.Ingress))
	assert.Equal(t, backend.Count{Packets: 2, Bytes: 200}, c.Default(ir.TierNetworkPolicy, ir.Egress))
}

func TestParseRuleComment(t *testing.T) {
	for _, tc := range []struct {
		rl   ir.RuleList
		r    ir.Rule
		pass bool
		ok   bool
	}{
		{ir.RuleList{Origin: ir.Origin{Kind: "NetworkPolicy", Namespace: "a", Name: "b"}, Direction: ir.Ingress}, ir.Rule{Index: 3, Action: ir.Allow}, false, true},
		{ir.RuleList{Origin: ir.Origin{Kind: "AdminNetworkPolicy", Name: "x"}, Direction: ir.Egress}, ir.Rule{Index: 0, Name: `odd "name": deny`, Action: ir.Deny}, false, true},
		{ir.RuleList{Origin: ir.Origin{Kind: "ClusterNetworkPolicy", Name: "x"}, Direction: ir.Egress}, ir.Rule{Index: 12, Name: "p", Action: ir.Pass}, false, true},
		// The re-check of a Pass rule in a tier chain is not a list's rule.
		{ir.RuleList{Origin: ir.Origin{Kind: "ClusterNetworkPolicy", Name: "x"}, Direction: ir.Egress}, ir.Rule{Index: 1, Action: ir.Pass}, true, false},
		// Cut at 128 bytes.
		{ir.RuleList{Origin: ir.Origin{Kind: "NetworkPolicy", Namespace: "a", Name: strings.Repeat("n", 120)}, Direction: ir.Ingress}, ir.Rule{Index: 1, Action: ir.Allow}, false, false},
	} {
		c := commentSafe(ruleComment(&tc.rl, &tc.r, tc.pass))
		ref, ok := parseRuleComment(c)
		if !assert.Equal(t, tc.ok, ok, c) || !ok {
			continue
		}
		assert.Equal(t, tc.rl.Origin, ref.Origin, c)
		assert.Equal(t, tc.rl.Direction, ref.Direction, c)
		assert.Equal(t, tc.r.Index, ref.Index, c)
		assert.Equal(t, tc.r.Action, ref.Action, c)
	}
}

// FuzzParseRuleComment: any comment parses without a panic, and what
// parses renders back to the very comment (nothing is guessed).
func FuzzParseRuleComment(f *testing.F) {
	for _, s := range []string{"NetworkPolicy/a/b ingress rule 3: allow", `AdminNetworkPolicy/x egress rule 0 'odd \'name\': deny': deny`, "X/y egress rule 1: pass, skip the rest of the tier", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		ref, ok := parseRuleComment(c)
		if ok {
			assert.Equal(t, c, commentSafe(ruleComment(ref.List(), ref.Rule(), false)))
		}
		_, _ = listIDOfComment(c)
		_, _ = profileDirection(c)
	})
}

// TestCountersLongNames: a policy whose name cuts its rules' comments is
// attributed by the backend that programmed it (by the rules' content),
// and left unattributed by a fresh one reading the same table.
func TestCountersLongNames(t *testing.T) {
	ctx := context.Background()
	f := &fakeKernel{}
	b := newFakeBackend(f, "palisade")
	b.rc = f // reads go through a connection of their own, as with New
	snap, _ := backendtest.CountersSnapshot()
	long := ir.Origin{Kind: "NetworkPolicy", Namespace: "shop", Name: strings.Repeat("allow-from-the-client-", 6)}
	snap.RuleLists[1].Origin = long
	_, err := b.Sync(ctx, snap)
	require.NoError(t, err)
	f.bump(func(tbl *fakeTable) {
		for _, ch := range tbl.chains {
			for i, r := range ch.rules {
				ch.rules[i] = withCounter(t, r, backend.Count{Packets: 1, Bytes: 100})
			}
		}
	})
	c, err := b.Counters(ctx)
	require.NoError(t, err)
	r, ok := c.Rule(long, ir.Ingress, 0, ir.Allow)
	require.True(t, ok, "%+v", c.Rules)
	assert.Equal(t, backend.Count{Packets: 4, Bytes: 400}, r.Count)
	assert.Equal(t, "np:shop/allow-client:ingress", r.List)
	assert.Equal(t, backend.Count{}, c.Unattributed)

	fresh := newFakeBackend(f, "palisade")
	c, err = fresh.Counters(ctx)
	require.NoError(t, err)
	_, ok = c.Rule(long, ir.Ingress, 0, ir.Allow)
	assert.False(t, ok)
	assert.Equal(t, backend.Count{Packets: 4, Bytes: 400}, c.Unattributed)

	// While a Sync holds the lock, the read does not wait for it.
	b.mu.Lock()
	c, err = b.Counters(ctx)
	b.mu.Unlock()
	require.NoError(t, err)
	assert.Equal(t, backend.Count{Packets: 4, Bytes: 400}, c.Unattributed)
}
