package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Addresses the lab itself uses. Pods and external hosts may not take them.
var (
	// gatewayV4 and gatewayV6 sit on the node side of every pod's veth:
	// pods route everything through them, as with Calico-style routed veths.
	gatewayV4 = netip.MustParseAddr("169.254.1.1")
	gatewayV6 = netip.MustParseAddr("fe80::1")
	// linkV4 and linkV6 are node 0's and node 1's ends of the link between
	// the nodes (a /30 and a /64).
	linkV4 = [2]netip.Addr{netip.MustParseAddr("169.254.255.1"), netip.MustParseAddr("169.254.255.2")}
	linkV6 = [2]netip.Addr{netip.MustParseAddr("2001:2:0:ffff::1"), netip.MustParseAddr("2001:2:0:ffff::2")}
)

const (
	linkV4Bits = 30
	linkV6Bits = 64
	gwV6Bits   = 64
	podIf      = "eth0" // the interface in a pod or external namespace
	hostIf     = "host" // holds the node's own addresses
	hostPeerIf = "host-peer"
	linkIndex0 = 100 // ifindex of node 0's end of the link between nodes
	upTimeout  = 3 * time.Second
)

// nodeV4 and nodeV6 are node i's own addresses, from the benchmarking
// ranges 198.18.0.0/15 (RFC 2544) and 2001:2::/48 (RFC 5180).
func nodeV4(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}) }
func nodeV6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(i + 1)})
}

// linkName is the name, in node i, of its end of the link to node 1-i.
func linkName(i int) string { return fmt.Sprintf("node%d", 1-i) }

type kind int

const (
	kindNode kind = iota
	kindPod
	kindExternal
)

// endpoint is anything that owns addresses and can serve or probe: a node, a
// pod or an external host.
type endpoint struct {
	kind   kind
	name   string
	node   int // the node it is attached to (its own index for a node)
	ips    []netip.Addr
	ns     netns.NsHandle
	hostIf string           // node-side veth of a pod or external host
	remote []*netlink.Route // routes to it on the other node
	// bridged is set for a pod on its node's bridge (Bridge topology):
	// the node routes its addresses on the bridge, and the other pods of
	// the node reach them on-link.
	bridged bool

	// mu guards ns against being closed while a socket is being created in
	// it: creators hold it for reading, shutdown for writing.
	mu     sync.RWMutex
	closed bool

	srv servers

	// wiring is set on a pod wired by someone else (see Wiring): it has
	// no hostIf and no remote routes; its Wiring removes what it made.
	wiring Wiring
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func hostNet(ip netip.Addr) *net.IPNet { return ipNet(netip.PrefixFrom(ip, ip.BitLen())) }

// addr is ip/bits as a netlink address; IPv6 ones skip duplicate address
// detection so they are usable at once.
func addr(ip netip.Addr, bits int) *netlink.Addr {
	a := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(ip, bits))}
	if ip.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func defaultNet(ip netip.Addr) *net.IPNet {
	if ip.Is4() {
		return ipNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0))
	}
	return ipNet(netip.PrefixFrom(netip.IPv6Unspecified(), 0))
}

func family(ip netip.Addr) int {
	if ip.Is4() {
		return 0
	}
	return 1
}

// addNode creates node i: its namespace, with forwarding on, and a veth pair
// inside it whose "host" end holds the node's own addresses.
func (l *Lab) addNode(i int) error {
	ns, err := newNS(nodeSysctls)
	if err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return fmt.Errorf("netlink: %w", err)
	}
	ep := &endpoint{kind: kindNode, name: nodeName(i), node: i, ips: []netip.Addr{nodeV4(i), nodeV6(i)}, ns: ns}
	l.nodes = append(l.nodes, &node{ep: ep, nl: h})
	l.register(ep) // from here on Close removes it
	if err := linkUp(h, "lo"); err != nil {
		return err
	}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostIf}, PeerName: hostPeerIf}); err != nil {
		return fmt.Errorf("add %s: %w", hostIf, err)
	}
	if err := linkUp(h, hostPeerIf); err != nil {
		return err
	}
	if err := linkUp(h, hostIf); err != nil {
		return err
	}
	link, err := h.LinkByName(hostIf)
	if err != nil {
		return err
	}
	for _, ip := range ep.ips {
		if err := h.AddrAdd(link, addr(ip, ip.BitLen())); err != nil {
			return fmt.Errorf("address %s on %s: %w", ip, hostIf, err)
		}
	}
	for _, ip := range ep.ips {
		if err := waitLocal(h, ip); err != nil {
			return err
		}
	}
	if l.cfg.Topology == Bridge {
		return l.addBridge(l.nodes[i], i)
	}
	return nil
}

// addBridge creates node n's bridge (BridgeName) with the pod gateways on
// it, and br_netfilter on in the node namespace: bridged IPv4 and IPv6
// traffic then passes the IP hooks (the kernels here default to on; the
// lab does not depend on the default).
func (l *Lab) addBridge(n *node, i int) error {
	// A bridge takes the lowest MAC of its ports unless one is set: pods
	// hold a static neighbour entry for their gateway, so it must not
	// change as pods come and go.
	mac := net.HardwareAddr{0x02, 0x70, 0x61, 0x6c, 0x00, byte(i + 1)}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName, HardwareAddr: mac}}
	if err := n.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s: %w", BridgeName, err)
	}
	link, err := n.nl.LinkByName(BridgeName)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", BridgeName, err)
	}
	for _, a := range []*netlink.Addr{addr(gatewayV4, 32), addr(gatewayV6, gwV6Bits)} {
		if err := n.nl.AddrAdd(link, a); err != nil {
			return fmt.Errorf("address %s on %s: %w", a.IPNet, BridgeName, err)
		}
	}
	if err := inNS(n.ep.ns, func() error { return writeSysctls(bridgeSysctls(true)) }); err != nil {
		return fmt.Errorf("br_netfilter: %w", err)
	}
	n.bridge, n.brMAC = link.Attrs().Index, mac
	return nil
}

// linkNodes joins node 0 and node 1 with a veth pair and routes each node's
// own addresses to the other.
func (l *Lab) linkNodes() error {
	n0, n1 := l.nodes[0], l.nodes[1]
	// The kernel applies a carrier change at once only on a device whose
	// ifindex differs from its peer's, otherwise up to a second later; fresh
	// namespaces would number both ends alike.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: linkName(0), Index: linkIndex0},
		PeerName:      linkName(1),
		PeerNamespace: netlink.NsFd(int(n1.ep.ns)),
	}
	if err := n0.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("add %s: %w", linkName(0), err)
	}
	for i, n := range l.nodes {
		link, err := n.nl.LinkByName(linkName(i))
		if err != nil {
			return err
		}
		if err := n.nl.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", linkName(i), err)
		}
		for _, a := range []*netlink.Addr{addr(linkV4[i], linkV4Bits), addr(linkV6[i], linkV6Bits)} {
			if err := n.nl.AddrAdd(link, a); err != nil {
				return fmt.Errorf("address %s on %s: %w", a.IPNet, linkName(i), err)
			}
		}
		n.link = link.Attrs().Index
		n.peer = [2]netip.Addr{linkV4[1-i], linkV6[1-i]}
	}
	var macs [2]net.HardwareAddr
	for i, n := range l.nodes {
		link, err := n.nl.LinkByName(linkName(i))
		if err != nil {
			return err
		}
		macs[i] = link.Attrs().HardwareAddr
	}
	for i, n := range l.nodes {
		for _, ip := range n.peer {
			if err := n.nl.NeighAdd(staticNeigh(n.link, ip, macs[1-i])); err != nil {
				return fmt.Errorf("neighbour %s on node %d: %w", ip, i, err)
			}
		}
		if err := waitUp(n.nl, linkName(i)); err != nil {
			return err
		}
	}
	for i, n := range l.nodes {
		for _, ip := range l.nodes[1-i].ep.ips {
			if err := n.nl.RouteAdd(n.viaLink(ip)); err != nil {
				return fmt.Errorf("route %s on node %d: %w", ip, i, err)
			}
		}
	}
	return nil
}

// viaLink is the route on n to ip through the other node.
func (n *node) viaLink(ip netip.Addr) *netlink.Route {
	return &netlink.Route{LinkIndex: n.link, Dst: hostNet(ip), Gw: n.peer[family(ip)].AsSlice()}
}

// waitUp waits (at most upTimeout) until a link is operationally up: only
// then does the kernel transmit on it, and a probe's first packet must not be
// lost to a link still coming up.
func waitUp(h *netlink.Handle, name string) error {
	deadline := time.Now().Add(upTimeout)
	for {
		link, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		if link.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up after %v (state %s)", name, upTimeout, link.Attrs().OperState)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitLocal waits (at most upTimeout) until the kernel delivers packets to
// ip locally. An IPv6 address is usable as a source at once (no DAD), but
// its local route is installed by a deferred kernel work item: until then
// packets to it are dropped.
func waitLocal(h *netlink.Handle, ip netip.Addr) error {
	deadline := time.Now().Add(upTimeout)
	for {
		rs, err := h.RouteGet(ip.AsSlice())
		if err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("address %s not local after %v (route lookup: %v)", ip, upTimeout, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func linkUp(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// attach creates an endpoint's namespace and wires it to node n: eth0
// inside holds each ip as a /32 or /128 and routes everything to the
// gateway. Routed (external hosts always): the node side of the veth holds
// the gateway addresses and a route to each ip. Bridge (pods): the node
// side is a port of the node's bridge, which holds the gateways; the node
// routes each ip on the bridge, and the node's other bridged pods reach it
// on-link (joinBridge). On a two-node lab the other node routes the ips
// over the link. On error everything created is removed again.
func (l *Lab) attach(k kind, name string, n int, ips []netip.Addr) (_ *endpoint, err error) {
	nd := l.nodes[n]
	ns, err := newNS(baseSysctls)
	if err != nil {
		return nil, err
	}
	l.seq++
	prefix := "pod"
	if k == kindExternal {
		prefix = "ext"
	}
	ep := &endpoint{kind: k, name: name, node: n, ips: ips, ns: ns, hostIf: fmt.Sprintf("%s%d", prefix, l.seq),
		bridged: k == kindPod && nd.bridge != 0}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.detach(ep))
		}
	}()
	stage := func(s string) error {
		if l.failAddStage == s {
			return fmt.Errorf("test hook: fail after %s", s)
		}
		return nil
	}

	// The pair is created in the node namespace with its peer directly in
	// the endpoint's: nothing passes through the host's namespace.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ep.hostIf},
		PeerName:      podIf,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if ep.bridged {
		veth.MasterIndex = nd.bridge
	}
	if err := nd.nl.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("add %s on node %d: %w", ep.hostIf, n, err)
	}
	if err := stage("veth"); err != nil {
		return nil, err
	}
	host, err := nd.nl.LinkByName(ep.hostIf)
	if err != nil {
		return nil, err
	}
	if err := nd.nl.LinkSetUp(host); err != nil {
		return nil, fmt.Errorf("set %s up: %w", ep.hostIf, err)
	}
	gwMAC, dev := host.Attrs().HardwareAddr, host.Attrs().Index
	if ep.bridged {
		gwMAC, dev = nd.brMAC, nd.bridge
	}
	podMAC, err := configureInside(ns, ips, gwMAC)
	if err != nil {
		return nil, err
	}
	if err := waitUp(nd.nl, ep.hostIf); err != nil {
		return nil, err
	}
	if err := stage("inside"); err != nil {
		return nil, err
	}
	if !ep.bridged {
		for _, a := range []*netlink.Addr{addr(gatewayV4, 32), addr(gatewayV6, gwV6Bits)} {
			if err := nd.nl.AddrAdd(host, a); err != nil {
				return nil, fmt.Errorf("address %s on %s: %w", a.IPNet, ep.hostIf, err)
			}
		}
	}
	for _, ip := range ips {
		if err := nd.nl.RouteAdd(onLink(dev, ip)); err != nil {
			return nil, fmt.Errorf("route %s on node %d: %w", ip, n, err)
		}
		if err := nd.nl.NeighAdd(staticNeigh(dev, ip, podMAC)); err != nil {
			return nil, fmt.Errorf("neighbour %s on node %d: %w", ip, n, err)
		}
	}
	if ep.bridged {
		if err := l.joinBridge(ep); err != nil {
			return nil, err
		}
	}
	if err := stage("node"); err != nil {
		return nil, err
	}
	if len(l.nodes) == 2 {
		other := l.nodes[1-n]
		for _, ip := range ips {
			r := other.viaLink(ip)
			if err := other.nl.RouteAdd(r); err != nil {
				return nil, fmt.Errorf("route %s on node %d: %w", ip, 1-n, err)
			}
			ep.remote = append(ep.remote, r)
		}
	}
	if err := stage("remote"); err != nil {
		return nil, err
	}
	return ep, nil
}

// onLink is a route to ip through link dev, without a gateway.
func onLink(dev int, ip netip.Addr) *netlink.Route {
	r := &netlink.Route{LinkIndex: dev, Dst: hostNet(ip)}
	if ip.Is4() {
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}

// bridgePeers returns the other pods on ep's bridge.
func (l *Lab) bridgePeers(ep *endpoint) []*endpoint {
	var out []*endpoint
	for _, q := range l.byName {
		if q != ep && q.bridged && q.node == ep.node {
			out = append(out, q)
		}
	}
	return out
}

// joinBridge lets ep and the other pods of its bridge reach each other
// on-link: in each namespace a /32 or /128 route through eth0 to each
// address of the other of a family it has. Pods resolve each other's MAC
// addresses with ARP and neighbour discovery, as on a real bridge (only the
// gateway and the node's entries are static), so IPv6 neighbour discovery
// between bridged pods crosses the node's forward hooks through
// br_netfilter like any bridged packet. Manifests give pods arbitrary
// addresses, so no subnet is assumed.
func (l *Lab) joinBridge(ep *endpoint) error {
	for _, q := range l.bridgePeers(ep) {
		if err := addOnLink(ep, q.ips); err != nil {
			return err
		}
		if err := addOnLink(q, ep.ips); err != nil {
			return err
		}
	}
	return nil
}

// addOnLink adds, in ep's namespace, an on-link route through eth0 to each
// address of ips of a family ep has.
func addOnLink(ep *endpoint, ips []netip.Addr) error {
	return ep.withNetlink(func(h *netlink.Handle, eth int) error {
		for _, ip := range ips {
			if _, ok := ep.addrOf(ip); !ok {
				continue
			}
			if err := h.RouteAdd(onLink(eth, ip)); err != nil {
				return fmt.Errorf("route %s in %s: %w", ip, ep.name, err)
			}
		}
		return nil
	})
}

// leaveBridge undoes joinBridge, also part-way: the other pods of the
// bridge lose their routes and neighbour entries for ep's addresses (the
// addresses may come back on another pod, another MAC, another node).
func (l *Lab) leaveBridge(ep *endpoint) error {
	var errs []error
	for _, q := range l.bridgePeers(ep) {
		errs = append(errs, q.withNetlink(func(h *netlink.Handle, eth int) error {
			var errs []error
			for _, ip := range ep.ips {
				if err := h.RouteDel(onLink(eth, ip)); err != nil && !errors.Is(err, unix.ESRCH) {
					errs = append(errs, fmt.Errorf("delete route %s in %s: %w", ip, q.name, err))
				}
				n := staticNeigh(eth, ip, nil)
				if err := h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("delete neighbour %s in %s: %w", ip, q.name, err))
				}
			}
			return errors.Join(errs...)
		}))
	}
	return errors.Join(errs...)
}

// withNetlink runs fn with a netlink handle in ep's namespace and the index
// of its eth0.
func (ep *endpoint) withNetlink(fn func(h *netlink.Handle, eth int) error) error {
	ep.mu.RLock()
	defer ep.mu.RUnlock()
	if ep.closed {
		return fmt.Errorf("lab: %s: %w", ep.name, ErrNotFound)
	}
	h, err := netlink.NewHandleAt(ep.ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", ep.name, err)
	}
	defer h.Close()
	eth, err := h.LinkByName(podIf)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", podIf, ep.name, err)
	}
	return fn(h, eth.Attrs().Index)
}

// configureInside sets up lo and eth0 in an endpoint's namespace, with
// static neighbour entries for the gateways at gwMAC. It returns eth0's MAC.
func configureInside(ns netns.NsHandle, ips []netip.Addr, gwMAC net.HardwareAddr) (net.HardwareAddr, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	if err := linkUp(h, "lo"); err != nil {
		return nil, err
	}
	eth, err := h.LinkByName(podIf)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", podIf, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return nil, fmt.Errorf("set %s up: %w", podIf, err)
	}
	idx := eth.Attrs().Index
	var routes []*netlink.Route
	var has [2]bool
	for _, ip := range ips {
		if err := h.AddrAdd(eth, addr(ip, ip.BitLen())); err != nil {
			return nil, fmt.Errorf("address %s: %w", ip, err)
		}
		has[family(ip)] = true
	}
	for f, gw := range []netip.Addr{gatewayV4, gatewayV6} {
		if !has[f] {
			continue
		}
		if err := h.NeighAdd(staticNeigh(idx, gw, gwMAC)); err != nil {
			return nil, fmt.Errorf("neighbour %s: %w", gw, err)
		}
	}
	if has[0] {
		routes = append(routes,
			&netlink.Route{LinkIndex: idx, Dst: hostNet(gatewayV4), Scope: netlink.SCOPE_LINK},
			&netlink.Route{LinkIndex: idx, Dst: defaultNet(gatewayV4), Gw: gatewayV4.AsSlice()})
	}
	if has[1] {
		routes = append(routes, &netlink.Route{LinkIndex: idx, Dst: defaultNet(gatewayV6), Gw: gatewayV6.AsSlice()})
	}
	for _, r := range routes {
		if err := h.RouteAdd(r); err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Dst, err)
		}
	}
	for _, ip := range ips {
		if err := waitLocal(h, ip); err != nil {
			return nil, err
		}
	}
	return eth.Attrs().HardwareAddr, waitUp(h, podIf)
}

// staticNeigh is a permanent neighbour entry: the lab resolves no address
// on its links at run time. (IPv6 joins an address's solicited-node group
// asynchronously, so a solicitation right after setup could go unanswered
// and cost a one-second retransmission; ARP and ND would also add noise to
// first-packet latency.)
func staticNeigh(link int, ip netip.Addr, mac net.HardwareAddr) *netlink.Neigh {
	f := netlink.FAMILY_V4
	if ip.Is6() {
		f = netlink.FAMILY_V6
	}
	return &netlink.Neigh{LinkIndex: link, Family: f, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}
}

// detach undoes attach, also part-way: it removes the routes to the
// endpoint on the other node and its node-side veth (which takes the pod
// side, the node's routes to it and its traffic with it at once), then stops
// its servers and releases its namespace.
//
// A wired pod is undone by its Wiring (see Wiring), then released.
func (l *Lab) detach(ep *endpoint) error {
	if ep.wiring != nil {
		return errors.Join(ep.unwire(), ep.shutdown())
	}
	var errs []error
	if len(ep.remote) > 0 {
		other := l.nodes[1-ep.node]
		for _, r := range ep.remote {
			if err := other.nl.RouteDel(r); err != nil {
				errs = append(errs, fmt.Errorf("delete route %s on node %d: %w", r.Dst, 1-ep.node, err))
			}
		}
		ep.remote = nil
	}
	nd := l.nodes[ep.node]
	if ep.bridged {
		// The node's routes and neighbour entries sit on the bridge, not
		// on the pod's port: they do not go with it.
		errs = append(errs, l.leaveBridge(ep))
		for _, ip := range ep.ips {
			if err := nd.nl.RouteDel(onLink(nd.bridge, ip)); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete route %s on node %d: %w", ip, ep.node, err))
			}
			if err := nd.nl.NeighDel(staticNeigh(nd.bridge, ip, nil)); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("delete neighbour %s on node %d: %w", ip, ep.node, err))
			}
		}
	}
	if link, err := nd.nl.LinkByName(ep.hostIf); err == nil {
		if err := nd.nl.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete %s on node %d: %w", ep.hostIf, ep.node, err))
		}
	} else if !errors.As(err, new(netlink.LinkNotFoundError)) {
		errs = append(errs, fmt.Errorf("find %s on node %d: %w", ep.hostIf, ep.node, err))
	}
	errs = append(errs, ep.shutdown())
	return errors.Join(errs...)
}

// shutdown stops the endpoint's servers, waits for their goroutines and
// releases its namespace handle. The namespace itself goes when the last
// socket in it is closed.
func (ep *endpoint) shutdown() error {
	err := ep.srv.stop()
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if !ep.closed {
		ep.closed = true
		if cerr := ep.ns.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close namespace of %s: %w", ep.name, cerr))
		}
	}
	return err
}

// socket creates a socket inside the endpoint's namespace. It fails once the
// endpoint is removed, so a closed (and perhaps reused) descriptor number is
// never entered.
func (ep *endpoint) socket(domain, typ, proto int) (int, error) {
	fd := -1
	err := ep.inside(func() error {
		var err error
		fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		return err
	})
	return fd, err
}

// inside runs fn on a thread inside the endpoint's namespace.
func (ep *endpoint) inside(fn func() error) error {
	ep.mu.RLock()
	defer ep.mu.RUnlock()
	if ep.closed {
		return fmt.Errorf("lab: %s: %w", ep.name, ErrNotFound)
	}
	return inNS(ep.ns, fn)
}

// addrOf returns the endpoint's first address of ip's family.
func (ep *endpoint) addrOf(ip netip.Addr) (netip.Addr, bool) {
	for _, a := range ep.ips {
		if a.Is4() == ip.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}
