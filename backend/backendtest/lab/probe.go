package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Probe is one connection attempt.
type Probe struct {
	// Src is where the connection starts: a pod name, the IP literal of a
	// pod, external host or node, or "node:i" for node i itself. The source
	// address is Src's address of Dst's family (the literal itself, if Src
	// is one).
	Src string
	// Dst is the destination address; it must belong to a pod, an external
	// host or a node of the lab.
	Dst netip.Addr
	// Port is the destination port, 1 to 65535.
	Port uint16
	// Protocol is TCP, UDP or SCTP.
	Protocol Protocol
}

// Result is the outcome of a Probe.
type Result struct {
	Probe Probe
	// Connected reports that the destination was reached: a completed TCP
	// handshake, a UDP echo carrying the probe's token, or an SCTP INIT seen
	// by the destination.
	Connected bool
	// Detail says why Connected is false: "timeout" when nothing came back,
	// or the error the kernel reported ("connection refused", "no route to
	// host", "operation not permitted" for a packet dropped on output...).
	// Empty when connected or when Err is set.
	Detail string
	// Err reports a probe that could not be made (unknown source or
	// destination, no source address of Dst's family, a socket that could
	// not be created, a cancelled context). It is never set for a packet
	// that was sent and not answered: that is Connected=false.
	Err error
	// Latency is the time from sending to the answer: for TCP, from
	// connect() to the completed handshake (SYN → SYN-ACK as connect sees
	// it); for UDP, to the echo; for SCTP, to the INIT's arrival. When not
	// connected, it is the time spent waiting. Measure with Parallelism 1 for
	// figures free of scheduling noise.
	Latency time.Duration
	// Source is the address and port the probe's packets came from (port 0
	// when unknown): it finds them in the kernel's packet logs.
	Source netip.AddrPort
}

// plan is a probe resolved against the lab.
type plan struct {
	src          *endpoint
	srcIP, dstIP netip.Addr
	dst          *endpoint
}

// Probe runs probes, up to Config.Parallelism at a time, and returns one
// Result per probe in input order. Before sending anything it makes sure each
// destination serves the probe's protocol and port (see Serve), so a probe
// that fails reflects the network, never a missing server. Each probe waits
// at most Config.ProbeTimeout (less if ctx expires sooner); probes not
// started when ctx is done report ctx's error. An empty input returns an
// empty slice.
func (l *Lab) Probe(ctx context.Context, probes []Probe) []Result {
	res := make([]Result, len(probes))
	plans := make([]plan, len(probes))
	l.mu.Lock()
	for i, p := range probes {
		res[i].Probe = p
		plans[i], res[i].Err = l.plan(p)
	}
	l.mu.Unlock()

	l.parallel(len(probes), func(i int) {
		if res[i].Err == nil {
			l.run(ctx, plans[i], &res[i])
		}
	})
	return res
}

func (l *Lab) plan(p Probe) (plan, error) {
	if l.closed {
		return plan{}, ErrClosed
	}
	if !p.Protocol.valid() {
		return plan{}, fmt.Errorf("lab: probe: unknown protocol %q", p.Protocol)
	}
	if p.Port == 0 {
		return plan{}, errors.New("lab: probe: port 0")
	}
	dst := p.Dst.Unmap()
	if !dst.IsValid() {
		return plan{}, errors.New("lab: probe: no destination address")
	}
	src, err := l.lookup(p.Src)
	if err != nil {
		return plan{}, fmt.Errorf("lab: probe source: %w", err)
	}
	srcIP, ok := src.addrOf(dst)
	if lit, err := netip.ParseAddr(p.Src); err == nil {
		srcIP, ok = lit.Unmap(), lit.Unmap().Is4() == dst.Is4()
	}
	if !ok {
		return plan{}, fmt.Errorf("lab: probe source %s has no address of the family of %s", p.Src, dst)
	}
	dstEp := l.byIP[dst]
	if dstEp == nil {
		return plan{}, fmt.Errorf("lab: probe destination %s: %w", dst, ErrNotFound)
	}
	if err := l.serve(dstEp, p.Protocol, p.Port); err != nil {
		return plan{}, err
	}
	return plan{src: src, srcIP: srcIP, dstIP: dst, dst: dstEp}, nil
}

func (l *Lab) run(ctx context.Context, pl plan, r *Result) {
	if err := ctx.Err(); err != nil {
		r.Err = err
		return
	}
	deadline := time.Now().Add(l.cfg.ProbeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	switch r.Probe.Protocol {
	case TCP:
		l.probeTCP(pl, r, deadline)
	case UDP:
		l.probeUDP(pl, r, deadline)
	case SCTP:
		l.probeSCTP(pl, r, deadline)
	}
}

func domain(ip netip.Addr) int {
	if ip.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func sockaddr(ip netip.Addr, port uint16) unix.Sockaddr {
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
	}
	return &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
}

// open creates a socket of the probe's source bound to its source address.
func (pl plan) open(typ, proto int) (int, error) {
	fd, err := pl.src.socket(domain(pl.dstIP), typ, proto)
	if err != nil {
		return -1, fmt.Errorf("lab: socket in %s: %w", pl.src.name, err)
	}
	if err := unix.Bind(fd, sockaddr(pl.srcIP, 0)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("lab: bind %s in %s: %w", pl.srcIP, pl.src.name, err)
	}
	return fd, nil
}

// wait polls fd for events until deadline; false when the deadline passed.
func wait(fd int, events int16, deadline time.Time) (bool, error) {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		ts := unix.NsecToTimespec(left.Nanoseconds())
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Ppoll(fds, &ts, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		if n > 0 {
			return true, nil
		}
	}
}

const timeout = "timeout"

func (l *Lab) probeTCP(pl plan, r *Result, deadline time.Time) {
	fd, err := pl.open(unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		r.Err = err
		return
	}
	defer unix.Close(fd)
	r.Source = netip.AddrPortFrom(pl.srcIP, localPort(fd))
	l.probed.add(unix.IPPROTO_TCP, pl, r.Source.Port(), r.Probe.Port)
	// Close with a reset: no TIME_WAIT left behind, so thousands of probes
	// never run out of ports.
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		r.Err = fmt.Errorf("lab: SO_LINGER: %w", err)
		return
	}
	start := time.Now()
	err = unix.Connect(fd, sockaddr(pl.dstIP, r.Probe.Port))
	if errors.Is(err, unix.EINPROGRESS) {
		var ready bool
		ready, err = wait(fd, unix.POLLOUT, deadline)
		r.Latency = time.Since(start)
		if err != nil {
			r.Err = fmt.Errorf("lab: poll: %w", err)
			return
		}
		if !ready {
			r.Detail = timeout
			return
		}
		var soerr int
		soerr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = unix.Errno(soerr)
		}
	} else {
		r.Latency = time.Since(start)
	}
	if err != nil {
		r.Detail = err.Error()
		return
	}
	r.Connected = true
}

func (l *Lab) probeUDP(pl plan, r *Result, deadline time.Time) {
	fd, err := pl.open(unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		r.Err = err
		return
	}
	defer unix.Close(fd)
	r.Source = netip.AddrPortFrom(pl.srcIP, localPort(fd))
	l.probed.add(unix.IPPROTO_UDP, pl, r.Source.Port(), r.Probe.Port)
	// Connected: only the destination's replies arrive, and ICMP errors
	// (a reject) are reported.
	if err := unix.Connect(fd, sockaddr(pl.dstIP, r.Probe.Port)); err != nil {
		r.Detail = err.Error()
		return
	}
	token := make([]byte, 16)
	for i := range token {
		token[i] = byte(rand.Uint32())
	}
	start := time.Now()
	resend := start.Add(deadline.Sub(start) / 2) // one retry half-way
	buf := make([]byte, 64)
	if _, err := unix.Write(fd, token); err != nil {
		r.Latency, r.Detail = time.Since(start), err.Error()
		return
	}
	for {
		until := deadline
		if !resend.IsZero() {
			until = resend
		}
		ready, err := wait(fd, unix.POLLIN, until)
		if err != nil {
			r.Latency, r.Err = time.Since(start), fmt.Errorf("lab: poll: %w", err)
			return
		}
		if !ready {
			if resend.IsZero() {
				r.Latency, r.Detail = time.Since(start), timeout
				return
			}
			resend = time.Time{}
			if _, err := unix.Write(fd, token); err != nil {
				r.Latency, r.Detail = time.Since(start), err.Error()
				return
			}
			continue
		}
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			r.Latency, r.Detail = time.Since(start), err.Error()
			return
		}
		if bytes.Equal(buf[:n], token) {
			r.Latency, r.Connected = time.Since(start), true
			return
		}
	}
}

func (l *Lab) probeSCTP(pl plan, r *Result, deadline time.Time) {
	var key sctpKey
	var seen chan struct{}
	for ok := false; !ok; {
		key = sctpKey{
			dst:   pl.dst,
			src:   pl.srcIP,
			sport: uint16(32768 + rand.IntN(28232)),
			dport: r.Probe.Port,
			tag:   1 + rand.Uint32N(1<<32-1),
		}
		seen, ok = l.waiters.add(key)
	}
	defer l.waiters.remove(key)

	fd, err := pl.open(unix.SOCK_RAW, protoSCTP)
	if err != nil {
		r.Err = err
		return
	}
	defer unix.Close(fd)
	r.Source = netip.AddrPortFrom(pl.srcIP, key.sport)
	l.probed.add(protoSCTP, pl, key.sport, key.dport)
	pkt := sctpInit(key.sport, key.dport, key.tag)
	if l.corruptSCTP {
		pkt[8] ^= 0xff
	}
	// Raw sockets take no port in the address (IPv6 ones insist on 0).
	to := sockaddr(pl.dstIP, 0)
	start := time.Now()
	if err := unix.Sendto(fd, pkt, unix.MSG_DONTWAIT, to); err != nil {
		r.Latency, r.Detail = time.Since(start), err.Error()
		return
	}
	retry := time.NewTimer(deadline.Sub(start) / 2)
	defer retry.Stop()
	expire := time.NewTimer(time.Until(deadline))
	defer expire.Stop()
	for {
		select {
		case <-seen:
			r.Latency, r.Connected = time.Since(start), true
			return
		case <-retry.C:
			if err := unix.Sendto(fd, pkt, unix.MSG_DONTWAIT, to); err != nil {
				r.Latency, r.Detail = time.Since(start), err.Error()
				return
			}
		case <-expire.C:
			r.Latency, r.Detail = time.Since(start), timeout
			return
		}
	}
}

// Sockets opens n sockets (unix.Socket's domain, type and protocol) inside
// the namespace of the pod, node ("node:i") or external host called name, in
// one visit of that namespace. A socket stays in the namespace it was opened
// in, so the caller may use them from any thread: hand-written probes and
// benchmarks use them to connect without a namespace switch per connection.
// The sockets are the caller's to close; none is left open on error. n 0
// opens none; an unknown name is ErrNotFound, a closed lab ErrClosed.
func (l *Lab) Sockets(name string, n, domain, typ, proto int) ([]int, error) {
	if n < 0 {
		return nil, fmt.Errorf("lab: sockets in %s: count %d is negative", name, n)
	}
	l.mu.Lock()
	var ep *endpoint
	err := ErrClosed
	if !l.closed {
		ep, err = l.lookup(name)
	}
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("lab: sockets: %w", err)
	}
	fds := make([]int, 0, n)
	err = ep.inside(func() error {
		for range n {
			fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
		}
		return nil
	})
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("lab: sockets in %s: %w", name, err)
	}
	return fds, nil
}
