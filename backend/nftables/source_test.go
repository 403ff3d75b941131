package nftables_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/nftables"
)

// TestSourceValidation sends forged UDP from pods in a lab, routed and
// bridged, and checks that the guard chains drop it and count it, while
// the pods' own addresses keep working.
func TestSourceValidation(t *testing.T) {
	backendtest.RunSourceValidation(t, func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error) {
		return nftables.New(nftables.Config{TableName: fmt.Sprintf("palisade-src-%d", node), NetNS: int(ns)})
	}, func(ctx context.Context, b backend.Backend) (uint64, error) {
		return b.(*nftables.Backend).ForgedDrops(ctx)
	})
}
