package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tuple is the original direction of a probe's connection, as conntrack
// keys it.
type tuple struct {
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16
}

// probeTuples collects the tuples of the probes made since the last
// ForgetProbes.
type probeTuples struct {
	mu sync.Mutex
	m  map[tuple]struct{}
}

func (p *probeTuples) add(proto uint8, pl plan, sport, dport uint16) {
	if sport == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[tuple]struct{}{}
	}
	p.m[tuple{proto: proto, src: pl.srcIP, dst: pl.dstIP, sport: sport, dport: dport}] = struct{}{}
}

func (p *probeTuples) take() map[tuple]struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.m
	p.m = nil
	return m
}

// localPort is the port a socket is bound to, 0 if unknown.
func localPort(fd int) uint16 {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return uint16(sa.Port)
	case *unix.SockaddrInet6:
		return uint16(sa.Port)
	}
	return 0
}

// ForgetProbes deletes, on every node, the connection-tracking entries of
// the probes made since the last call (found by their addresses, protocol
// and ports, one table dump per node and family), and nothing else:
// connections held open (Hold) and any other entry stay. Call it after
// changing a node's filter and before probing, so every probe is judged as
// a new connection without disturbing held ones. With no probe made since
// the last call it does nothing; after Close it returns ErrClosed.
func (l *Lab) ForgetProbes() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	probed := l.probed.take()
	if len(probed) == 0 {
		return nil
	}
	match := forgetFilter(func(f *netlink.ConntrackFlow) bool {
		src, _ := netip.AddrFromSlice(f.Forward.SrcIP)
		dst, _ := netip.AddrFromSlice(f.Forward.DstIP)
		_, ok := probed[tuple{proto: f.Forward.Protocol, src: src.Unmap(), dst: dst.Unmap(), sport: f.Forward.SrcPort, dport: f.Forward.DstPort}]
		return ok
	})
	var errs []error
	for i, n := range l.nodes {
		for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
			if _, err := n.nl.ConntrackDeleteFilters(netlink.ConntrackTable, fam, match); err != nil {
				errs = append(errs, fmt.Errorf("lab: node %d: forget probes: %w", i, err))
			}
		}
	}
	return errors.Join(errs...)
}

type forgetFilter func(*netlink.ConntrackFlow) bool

func (f forgetFilter) MatchConntrackFlow(e *netlink.ConntrackFlow) bool { return f(e) }
