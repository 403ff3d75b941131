package nftables_test

import (
	"fmt"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/nftables"
)

// TestConformance runs the backend conformance suite against the nftables
// backend: every scenario through real kernels in a lab of network
// namespaces, on one and two nodes, IPv4 and dual-stack.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error) {
		return nftables.New(nftables.Config{TableName: fmt.Sprintf("palisade-conf-%d", node), NetNS: int(ns)})
	}, backendtest.Config{})
}
