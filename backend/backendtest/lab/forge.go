package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Forgery is a UDP datagram sent with a source address its sender does not
// own: what a pod trying to pass as another does.
type Forgery struct {
	// Src is the pod or external host that sends, by name.
	Src string
	// From is the source address the datagram carries: anything of Dst's
	// family (another pod's address, an external one, or Src's own for a
	// control).
	From netip.Addr
	// Dst is the destination address, a pod's or an external host's.
	Dst netip.Addr
	// Port is the destination port. Nothing of the lab may serve it (Serve,
	// Probe): Forge listens on it in the destination to see what arrives.
	Port uint16
}

// Forge sends f's datagram from f.Src's namespace through an IP_TRANSPARENT
// UDP socket bound to f.From (the kernel then sends from any address), resent
// once half-way through Config.ProbeTimeout, and reports whether the
// destination received it, carrying f.From as its source, within the
// timeout. The destination listens with a socket of its own on f.Port, so
// nothing answers the forged address. It is an error when a name or address
// is unknown, the families differ, the port is 0 or already in use in the
// destination, or ctx is done.
func (l *Lab) Forge(ctx context.Context, f Forgery) (arrived bool, err error) {
	from, dstIP := f.From.Unmap(), f.Dst.Unmap()
	switch {
	case f.Port == 0:
		return false, errors.New("lab: forge: port 0")
	case !from.IsValid() || !dstIP.IsValid():
		return false, errors.New("lab: forge: no source or destination address")
	case from.Is4() != dstIP.Is4():
		return false, fmt.Errorf("lab: forge: source %s and destination %s are of different families", from, dstIP)
	}
	l.mu.Lock()
	var src, dst *endpoint
	err = ErrClosed
	if !l.closed {
		if src, err = l.lookup(f.Src); err == nil && src.kind == kindNode {
			err = fmt.Errorf("%s is a node: %w", f.Src, ErrNotFound)
		}
		if dst = l.byIP[dstIP]; err == nil && dst == nil {
			err = fmt.Errorf("destination %s: %w", dstIP, ErrNotFound)
		}
	}
	l.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("lab: forge: %w", err)
	}

	sink, err := dst.socket(domain(dstIP), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return false, fmt.Errorf("lab: forge: socket in %s: %w", dst.name, err)
	}
	defer unix.Close(sink)
	if err := unix.Bind(sink, sockaddr(dstIP, f.Port)); err != nil {
		return false, fmt.Errorf("lab: forge: listen on %s port %d in %s: %w", dstIP, f.Port, dst.name, err)
	}
	fd, err := src.socket(domain(dstIP), unix.SOCK_DGRAM, 0)
	if err != nil {
		return false, fmt.Errorf("lab: forge: socket in %s: %w", src.name, err)
	}
	defer unix.Close(fd)
	level, opt := unix.SOL_IP, unix.IP_TRANSPARENT
	if dstIP.Is6() {
		level, opt = unix.SOL_IPV6, unix.IPV6_TRANSPARENT
	}
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		return false, fmt.Errorf("lab: forge: transparent socket in %s: %w", src.name, err)
	}
	if err := unix.Bind(fd, sockaddr(from, 0)); err != nil {
		return false, fmt.Errorf("lab: forge: bind %s in %s: %w", from, src.name, err)
	}

	token := make([]byte, 16)
	_, _ = rand.Read(token)
	to := sockaddr(dstIP, f.Port)
	start := time.Now()
	deadline := start.Add(l.cfg.ProbeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	resend := start.Add(deadline.Sub(start) / 2)
	if err := unix.Sendto(fd, token, 0, to); err != nil {
		return false, fmt.Errorf("lab: forge: send from %s in %s: %w", from, src.name, err)
	}
	buf := make([]byte, 64)
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		until := deadline
		if !resend.IsZero() {
			until = resend
		}
		ready, err := wait(sink, unix.POLLIN, until)
		if err != nil {
			return false, fmt.Errorf("lab: forge: %w", err)
		}
		if !ready {
			if resend.IsZero() {
				return false, nil // nothing arrived
			}
			resend = time.Time{}
			if err := unix.Sendto(fd, token, 0, to); err != nil {
				return false, fmt.Errorf("lab: forge: send from %s in %s: %w", from, src.name, err)
			}
			continue
		}
		n, sa, err := unix.Recvfrom(sink, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("lab: forge: receive in %s: %w", dst.name, err)
		}
		if bytes.Equal(buf[:n], token) && sockaddrIP(sa) == from {
			return true, nil
		}
	}
}

func sockaddrIP(sa unix.Sockaddr) netip.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap()
	}
	return netip.Addr{}
}
