package nftables_test

import (
	"fmt"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/backend/verdictlog"
)

// TestConformance runs the backend conformance suite against the nftables
// backend: every scenario through real kernels in a lab of network
// namespaces, on one and two nodes, IPv4 and dual-stack, routed and bridged
// pods.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error) {
		return nftables.New(nftables.Config{TableName: fmt.Sprintf("palisade-conf-%d", node), NetNS: int(ns)})
	}, backendtest.Config{})
}

// TestRandomClusters plays random clusters and changes through the nftables
// backend in the lab and compares every flow with the memory backend.
func TestRandomClusters(t *testing.T) {
	factory := func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error) {
		return nftables.New(nftables.Config{TableName: fmt.Sprintf("palisade-rand-%d", node), NetNS: int(ns)})
	}
	for _, c := range backendtest.RandomConfigs() {
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			backendtest.RunRandom(t, factory, c)
		})
	}
}

// TestRandomClustersLogging is TestRandomClusters with the verdict log on
// for every new connection: logging rules never change a verdict.
func TestRandomClustersLogging(t *testing.T) {
	factory := func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error) {
		return nftables.New(nftables.Config{TableName: fmt.Sprintf("palisade-rlog-%d", node), NetNS: int(ns),
			Log: verdictlog.Logging{Enabled: true, Group: 13, Allowed: true}})
	}
	backendtest.RunRandom(t, factory, backendtest.RandomConfig{Seeds: backendtest.SeedRange(201, 6), Nodes: 2, DualStack: true})
}
