package iptables_test

import (
	"context"
	"testing"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/iptables"
)

// TestSourceValidation sends forged UDP from pods in a lab, routed and
// bridged (through br_netfilter), with both iptables variants, and checks
// that the guard chain drops and counts it while the pods' own addresses
// keep working.
func TestSourceValidation(t *testing.T) {
	for _, mode := range []iptables.Mode{iptables.ModeNFT, iptables.ModeLegacy} {
		t.Run(string(mode), func(t *testing.T) {
			backendtest.RunSourceValidation(t, factory(mode), func(ctx context.Context, b backend.Backend) (uint64, error) {
				return b.(*iptables.Backend).ForgedDrops(ctx)
			})
		})
	}
}
