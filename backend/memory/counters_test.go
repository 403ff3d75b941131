package memory_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
)

// TestCounters counts Evaluate's decisions per rule and isolated default,
// keeps them across a change that leaves a list as it was, and drops a
// removed list's.
func TestCounters(t *testing.T) {
	ctx := context.Background()
	b := memory.New(memory.Config{})
	snap, ips := backendtest.CountersSnapshot()
	_, err := b.Sync(ctx, snap)
	require.NoError(t, err)
	c, err := b.Counters(ctx)
	require.NoError(t, err)
	require.Len(t, c.Rules, 4, "every rule, at zero")
	assert.Empty(t, c.Defaults)

	flow := func(src, dst string, f int, proto ir.Protocol, port uint16) memory.Flow {
		return memory.Flow{Src: ips[src][f], Dst: ips[dst][f], Protocol: proto, Port: port}
	}
	eval := func(n int, fl memory.Flow) {
		for range n {
			b.Evaluate(fl)
		}
	}
	eval(3, flow("shop/client", "shop/server", 0, ir.UDP, 5353)) // allowed both ends
	eval(2, flow("shop/client", "shop/server", 1, ir.UDP, 9999)) // egress allowed, ingress denied by guard
	eval(4, flow("shop/other", "shop/server", 0, ir.TCP, 80))    // isolated ingress
	eval(1, flow("shop/client", "shop/other", 1, ir.UDP, 7000))  // isolated egress
	b.Explain(flow("shop/client", "shop/server", 0, ir.UDP, 5353))

	c, err = b.Counters(ctx)
	require.NoError(t, err)
	count := func(o ir.Origin, dir ir.Direction, idx int, a ir.Action) uint64 {
		r, ok := c.Rule(o, dir, idx, a)
		require.True(t, ok, "%s %s rule %d %s", o, dir, idx, a)
		return r.Packets
	}
	assert.Equal(t, uint64(3), count(backendtest.CountersAllowOrigin, ir.Ingress, 0, ir.Allow))
	assert.Equal(t, uint64(5), count(backendtest.CountersEgressOrigin, ir.Egress, 0, ir.Allow))
	assert.Equal(t, uint64(2), count(backendtest.CountersAdminOrigin, ir.Ingress, 0, ir.Deny))
	assert.Equal(t, uint64(0), count(backendtest.CountersAdminOrigin, ir.Ingress, 1, ir.Pass), "a Pass decides nothing")
	assert.Equal(t, backend.Count{Packets: 4}, c.Default(ir.TierNetworkPolicy, ir.Ingress))
	assert.Equal(t, backend.Count{Packets: 1}, c.Default(ir.TierNetworkPolicy, ir.Egress))
	r, _ := c.Rule(backendtest.CountersAdminOrigin, ir.Ingress, 0, ir.Deny)
	assert.Equal(t, ir.TierAdmin, r.Tier)
	assert.Equal(t, "anp:guard:ingress", r.List)

	// Remove the admin list and change the egress list: allow-client's
	// counter stays, the changed list starts again, the removed one goes.
	next := snap.Clone()
	next.Generation = 2
	next.RuleLists = next.RuleLists[1:]
	next.RuleLists[1].Rules[0].Ports = next.RuleLists[1].Rules[0].Ports[:1]
	next.Endpoints[2].Ingress = next.Endpoints[2].Ingress[1:]
	_, err = b.Sync(ctx, next)
	require.NoError(t, err)
	c, err = b.Counters(ctx)
	require.NoError(t, err)
	assert.Len(t, c.Rules, 2)
	assert.Equal(t, uint64(3), count(backendtest.CountersAllowOrigin, ir.Ingress, 0, ir.Allow))
	assert.Equal(t, uint64(0), count(backendtest.CountersEgressOrigin, ir.Egress, 0, ir.Allow))

	require.NoError(t, b.Cleanup(ctx))
	c, err = b.Counters(ctx)
	require.NoError(t, err)
	assert.Empty(t, c.Rules)
	assert.Empty(t, c.Defaults)
}
