package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/internal/nsthread"
)

// netlinkTable is the connection-tracking table of a namespace, over
// netlink: one socket per address family, so that the two families'
// dumps can run at once (a dump walks the kernel's whole hash table,
// shared by every namespace, whatever this namespace holds).
type netlinkTable struct {
	h [2]*netlink.Handle // IPv4, IPv6; h[0] also answers LocalAddrs
}

func openNetlink(fd int) (*netlinkTable, error) {
	t := &netlinkTable{}
	for i := range t.h {
		fams := []int{unix.NETLINK_NETFILTER, unix.NETLINK_ROUTE}
		var err error
		if fd == 0 {
			t.h[i], err = netlink.NewHandle(fams...)
		} else {
			t.h[i], err = netlink.NewHandleAt(netns.NsHandle(fd), fams...)
		}
		if err != nil {
			t.close()
			return nil, fmt.Errorf("netlink socket: %w", err)
		}
	}
	return t, nil
}

func (t *netlinkTable) close() {
	for _, h := range t.h {
		if h != nil {
			h.Close()
		}
	}
}

// funcFilter adapts a function to netlink's conntrack filter.
type funcFilter func(*netlink.ConntrackFlow) bool

func (f funcFilter) MatchConntrackFlow(e *netlink.ConntrackFlow) bool { return f(e) }

// dumpAttempts bounds the dumps of one DeleteMatching: the kernel may
// interrupt a dump whose table changes meanwhile, and the entries it did
// not list must still be judged.
const dumpAttempts = 3

func (t *netlinkTable) DeleteMatching(family uint8, match func(*netlink.ConntrackFlow) bool) (int, error) {
	total := 0
	var err error
	for range dumpAttempts {
		var n uint
		n, err = t.h[famIndex(family)].ConntrackDeleteFilters(netlink.ConntrackTable, netlink.InetFamily(family), funcFilter(match))
		total += int(n)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return total, err
}

func (t *netlinkTable) LocalAddrs() ([]netip.Addr, error) {
	addrs, err := t.h[0].AddrList(nil, netlink.FAMILY_ALL)
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

// tcpLoose is the sysctl that lets conntrack pick a TCP connection up from
// any packet, not only a SYN.
const tcpLoose = "/proc/sys/net/netfilter/nf_conntrack_tcp_loose"

// disableTCPPickup writes 0 to tcpLoose in the namespace fd (0: the
// calling thread's).
func disableTCPPickup(fd int) error {
	return inNamespace(fd, func() error { return os.WriteFile(tcpLoose, []byte("0\n"), 0o644) })
}

// inNamespace runs fn on a locked thread switched into the namespace fd (0:
// the calling thread's, without switching).
func inNamespace(fd int, fn func() error) error { return nsthread.Do(fd, fn) }
