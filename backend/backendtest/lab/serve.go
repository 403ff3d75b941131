package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// servers are an endpoint's TCP listeners, UDP echo sockets and SCTP
// receivers. The maps are guarded by Lab.mu; sctpPorts by portsMu, since the
// receivers read it.
type servers struct {
	tcp map[uint16]net.Listener
	// conns are the accepted TCP connections still open, closed by stop.
	connsMu  sync.Mutex
	conns    map[net.Conn]struct{}
	stopping bool
	udp      map[uint16][]net.PacketConn
	raw      [2]net.PacketConn // SCTP receivers, IPv4 and IPv6
	wg       sync.WaitGroup
	done     bool

	portsMu   sync.Mutex
	sctpPorts map[uint16]bool
}

// Serve makes sure target answers proto on port: a TCP listener that
// echoes what each connection sends until the peer closes it, a UDP socket that echoes each datagram, or (SCTP) an
// INIT watcher on that port. Target is a pod name, the IP literal of a pod or
// external host, or "node:i". TCP listens on every address of the target;
// UDP and SCTP serve each of its addresses. Serving what is already served
// does nothing. Probe calls Serve for its destinations itself.
func (l *Lab) Serve(target string, proto Protocol, port uint16) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	ep, err := l.lookup(target)
	if err != nil {
		return err
	}
	return l.serve(ep, proto, port)
}

func (l *Lab) serve(ep *endpoint, proto Protocol, port uint16) error {
	if port == 0 {
		return fmt.Errorf("lab: serve %s on %s: port 0", proto, ep.name)
	}
	s := &ep.srv
	if s.done {
		return fmt.Errorf("lab: %s: %w", ep.name, ErrNotFound)
	}
	var err error
	switch proto {
	case TCP:
		err = l.serveTCP(ep, port)
	case UDP:
		err = l.serveUDP(ep, port)
	case SCTP:
		err = l.serveSCTP(ep, port)
	default:
		return fmt.Errorf("lab: serve on %s: unknown protocol %q", ep.name, proto)
	}
	if err != nil {
		return fmt.Errorf("lab: serve %s/%d on %s: %w", proto, port, ep.name, err)
	}
	return nil
}

// listenBacklog is the TCP servers' accept queue. When the queue is full
// the kernel drops SYNs and the client retries a second later, so a short
// queue turns a burst of connects (a benchmark's, many parallel probes')
// into one-second stalls that are the server's doing, not the network's.
const listenBacklog = 65535

// listenTCP listens on port on every address of the calling thread's
// namespace, IPv4 and IPv6 (one dual-stack socket), with listenBacklog.
// (The standard library's listeners take the backlog the process first
// read from the host.)
func listenTCP(port uint16) (net.Listener, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tcp-listener")
	defer f.Close() // FileListener keeps a duplicate
	for _, o := range []struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return nil, fmt.Errorf("setsockopt: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Port: int(port)}); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return net.FileListener(f)
}

func (l *Lab) serveTCP(ep *endpoint, port uint16) error {
	s := &ep.srv
	if s.tcp[port] != nil {
		return nil
	}
	var ln net.Listener
	err := ep.inside(func() error {
		var err error
		ln, err = listenTCP(port)
		return err
	})
	if err != nil {
		return err
	}
	if s.tcp == nil {
		s.tcp = map[uint16]net.Listener{}
	}
	s.tcp[port] = ln
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				time.Sleep(5 * time.Millisecond) // e.g. out of descriptors: retry, never spin
				continue
			}
			if !s.track(c) {
				c.Close()
				return
			}
			s.wg.Go(func() {
				defer s.untrack(c)
				// Echo until the client closes (probes reset at once;
				// held connections keep talking). A plain copy: TCPConn's
				// ReadFrom would splice through pooled pipes, descriptors
				// that outlive the connection.
				buf := make([]byte, 512)
				_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
			})
		}
	})
	return nil
}

// track registers an accepted connection; false once stop has begun.
func (s *servers) track(c net.Conn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	if s.stopping {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *servers) untrack(c net.Conn) {
	c.Close()
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	delete(s.conns, c)
}

func (l *Lab) serveUDP(ep *endpoint, port uint16) error {
	s := &ep.srv
	if s.udp[port] != nil {
		return nil
	}
	// One socket per address, so each reply leaves from the address the
	// request was sent to.
	var conns []net.PacketConn
	for _, ip := range ep.ips {
		network := "udp4"
		if ip.Is6() {
			network = "udp6"
		}
		var c net.PacketConn
		err := ep.inside(func() error {
			var err error
			c, err = (&net.ListenConfig{}).ListenPacket(context.Background(), network, netip.AddrPortFrom(ip, port).String())
			return err
		})
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return err
		}
		conns = append(conns, c)
	}
	if s.udp == nil {
		s.udp = map[uint16][]net.PacketConn{}
	}
	s.udp[port] = conns
	for _, c := range conns {
		s.wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					return // closed; a UDP socket reports nothing else here
				}
				c.WriteTo(buf[:n], from)
			}
		})
	}
	return nil
}

func (l *Lab) serveSCTP(ep *endpoint, port uint16) error {
	s := &ep.srv
	for _, ip := range ep.ips {
		f := family(ip)
		if s.raw[f] != nil {
			continue
		}
		network, wildcard := "ip4:132", "0.0.0.0"
		if f == 1 {
			network, wildcard = "ip6:132", "::"
		}
		var c net.PacketConn
		err := ep.inside(func() error {
			var err error
			c, err = (&net.ListenConfig{}).ListenPacket(context.Background(), network, wildcard)
			return err
		})
		if err != nil {
			return err
		}
		s.raw[f] = c
		s.wg.Go(func() { l.receiveSCTP(ep, c) })
	}
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	if s.sctpPorts == nil {
		s.sctpPorts = map[uint16]bool{}
	}
	s.sctpPorts[port] = true
	return nil
}

// receiveSCTP reads every SCTP packet delivered to the endpoint's namespace
// (the kernel has no SCTP stack, so raw sockets are the only receivers) and
// tells a waiting probe when its INIT arrived on a served port.
func (l *Lab) receiveSCTP(ep *endpoint, c net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		sport, dport, tag, ok := parseSCTPInit(buf[:n])
		if !ok {
			continue
		}
		ep.srv.portsMu.Lock()
		served := ep.srv.sctpPorts[dport]
		ep.srv.portsMu.Unlock()
		ipa, _ := from.(*net.IPAddr)
		if !served || ipa == nil {
			continue
		}
		src, _ := netip.AddrFromSlice(ipa.IP)
		l.waiters.notify(sctpKey{dst: ep, src: src.Unmap(), sport: sport, dport: dport, tag: tag})
	}
}

// stop closes every server and waits for their goroutines.
func (s *servers) stop() error {
	s.done = true
	var errs []error
	for _, ln := range s.tcp {
		errs = append(errs, ln.Close())
	}
	s.connsMu.Lock()
	s.stopping = true
	for c := range s.conns {
		c.Close()
	}
	s.connsMu.Unlock()
	for _, cs := range s.udp {
		for _, c := range cs {
			errs = append(errs, c.Close())
		}
	}
	for _, c := range s.raw {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	s.tcp, s.udp, s.raw = nil, nil, [2]net.PacketConn{}
	s.wg.Wait()
	return errors.Join(errs...)
}

type sctpKey struct {
	dst          *endpoint
	src          netip.Addr
	sport, dport uint16
	tag          uint32
}

// sctpWaiters maps the INITs probes are waiting for to their channels.
type sctpWaiters struct {
	mu sync.Mutex
	m  map[sctpKey]chan struct{}
}

// add registers k; false if k is already awaited.
func (w *sctpWaiters) add(k sctpKey) (chan struct{}, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[k] != nil {
		return nil, false
	}
	c := make(chan struct{}, 1)
	w.m[k] = c
	return c, true
}

func (w *sctpWaiters) remove(k sctpKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, k)
}

func (w *sctpWaiters) notify(k sctpKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.m[k]; c != nil {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
