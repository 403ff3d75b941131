package nftables_test

import (
	"testing"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/nftables"
)

// TestCounters checks Counters against known traffic in a lab, both
// families (backendtest.RunCounters).
func TestCounters(t *testing.T) {
	backendtest.RunCounters(t, func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error) {
		return nftables.New(nftables.Config{TableName: "palisade-counters", NetNS: int(ns)})
	})
}
