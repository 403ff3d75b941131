package bridgenf_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

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
	for name, newBackend := range newBackends {
		t.Run(name, func(t *testing.T) { testBypass(t, newBackend) })
	}
}

var newBackends = map[string]func(t *testing.T, ns int) backend.Backend{
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

// IPv6 duplicate address detection between bridged pods works through
// both backends while the defending pod is isolated both ways: x/b, on
// the bridge of x/a, adds x/a's address with DAD on; x/a's neighbour
// advertisement (from that address, to all nodes, hop limit 255) crosses
// the node's forward chains through br_netfilter and must get through for
// x/b to see the duplicate.
func TestBridgedDAD(t *testing.T) {
	for name, newBackend := range newBackends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := newLab(t, lab.Config{Topology: lab.Bridge})
			addPod(t, l, "x/a", "10.244.0.10", "fd00::10")
			addPod(t, l, "x/b", "10.244.0.11", "fd00::11")
			node, err := l.NodeNS(0)
			require.NoError(t, err)
			list := irtest.List("np/x/deny", "NetworkPolicy", "x", "deny", ir.Ingress)
			out := irtest.List("np/x/deny/egress", "NetworkPolicy", "x", "deny", ir.Egress)
			snap := &ir.Snapshot{Generation: 1, RuleLists: []ir.RuleList{list, out},
				Endpoints: []ir.Endpoint{irtest.Endpoint("x/a", []string{"10.244.0.10", "fd00::10"},
					irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, list.ID)), irtest.Egress(irtest.Tier(ir.TierNetworkPolicy, out.ID)))}}
			_, err = newBackend(t, int(node)).Sync(ctx, snap)
			require.NoError(t, err)

			ns := podNS(t, l, "x/b")
			require.NoError(t, bridgenf.WriteIn(ns, "/proc/sys/net/ipv6/conf/eth0/accept_dad", "1"))
			require.NoError(t, bridgenf.WriteIn(ns, "/proc/sys/net/ipv6/conf/eth0/dad_transmits", "1"))
			h, err := netlink.NewHandleAt(ns)
			require.NoError(t, err)
			defer h.Close()
			eth, err := h.LinkByName("eth0")
			require.NoError(t, err)
			dup := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("fd00::10"), Mask: net.CIDRMask(128, 128)}}
			require.NoError(t, h.AddrAdd(eth, dup))

			deadline := time.Now().Add(5 * time.Second)
			for {
				as, err := h.AddrList(eth, netlink.FAMILY_V6)
				require.NoError(t, err)
				var flags int
				for _, a := range as {
					if a.IP.Equal(dup.IP) {
						flags = a.Flags
					}
				}
				if flags&unix.IFA_F_DADFAILED != 0 {
					return // the duplicate was detected
				}
				if flags&unix.IFA_F_TENTATIVE == 0 || time.Now().After(deadline) {
					t.Fatalf("fd00::10 on x/b: flags %#x, want DAD failed: x/a's advertisement did not get through", flags)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// podNS returns the network namespace of a lab pod, found from a socket
// opened in it (SIOCGSKNS), closed when the test ends.
func podNS(t *testing.T, l *lab.Lab, pod string) netns.NsHandle {
	t.Helper()
	fds, err := l.Sockets(pod, 1, unix.AF_INET, unix.SOCK_DGRAM, 0)
	require.NoError(t, err)
	defer unix.Close(fds[0])
	fd, err := unix.IoctlRetInt(fds[0], unix.SIOCGSKNS)
	require.NoError(t, err)
	ns := netns.NsHandle(fd)
	t.Cleanup(func() { ns.Close() })
	return ns
}
