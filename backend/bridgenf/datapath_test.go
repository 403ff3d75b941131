package bridgenf_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/bridgenf"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// What the datapath does with br_netfilter off, through each kernel
// backend: x/b isolated for ingress (a NetworkPolicy tier with no rule)
// denies x/a → x/b, TCP, UDP and SCTP, IPv4 and IPv6, on a bridged node
// while br_netfilter is on; with it off the same connections all get
// through (no IP hook sees bridged traffic) and Check reports it; on again,
// they are denied again. x/c, routed across to node 1, stays denied
// throughout.
func TestBridgeNetfilterOffBypassesBackends(t *testing.T) {
	newBackends := map[string]func(t *testing.T, ns int) backend.Backend{
		"nftables": func(t *testing.T, ns int) backend.Backend {
			b, err := nftables.New(nftables.Config{NetNS: ns})
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
		"iptables": func(t *testing.T, ns int) backend.Backend {
			b, err := iptables.New(iptables.Config{NetNS: ns})
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
	}
	for name, newBackend := range newBackends {
		t.Run(name, func(t *testing.T) { testBypass(t, newBackend) })
	}
}

func testBypass(t *testing.T, newBackend func(t *testing.T, ns int) backend.Backend) {
	ctx := context.Background()
	l := newLab(t, lab.Config{Nodes: 2, Topology: lab.Bridge})
	pods := map[string][2]string{
		"x/a": {"10.244.0.10", "fd00::10"},
		"x/b": {"10.244.0.11", "fd00::11"},
		"x/c": {"10.244.1.12", "fd00::1:12"},
	}
	for name, ips := range pods {
		node := 0
		if name == "x/c" {
			node = 1
		}
		require.NoError(t, l.AddPod(ctx, lab.PodSpec{Name: name, Node: node,
			IPs: []netip.Addr{netip.MustParseAddr(ips[0]), netip.MustParseAddr(ips[1])}}))
	}
	isolated := func(id string, ips [2]string) ir.Endpoint {
		return irtest.Endpoint(id, ips[:], irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np/x/deny/ingress")))
	}
	snap := &ir.Snapshot{
		Generation: 1,
		RuleLists:  []ir.RuleList{irtest.List("np/x/deny/ingress", "NetworkPolicy", "x", "deny", ir.Ingress)},
	}
	ns := make([]int, 2)
	for i := range 2 {
		h, err := l.NodeNS(i)
		require.NoError(t, err)
		ns[i] = int(h)
		s := *snap
		if i == 0 {
			s.Endpoints = []ir.Endpoint{isolated("x/b", pods["x/b"])}
		} else {
			s.Endpoints = []ir.Endpoint{isolated("x/c", pods["x/c"])}
		}
		_, err = newBackend(t, ns[i]).Sync(ctx, &s)
		require.NoError(t, err)
	}

	var bridged, routed []lab.Probe
	for _, proto := range []lab.Protocol{lab.TCP, lab.UDP, lab.SCTP} {
		for f := range 2 {
			bridged = append(bridged, lab.Probe{Src: "x/a", Dst: netip.MustParseAddr(pods["x/b"][f]), Port: 80, Protocol: proto})
			routed = append(routed, lab.Probe{Src: "x/a", Dst: netip.MustParseAddr(pods["x/c"][f]), Port: 80, Protocol: proto})
		}
	}
	connected := func(ps []lab.Probe) (n int) {
		for _, r := range l.Probe(ctx, ps) {
			require.NoError(t, r.Err)
			if r.Connected {
				n++
			}
		}
		return n
	}
	status := func() bridgenf.Status {
		st, err := bridgenf.Check(bridgenf.Config{NetNS: ns[0]})
		require.NoError(t, err)
		return st
	}

	assert.Zero(t, connected(bridged), "br_netfilter on: the policy holds between bridged pods")
	assert.Zero(t, connected(routed))
	assert.True(t, status().OK())

	require.NoError(t, l.SetBridgeNetfilter(0, false))
	require.NoError(t, l.ForgetConnections())
	assert.Equal(t, len(bridged), connected(bridged), "br_netfilter off: every bridged connection bypasses the policy")
	assert.Zero(t, connected(routed), "routed traffic is still filtered")
	assert.False(t, status().OK(), "and the check says so")

	require.NoError(t, l.SetBridgeNetfilter(0, true))
	require.NoError(t, l.ForgetConnections())
	assert.Zero(t, connected(bridged))
	assert.True(t, status().OK())
}
