package iptables

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkCounters reads the rule counters (Counters: iptables-save -c
// and ip6tables-save -c, and the mapping) of 10k endpoints with 1k and 10k
// policies, beside a no-op Sync of the same chains as the baseline.
func BenchmarkCounters(b *testing.B) {
	ctx := context.Background()
	for _, mode := range modes {
		for _, n := range []int{1000, 10000} {
			be, _ := newTestBackend(b, mode)
			snap := synthSnapshot(10000, n)
			_, err := be.Sync(ctx, snap)
			require.NoError(b, err)
			b.Run(fmt.Sprintf("%s/policies=%d/read", mode, n), func(b *testing.B) {
				for b.Loop() {
					c, err := be.Counters(ctx)
					require.NoError(b, err)
					require.NotEmpty(b, c.Rules)
				}
			})
			b.Run(fmt.Sprintf("%s/policies=%d/noop-sync", mode, n), func(b *testing.B) {
				for b.Loop() {
					_, err := be.Sync(ctx, snap)
					require.NoError(b, err)
				}
			})
			require.NoError(b, be.Cleanup(ctx))
		}
	}
}
