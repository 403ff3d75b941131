package iptables_test

import (
	"os"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/policytest"
)

// factory programs each lab node's namespace with the given iptables
// variant; the namespace handle is duplicated by New and released when the
// test ends (after the suite's Cleanup).
func factory(mode iptables.Mode) backendtest.Factory {
	return func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error) {
		b, err := iptables.New(iptables.Config{NetNS: int(ns), Mode: mode})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { b.Close() })
		return b, nil
	}
}

// TestConformance runs the backend conformance suite against the iptables
// backend (iptables-nft): every scenario through real kernels in a lab of
// network namespaces, on one and two nodes, IPv4 and dual-stack, routed and
// bridged pods.
func TestConformance(t *testing.T) {
	t.Parallel() // the labs mostly wait for probes: run the suites side by side
	backendtest.Run(t, factory(iptables.ModeNFT), backendtest.Config{})
}

// TestConformanceLegacy runs the same suite with iptables-legacy, on two
// nodes, dual-stack. It adds a minute to the package (go test runs only
// GOMAXPROCS labs at once), so it runs when PALISADE_IPTABLES_LEGACY=1;
// the kernel tests and TestPacketTiers cover legacy mode in every run.
func TestConformanceLegacy(t *testing.T) {
	if os.Getenv("PALISADE_IPTABLES_LEGACY") != "1" {
		t.Skip("set PALISADE_IPTABLES_LEGACY=1 to run the conformance suite with iptables-legacy")
	}
	t.Parallel()
	backendtest.Run(t, factory(iptables.ModeLegacy), backendtest.Config{
		Nodes:       []int{2},
		FamilyModes: [][]policytest.Family{{policytest.IPv4, policytest.IPv6}},
	})
}

// TestRandomClusters plays random clusters and changes through the iptables
// backend in the lab and compares every flow with the memory backend.
func TestRandomClusters(t *testing.T) {
	t.Parallel()
	for _, c := range backendtest.RandomConfigs() {
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			backendtest.RunRandom(t, factory(iptables.ModeAuto), c)
		})
	}
}

// TestRandomClustersLogging is TestRandomClusters with the verdict log on
// for every new connection: logging rules never change a verdict.
func TestRandomClustersLogging(t *testing.T) {
	factory := func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error) {
		b, err := iptables.New(iptables.Config{NetNS: int(ns), Log: verdictlog.Logging{Enabled: true, Group: 13, Allowed: true}})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { b.Close() })
		return b, nil
	}
	backendtest.RunRandom(t, factory, backendtest.RandomConfig{Seeds: backendtest.SeedRange(201, 6), Nodes: 2, DualStack: true})
}
