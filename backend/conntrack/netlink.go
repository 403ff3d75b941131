package conntrack

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netlinkTable is the connection-tracking table of a namespace, over
// netlink.
type netlinkTable struct {
	h *netlink.Handle
}

func openNetlink(fd int) (*netlinkTable, error) {
	fams := []int{unix.NETLINK_NETFILTER, unix.NETLINK_ROUTE}
	var h *netlink.Handle
	var err error
	if fd == 0 {
		h, err = netlink.NewHandle(fams...)
	} else {
		h, err = netlink.NewHandleAt(netns.NsHandle(fd), fams...)
	}
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	return &netlinkTable{h: h}, nil
}

// funcFilter adapts a function to netlink's conntrack filter.
type funcFilter func(*netlink.ConntrackFlow) bool

func (f funcFilter) MatchConntrackFlow(e *netlink.ConntrackFlow) bool { return f(e) }

func (t *netlinkTable) DeleteMatching(family uint8, match func(*netlink.ConntrackFlow) bool) (int, error) {
	n, err := t.h.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.InetFamily(family), funcFilter(match))
	return int(n), err
}

func (t *netlinkTable) LocalAddrs() ([]netip.Addr, error) {
	addrs, err := t.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}
