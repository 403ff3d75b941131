package lab

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// neighMAC returns the MAC address ep's namespace has resolved for ip on
// eth0, nil when it holds no usable entry.
func neighMAC(t *testing.T, ep *endpoint, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	require.NoError(t, ep.withNetlink(func(h *netlink.Handle, eth int) error {
		f := netlink.FAMILY_V4
		if ip.Is6() {
			f = netlink.FAMILY_V6
		}
		ns, err := h.NeighList(eth, f)
		for _, n := range ns {
			if n.IP.Equal(ip.AsSlice()) && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
				mac = n.HardwareAddr
			}
		}
		return err
	}))
	return mac
}

func podMAC(t *testing.T, ep *endpoint) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	require.NoError(t, ep.withNetlink(func(h *netlink.Handle, eth int) error {
		l, err := h.LinkByIndex(eth)
		if err == nil {
			mac = l.Attrs().HardwareAddr
		}
		return err
	}))
	return mac
}

// In the Bridge topology a pod's node-side veth is a port of the node's
// bridge, the node routes the pod's addresses on the bridge, and pods of
// one node talk at layer 2: each resolves the other's own MAC address (ARP,
// IPv6 neighbour discovery), not the gateway's.
func TestBridgeWiring(t *testing.T) {
	l := newLab(t, Config{Nodes: 2, Topology: Bridge})
	assert.Equal(t, Bridge, l.Topology())
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/b", 0, "10.244.0.11", "fd00::11")
	addPod(t, l, "x/c", 1, "10.244.1.10", "fd00::1:10")
	require.NoError(t, l.AddExternal(context.Background(), extV4))

	h := l.nodes[0].nl
	br, err := h.LinkByName(BridgeName)
	require.NoError(t, err)
	for _, pod := range []string{"x/a", "x/b"} {
		port, err := h.LinkByName(l.HostLink(pod))
		require.NoError(t, err, pod)
		assert.Equal(t, br.Attrs().Index, port.Attrs().MasterIndex, "%s's veth is a port of %s", pod, BridgeName)
	}
	rs, err := h.RouteGet(ip("10.244.0.10").AsSlice())
	require.NoError(t, err)
	assert.Equal(t, br.Attrs().Index, rs[0].LinkIndex, "the node routes pods on the bridge")
	ext, err := h.LinkByName(l.HostLink(extV4.String()))
	require.NoError(t, err)
	assert.Zero(t, ext.Attrs().MasterIndex, "external hosts stay routed")
	assert.Empty(t, l.HostLink("x/nope"))
	assert.Empty(t, l.HostLink("node:0"))

	var ps []Probe
	for _, dst := range []string{"10.244.0.11", "fd00::11", "10.244.1.10", "fd00::1:10", extV4.String()} {
		ps = append(ps, probes("x/a", ip(dst), 80)...)
	}
	ps = append(ps, probes("x/c", ip("fd00::11"), 80)...)
	ps = append(ps, probes(extV4.String(), ip("10.244.0.11"), 80)...)
	ps = append(ps, probes("node:1", ip("10.244.0.11"), 80)...)
	assertVerdicts(t, l.Probe(context.Background(), ps), all)

	a, b := l.byName["x/a"], l.byName["x/b"]
	for _, dst := range []string{"10.244.0.11", "fd00::11"} {
		assert.Equal(t, podMAC(t, b), neighMAC(t, a, ip(dst)), "x/a reached %s at layer 2", dst)
	}
	assert.Equal(t, l.nodes[0].brMAC, neighMAC(t, a, gatewayV4), "the gateway is the bridge")
}

// A pod removed from a bridge leaves no route or neighbour entry behind in
// the other pods: its addresses can come back on another node.
func TestBridgeRemoveAndMove(t *testing.T) {
	l := newLab(t, Config{Nodes: 2, Topology: Bridge})
	ctx := context.Background()
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	a := l.byName["x/a"].ns
	routes, nodeRoutes := routeCount(t, a), routeCount(t, nodeNS(t, l, 0))
	addPod(t, l, "x/b", 0, "10.244.0.11", "fd00::11")
	assertVerdicts(t, l.Probe(ctx, append(probes("x/a", ip("10.244.0.11"), 80), probes("x/a", ip("fd00::11"), 80)...)), all)
	assert.Equal(t, routes+2, routeCount(t, a), "one on-link route per address of x/b")

	require.NoError(t, l.RemovePod("x/b"))
	assert.Equal(t, routes, routeCount(t, a))
	assert.Equal(t, nodeRoutes, routeCount(t, nodeNS(t, l, 0)))
	assert.Nil(t, neighMAC(t, l.byName["x/a"], ip("10.244.0.11")))

	addPod(t, l, "x/b", 1, "10.244.0.11", "fd00::11")
	assertConnects(ctx, t, l, append(probes("x/a", ip("10.244.0.11"), 80), probes("x/b", ip("fd00::10"), 80)...))
}

// Bridged traffic between two pods of a node meets the node's forward hook
// only through br_netfilter: with it off, a forward-chain drop no longer
// applies to it (while routed traffic across nodes is still dropped).
func TestBridgeNetfilterOff(t *testing.T) {
	l := newLab(t, Config{Nodes: 2, Topology: Bridge})
	ctx := context.Background()
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/b", 0, "10.244.0.11", "fd00::11")
	addPod(t, l, "x/c", 1, "10.244.1.10", "fd00::1:10")
	f := newTestFilter(t, nodeNS(t, l, 0))
	f.dropPort(t, unix.IPPROTO_TCP, 81)
	f.dropPort(t, unix.IPPROTO_UDP, 81)
	f.dropPort(t, unix.IPPROTO_SCTP, 81)
	bridged := append(probes("x/a", ip("10.244.0.11"), 81), probes("x/a", ip("fd00::11"), 81)...)
	routed := append(probes("x/a", ip("10.244.1.10"), 81), probes("x/a", ip("fd00::1:10"), 81)...)
	none := func(Probe) bool { return false }

	assertVerdicts(t, l.Probe(ctx, append(bridged, routed...)), none)

	require.NoError(t, l.SetBridgeNetfilter(0, false))
	require.NoError(t, l.ForgetConnections())
	assertVerdicts(t, l.Probe(ctx, bridged), all)
	assertVerdicts(t, l.Probe(ctx, routed), none)

	require.NoError(t, l.SetBridgeNetfilter(0, true))
	require.NoError(t, l.ForgetConnections())
	assertVerdicts(t, l.Probe(ctx, append(bridged, routed...)), none)

	assert.ErrorIs(t, l.SetBridgeNetfilter(2, true), ErrNotFound)
	require.NoError(t, l.Close())
	assert.ErrorIs(t, l.SetBridgeNetfilter(0, true), ErrClosed)
}

func TestTopologyConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Topology
		ok   bool
	}{{"", Routed, true}, {"routed", Routed, true}, {"bridge", Bridge, true}, {"Bridge", "", false}, {"vxlan", "", false}} {
		got, err := ParseTopology(tc.in)
		if !tc.ok {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
	_, err := New(context.Background(), Config{Topology: "vxlan"})
	assert.ErrorContains(t, err, "Config.Topology")
}
