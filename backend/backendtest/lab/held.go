package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Held is a connection kept open across filter changes: a connected TCP
// socket, or a connected UDP socket with a fixed source port (the server
// answers from its port). Check sends data over it and waits for the echo,
// so a caller sees whether the packet filter still lets an established
// connection through. A Held is safe for concurrent use; Check calls on one
// connection are serialised.
type Held struct {
	l     *Lab
	probe Probe

	mu     sync.Mutex
	fd     int // -1 once closed
	failed string
}

// Probe returns the probe the connection was opened for.
func (h *Held) Probe() Probe { return h.probe }

// Hold opens one long-lived connection per probe, up to Config.Parallelism
// at a time, and checks each once (Check): TCP connects and keeps the
// socket; UDP binds one socket, connects it to the destination and keeps
// it. It returns, in input order, the connection (nil when it could not be
// opened or did not answer) and the Result of opening it. SCTP cannot be
// held (the kernel has no SCTP sockets): its Result carries an Err that
// errors.Is(err, errors.ErrUnsupported). An empty input returns empty
// slices. Close (of each Held, or of the Lab) closes the sockets.
func (l *Lab) Hold(ctx context.Context, probes []Probe) ([]*Held, []Result) {
	held := make([]*Held, len(probes))
	res := make([]Result, len(probes))
	plans := make([]plan, len(probes))
	l.mu.Lock()
	for i, p := range probes {
		res[i].Probe = p
		if p.Protocol == SCTP {
			res[i].Err = fmt.Errorf("lab: hold %s -> %s SCTP/%d: %w", p.Src, p.Dst, p.Port, errors.ErrUnsupported)
			continue
		}
		plans[i], res[i].Err = l.plan(p)
	}
	l.mu.Unlock()
	l.parallel(len(probes), func(i int) {
		if res[i].Err == nil {
			held[i], res[i] = l.hold(ctx, plans[i], probes[i])
		}
	})
	return held, res
}

// parallel runs fn(0..n-1), Config.Parallelism at a time.
func (l *Lab) parallel(n int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(l.cfg.Parallelism, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (l *Lab) hold(ctx context.Context, pl plan, p Probe) (*Held, Result) {
	r := Result{Probe: p}
	if err := ctx.Err(); err != nil {
		r.Err = err
		return nil, r
	}
	typ := unix.SOCK_STREAM
	if p.Protocol == UDP {
		typ = unix.SOCK_DGRAM
	}
	fd, err := pl.open(typ|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		r.Err = err
		return nil, r
	}
	deadline := l.deadline(ctx)
	start := time.Now()
	err = unix.Connect(fd, sockaddr(pl.dstIP, p.Port))
	if errors.Is(err, unix.EINPROGRESS) {
		var ready bool
		ready, err = wait(fd, unix.POLLOUT, deadline)
		if err == nil && !ready {
			unix.Close(fd)
			r.Latency, r.Detail = time.Since(start), timeout
			return nil, r
		}
		if err == nil {
			var soerr int
			soerr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soerr != 0 {
				err = unix.Errno(soerr)
			}
		}
	}
	if err != nil {
		unix.Close(fd)
		r.Latency, r.Detail = time.Since(start), err.Error()
		return nil, r
	}
	if p.Protocol == TCP {
		// Closing resets: nothing left in TIME_WAIT.
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	}
	h := &Held{l: l, probe: p, fd: fd}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		unix.Close(fd)
		r.Err = ErrClosed
		return nil, r
	}
	if l.held == nil {
		l.held = map[*Held]struct{}{}
	}
	l.held[h] = struct{}{}
	l.mu.Unlock()
	r = h.Check(ctx)
	if !r.Connected {
		h.Close()
		return nil, r
	}
	return h, r
}

func (l *Lab) deadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(l.cfg.ProbeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// CheckHeld checks connections, up to Config.Parallelism at a time, and
// returns one Result per connection in input order (see Held.Check). An
// empty input returns an empty slice.
func (l *Lab) CheckHeld(ctx context.Context, held []*Held) []Result {
	res := make([]Result, len(held))
	l.parallel(len(held), func(i int) { res[i] = held[i].Check(ctx) })
	return res
}

// Check sends a random token over the connection and waits, at most
// Config.ProbeTimeout, for its echo (UDP resends it once half-way):
// Connected when it came back. A connection that failed a Check is not
// used again (its stream could hold a late echo): later Checks report the
// first failure at once. After Close, Err is ErrClosed.
func (h *Held) Check(ctx context.Context) Result {
	r := Result{Probe: h.probe}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.fd < 0:
		r.Err = ErrClosed
		return r
	case h.failed != "":
		r.Detail = "failed earlier: " + h.failed
		return r
	case ctx.Err() != nil:
		r.Err = ctx.Err()
		return r
	}
	deadline := h.l.deadline(ctx)
	token := make([]byte, 16)
	for i := range token {
		token[i] = byte(rand.Uint32())
	}
	start := time.Now()
	resend := time.Time{}
	if h.probe.Protocol == UDP {
		resend = start.Add(deadline.Sub(start) / 2)
	}
	var got []byte
	buf := make([]byte, 256)
	_, err := unix.Write(h.fd, token)
	for err == nil {
		until := deadline
		if !resend.IsZero() {
			until = resend
		}
		var ready bool
		ready, err = wait(h.fd, unix.POLLIN, until)
		if err != nil {
			break
		}
		if !ready {
			if resend.IsZero() {
				err = errors.New(timeout)
				break
			}
			resend = time.Time{}
			_, err = unix.Write(h.fd, token)
			continue
		}
		var n int
		n, err = unix.Read(h.fd, buf)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			err = nil
			continue
		case err != nil:
		case n == 0:
			err = errors.New("closed by the peer")
		case h.probe.Protocol == UDP:
			if bytes.Equal(buf[:n], token) {
				r.Latency, r.Connected = time.Since(start), true
				return r
			}
		default:
			got = append(got, buf[:n]...)
			if bytes.Equal(got, token) {
				r.Latency, r.Connected = time.Since(start), true
				return r
			}
			if len(got) >= len(token) {
				err = errors.New("echo does not match")
			}
		}
	}
	r.Latency, r.Detail = time.Since(start), err.Error()
	h.failed = r.Detail
	return r
}

// Close closes the connection (a TCP reset). Closing again does nothing.
func (h *Held) Close() error {
	h.mu.Lock()
	if h.fd < 0 {
		h.mu.Unlock()
		return nil
	}
	err := unix.Close(h.fd)
	h.fd = -1
	h.mu.Unlock()
	// Lab.Close takes l.mu, then h.mu: never the other way round.
	h.l.mu.Lock()
	delete(h.l.held, h)
	h.l.mu.Unlock()
	return err
}
