package iptables

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/policy/ir"
)

// guardedSnapshot is testSnapshot with an interface for every endpoint.
func guardedSnapshot(gen uint64) *ir.Snapshot {
	s := testSnapshot()
	s.Generation = gen
	for i := range s.Endpoints {
		s.Endpoints[i].Interface = fmt.Sprintf("veth%d", i)
	}
	return s
}

// The guard chains, sets and raw hook read back as programmed (both
// variants), drift in them is seen and repaired, an Apply that removes the
// last interface removes them, and Cleanup leaves nothing in the raw
// table.
func TestGuardKernel(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		ctx := context.Background()
		b, ns := newTestBackend(t, mode)
		snap := guardedSnapshot(1)
		mustSync(t, b, snap)
		requireInSync(t, b, snap)
		drift, err := b.Drift(ctx)
		require.NoError(t, err)
		assert.Empty(t, drift)
		raw := sh(t, ns, b.bins.save[1], "-t", "raw")
		assert.Contains(t, raw, "-A PREROUTING -m comment --comment \"palisade: source validation of local endpoints\" -j PALISADE-GUARD")
		assert.Contains(t, raw, "-A PALISADE-GUARDBR -s fe80::/10")
		assert.Contains(t, sh(t, ns, "ipset", "save"), "add pal-gi4 0.0.0.0/1,veth0")

		// Someone flushes the raw table's PREROUTING: the check sees it,
		// Sync puts the jump back.
		sh(t, ns, "iptables-"+string(mode), "-t", "raw", "-F", "PREROUTING")
		changed, err := b.Changed(ctx)
		require.NoError(t, err)
		assert.True(t, changed)
		drift, err = b.Drift(ctx)
		require.NoError(t, err)
		assert.Contains(t, strings.Join(drift, "\n"), "IPv4 chain raw/PREROUTING: the rule entering PALISADE is missing")
		_, repairs := mustSync(t, b, snap)
		assert.NotEmpty(t, repairs)
		requireInSync(t, b, snap)

		// The last interface goes in an Apply: so do the raw chains, the
		// hook and the sets.
		d := &ir.Delta{Base: 1, Generation: 2}
		for _, ep := range snap.Endpoints {
			ep = ep.Clone()
			ep.Interface = ""
			d.Endpoints = append(d.Endpoints, ep)
		}
		require.NoError(t, b.Apply(ctx, d))
		plain := testSnapshot()
		plain.Generation = 2
		requireInSync(t, b, plain)
		assert.NotContains(t, sh(t, ns, b.bins.save[0], "-t", "raw"), "PALISADE")
		assert.NotContains(t, sh(t, ns, "ipset", "list", "-n"), "pal-g")

		// And back, in an Apply too.
		d = &ir.Delta{Base: 2, Generation: 3, Endpoints: guardedSnapshot(3).Endpoints}
		require.NoError(t, b.Apply(ctx, d))
		requireInSync(t, b, guardedSnapshot(3))

		require.NoError(t, b.Cleanup(ctx))
		for f := range 2 {
			assert.NotContains(t, sh(t, ns, b.bins.save[f], "-t", "raw"), "PALISADE")
		}
	})
}
