package nftables

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkCounters reads the rule counters (Counters: the chains, their
// rules in one dump or one dump per chain, and the mapping) of 10k
// endpoints with 1k and 10k policies (2 rule lists each), beside a no-op
// resync of the same table as the baseline.
func BenchmarkCounters(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1000, 10000} {
		be := benchBackend(b)
		snap := synth{pods: 10000, policies: n}.snapshot()
		_, err := be.Sync(ctx, snap)
		require.NoError(b, err)
		for _, perChain := range []bool{false, true} {
			b.Run(fmt.Sprintf("policies=%d/read/per-chain=%v", n, perChain), func(b *testing.B) {
				defer func(v int) { perChainDumpFrom = v }(perChainDumpFrom)
				perChainDumpFrom = 1 << 30
				if perChain {
					perChainDumpFrom = 0
				}
				for b.Loop() {
					c, err := be.Counters(ctx)
					require.NoError(b, err)
					require.Len(b, c.Rules, 4*n+3)
				}
			})
		}
		b.Run(fmt.Sprintf("policies=%d/noop-resync", n), func(b *testing.B) {
			for b.Loop() {
				_, err := be.Sync(ctx, snap)
				require.NoError(b, err)
			}
		})
		require.NoError(b, be.Cleanup(ctx))
	}
}
