package verdictlog_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
	. "github.com/palisade-net/palisade/policy/ir/irtest"
)

func TestCatalog(t *testing.T) {
	snap := logSnapshot()
	// A ClusterNetworkPolicy in the Baseline tier: the tier comes from the
	// endpoints, not the kind.
	snap.RuleLists = append(snap.RuleLists, List("cnp-base", "ClusterNetworkPolicy", "", "floor", ir.Ingress, Rule(0, ir.Deny, AllPeers, AllPorts)))
	snap.Endpoints[1].Ingress = append(snap.Endpoints[1].Ingress, Tier(ir.TierBaseline, "cnp-base"))
	remote := map[netip.Addr]string{Addr("10.1.0.9"): "other/pod"}
	cat := verdictlog.NewCatalog(func(a netip.Addr) (string, bool) { n, ok := remote[a]; return n, ok })
	mem := memory.New(memory.Config{})
	be := verdictlog.Track(mem, cat)
	_, err := be.Sync(context.Background(), snap)
	require.NoError(t, err)
	got, ok := backend.As[*memory.Backend](be)
	assert.True(t, ok)
	assert.Same(t, mem, got, "Track unwraps to the backend")

	ref := func(allow bool, list string, idx int) verdictlog.Ref {
		r, err := verdictlog.ParsePrefix(verdictlog.RulePrefix(allow, ir.Ingress, list, idx))
		require.NoError(t, err)
		return r
	}
	for _, tc := range []struct {
		ref                verdictlog.Ref
		tier, policy, rule string
		ok                 bool
	}{
		{ref(false, "anp-in", 3), "Admin", "AdminNetworkPolicy/guard", "deny-c", true},
		{ref(true, "np-in", 0), "NetworkPolicy", "NetworkPolicy/ns/web", "0", true},
		{ref(false, "cnp-base", 0), "Baseline", "ClusterNetworkPolicy/floor", "0", true},
		{verdictlog.Ref{Direction: ir.Egress, Rule: -1}, "NetworkPolicy", "", "isolated", true},
		{ref(false, "np-in", 7), "", "", "", false},   // no such rule
		{ref(false, "missing", 0), "", "", "", false}, // no such list
	} {
		tier, policy, rule, ok := cat.Decision(tc.ref)
		assert.Equal(t, tc.ok, ok, "%+v", tc.ref)
		assert.Equal(t, []string{tc.tier, tc.policy, tc.rule}, []string{tier, policy, rule}, "%+v", tc.ref)
	}
	for addr, want := range map[string]string{"10.0.0.2": "ns/b", "fd00::3": "ns/c", "::ffff:10.0.0.1": "ns/a", "10.1.0.9": "other/pod", "10.9.9.9": ""} {
		name, ok := cat.Name(Addr(addr))
		assert.Equal(t, want != "", ok, addr)
		assert.Equal(t, want, name, addr)
	}

	// A delta removes a list and an endpoint; the catalog follows.
	d := &ir.Delta{Base: snap.Generation, Generation: snap.Generation + 1,
		Endpoints:        []ir.Endpoint{Endpoint("ns/b", []string{"10.0.0.2", "fd00::2"}, Ingress(Tier(ir.TierNetworkPolicy, "np-in")))},
		RemovedEndpoints: []string{"ns/c"}, RemovedRuleLists: []string{"anp-in", "cnp-base"}}
	require.NoError(t, be.Apply(context.Background(), d))
	_, _, _, ok = cat.Decision(ref(false, "anp-in", 3))
	assert.False(t, ok)
	_, ok = cat.Name(Addr("10.0.0.3"))
	assert.False(t, ok)
	_, _, _, ok = cat.Decision(ref(true, "np-in", 0))
	assert.True(t, ok)

	cat.Sync(nil)
	_, _, _, ok = cat.Decision(ref(true, "np-in", 0))
	assert.False(t, ok, "Sync(nil) empties the catalog")
}
