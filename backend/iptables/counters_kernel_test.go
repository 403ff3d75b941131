package iptables_test

import (
	"testing"

	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/iptables"
)

// TestCounters checks Counters against known traffic in a lab, both
// families and both iptables variants (backendtest.RunCounters).
func TestCounters(t *testing.T) {
	t.Parallel()
	for _, mode := range []iptables.Mode{iptables.ModeNFT, iptables.ModeLegacy} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			backendtest.RunCounters(t, factory(mode))
		})
	}
}
