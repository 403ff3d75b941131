package cni

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// HostGW adds, in the namespace of the node nodeNS, the route flannel's
// host-gw backend installs for another node: that node's pod subnet via
// that node's address, through the interface and next hop this node
// already uses to reach the address (on the lab, the link between the
// nodes). It fails when the address is not reachable.
func HostGW(nodeNS netns.NsHandle, subnet netip.Prefix, otherNode netip.Addr) error {
	h, err := netlink.NewHandleAt(nodeNS)
	if err != nil {
		return fmt.Errorf("cni: netlink: %w", err)
	}
	defer h.Close()
	rs, err := h.RouteGet(otherNode.AsSlice())
	if err != nil || len(rs) == 0 {
		return fmt.Errorf("cni: host-gw route to %s: node %s unreachable: %v", subnet, otherNode, err)
	}
	gw := rs[0].Gw
	if gw == nil {
		gw = otherNode.AsSlice()
	}
	dst := &net.IPNet{IP: subnet.Addr().AsSlice(), Mask: net.CIDRMask(subnet.Bits(), subnet.Addr().BitLen())}
	if err := h.RouteAdd(&netlink.Route{Dst: dst, Gw: gw, LinkIndex: rs[0].LinkIndex}); err != nil {
		return fmt.Errorf("cni: host-gw route %s via %s: %w", subnet, gw, err)
	}
	return nil
}
