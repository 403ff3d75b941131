package nftables

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// TestPacketVerdicts sends real TCP and UDP traffic between pod namespaces
// routed through a node namespace that holds the table, and compares each
// verdict with the IR semantics (worked out by hand in the table below).
func TestPacketVerdicts(t *testing.T) {
	node := newNetNS(t)
	inNS(t, node, func() {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			t.Errorf("enable forwarding: %v", err)
		}
	})
	pods := map[string]*testPod{}
	for i, p := range []struct{ name, ip string }{
		{"web", "10.0.0.2"}, {"free", "10.0.0.3"}, {"db", "10.0.0.10"}, {"mon", "10.0.0.20"},
	} {
		pods[p.name] = newTestPod(t, node, p.name, irtest.Addr(p.ip), i)
	}

	snap := testSnapshot()
	// db's NetworkPolicy also admits frontend on 5433 and 5434 (the Admin
	// tier denies 5433 unless a Pass comes first); web's egress is isolated
	// with an allow-all list.
	db := &snap.RuleLists[4]
	db.Rules[0].Ports = append(db.Rules[0].Ports, irtest.Port(ir.TCP, 5433, 5433))
	snap.RuleLists = append(snap.RuleLists, irtest.List("np/default/web/egress", "NetworkPolicy", "default", "web", ir.Egress, irtest.Rule(0, ir.Allow)))
	snap.Endpoints[2].Egress = []ir.Tier{irtest.Tier(ir.TierNetworkPolicy, "np/default/web/egress")}
	snap.Sort()

	b, err := New(Config{NetNS: int(node), TableName: "palisade-test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	mustSync(t, b, snap)

	const allow, deny = true, false
	flows := []struct {
		src, dst string // pod name or "node"
		proto    string
		port     int
		want     bool
		why      string
	}{
		{"web", "db", "tcp", 5432, allow, "admin Pass (frontend) skips the admin Deny; NetworkPolicy rule 0"},
		{"web", "db", "tcp", 5433, allow, "Pass comes before the admin Deny of 5433"},
		{"free", "db", "tcp", 5433, allow, "unrestricted source in frontend: same as web"},
		{"mon", "db", "tcp", 5433, deny, "admin Deny 5433 (mon is not frontend)"},
		{"mon", "db", "tcp", 9090, allow, "admin Allow monitoring 9090, NetworkPolicy not consulted"},
		{"mon", "db", "tcp", 8080, allow, "named port http resolves to db:8080"},
		{"mon", "db", "tcp", 8081, deny, "isolated, nothing matches"},
		{"web", "db", "tcp", 6005, allow, "port range 6000-6010"},
		{"web", "db", "tcp", 6011, deny, "outside the range"},
		{"web", "db", "udp", 9999, allow, "UDP, every port, from frontend"},
		{"mon", "db", "udp", 9999, deny, "mon is not a UDP peer"},
		{"db", "mon", "udp", 53, allow, "db egress allows UDP 53 to all"},
		{"db", "web", "tcp", 80, deny, "db egress denies, whatever web's ingress says"},
		{"web", "db", "tcp", 5434, deny, "web egress allows, db ingress denies: both checks are independent"},
		{"web", "free", "tcp", 80, allow, "unrestricted destination"},
		{"node", "db", "tcp", 8081, allow, "node to pod is always allowed"},
		{"db", "node", "tcp", 10250, deny, "pod to its node: db's egress check"},
		{"mon", "node", "tcp", 10250, allow, "mon has no policy"},
	}
	for _, f := range flows {
		t.Run(fmt.Sprintf("%s-%s-%s-%d", f.src, f.dst, f.proto, f.port), func(t *testing.T) {
			srcNS, dstNS, dstIP := node, node, gatewayIP
			if p := pods[f.src]; p != nil {
				srcNS = p.ns
			}
			if p := pods[f.dst]; p != nil {
				dstNS, dstIP = p.ns, p.ip
			}
			got := probe(t, srcNS, dstNS, f.proto, netip.AddrPortFrom(dstIP, uint16(f.port)), f.want)
			assert.Equal(t, f.want, got, f.why)
		})
	}
}

var gatewayIP = irtest.Addr("169.254.1.1")

type testPod struct {
	ns netns.NsHandle
	ip netip.Addr
}

// newTestPod makes a routed veth pod: IP/32 on eth0, a link route to the
// node's 169.254.1.1 and a default route through it; the node side holds
// 169.254.1.1/32 and a /32 route to the pod.
func newTestPod(t *testing.T, node netns.NsHandle, name string, ip netip.Addr, i int) *testPod {
	t.Helper()
	podNS := newNetNS(t)
	nh, err := vnl.NewHandleAt(node)
	require.NoError(t, err)
	defer nh.Close()
	ph, err := vnl.NewHandleAt(podNS)
	require.NoError(t, err)
	defer ph.Close()

	hostSide := "veth" + strconv.Itoa(i)
	require.NoError(t, nh.LinkAdd(&vnl.Veth{LinkAttrs: vnl.LinkAttrs{Name: hostSide}, PeerName: "eth0", PeerNamespace: vnl.NsFd(int(podNS))}))
	host, err := nh.LinkByName(hostSide)
	require.NoError(t, err)
	require.NoError(t, nh.AddrAdd(host, &vnl.Addr{IPNet: ipNet(gatewayIP, 32)}))
	require.NoError(t, nh.LinkSetUp(host))
	require.NoError(t, nh.RouteAdd(&vnl.Route{LinkIndex: host.Attrs().Index, Dst: ipNet(ip, 32), Scope: vnl.SCOPE_LINK}))
	if lo, err := nh.LinkByName("lo"); err == nil {
		require.NoError(t, nh.LinkSetUp(lo))
	}

	eth0, err := ph.LinkByName("eth0")
	require.NoError(t, err)
	lo, err := ph.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, ph.LinkSetUp(lo))
	require.NoError(t, ph.AddrAdd(eth0, &vnl.Addr{IPNet: ipNet(ip, 32)}))
	require.NoError(t, ph.LinkSetUp(eth0))
	require.NoError(t, ph.RouteAdd(&vnl.Route{LinkIndex: eth0.Attrs().Index, Dst: ipNet(gatewayIP, 32), Scope: vnl.SCOPE_LINK}))
	require.NoError(t, ph.RouteAdd(&vnl.Route{LinkIndex: eth0.Attrs().Index, Gw: gatewayIP.AsSlice()}))
	_ = name
	return &testPod{ns: podNS, ip: ip}
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

// probe starts a server at dst in dstNS and connects from srcNS; it reports
// whether the exchange completed. Expected denials wait a short timeout.
func probe(t *testing.T, srcNS, dstNS netns.NsHandle, proto string, dst netip.AddrPort, expectAllow bool) bool {
	t.Helper()
	timeout := 300 * time.Millisecond
	if expectAllow {
		timeout = 3 * time.Second
	}
	switch proto {
	case "tcp":
		var ln net.Listener
		inNS(t, dstNS, func() {
			var err error
			ln, err = net.Listen("tcp4", dst.String())
			require.NoError(t, err)
		})
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
		ok := false
		inNS(t, srcNS, func() {
			c, err := net.DialTimeout("tcp4", dst.String(), timeout)
			if err == nil {
				ok = true
				_ = c.Close()
			}
		})
		return ok
	case "udp":
		var pc net.PacketConn
		inNS(t, dstNS, func() {
			var err error
			pc, err = net.ListenPacket("udp4", dst.String())
			require.NoError(t, err)
		})
		defer pc.Close()
		go func() {
			buf := make([]byte, 64)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(buf[:n], from)
			}
		}()
		ok := false
		inNS(t, srcNS, func() {
			c, err := net.Dial("udp4", dst.String())
			require.NoError(t, err)
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(timeout))
			_, err = c.Write([]byte("ping"))
			require.NoError(t, err)
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				t.Logf("udp read: %v", err)
			}
			ok = err == nil && string(buf[:n]) == "ping"
		})
		return ok
	}
	t.Fatalf("unknown protocol %s", proto)
	return false
}
