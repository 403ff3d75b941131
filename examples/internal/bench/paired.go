package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
)

// path is one client→server TCP path in the lab.
type path struct {
	client string // the client pod's lab name
	server netip.Addr
	port   uint16
}

func (p path) String() string { return fmt.Sprintf("%s → %s:%d", p.client, p.server, p.port) }

// The two sides of a paired measurement.
const (
	sideTest = 0 // the path through the node under test
	sideRef  = 1 // the same path through a node with no filter
)

// pairedMeter measures two paths of identical shape, one through the
// node under test and one through a reference node, interleaved: each
// latency round connects once on each side (in alternating order) and the
// connection-rate series alternates the sides in short slices. Whatever
// the machine does meanwhile (other load, frequency changes, the
// collector) falls on both sides alike, so their difference is the
// filter's cost rather than the drift between two series measured one
// after the other.
type pairedMeter struct {
	l        *lab.Lab
	paths    [2]path
	samples  int
	parallel int
	duration time.Duration
}

// connectTimeout bounds each measured connect: a dropped SYN (its first
// retry is a second later) fails the connect quickly instead of stalling a
// worker for a second of a series that lasts two.
const connectTimeout = 100 * time.Millisecond

// socketBatch is how many client sockets one visit of a namespace opens.
const socketBatch = 64

// sockets hands out client sockets of one path, opened in batches inside
// its client's namespace, blocking, closing with a reset (no TIME_WAIT),
// and timing out after connectTimeout.
type sockets struct {
	l    *lab.Lab
	p    path
	free []int
}

func (s *sockets) next() (int, error) {
	if len(s.free) == 0 {
		fds, err := s.l.Sockets(s.p.client, socketBatch, unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			return -1, err
		}
		tv := unix.NsecToTimeval(connectTimeout.Nanoseconds())
		for i, fd := range fds {
			err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			if err == nil {
				err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
			}
			if err != nil {
				for _, fd := range fds[i:] {
					unix.Close(fd)
				}
				return -1, fmt.Errorf("client socket options: %w", err)
			}
			s.free = append(s.free, fd)
		}
	}
	fd := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	return fd, nil
}

func (s *sockets) close() {
	for _, fd := range s.free {
		unix.Close(fd)
	}
	s.free = nil
}

// connect connects fd to the path's server and closes it, returning how
// long connect() took and its error. A connect that a signal interrupted
// (the Go runtime preempts with signals) is waited for to the end and
// reported with interrupted set: its duration includes the signal's
// handling, so latency series leave it out.
func (p path) connect(fd int) (d time.Duration, interrupted bool, err error) {
	defer unix.Close(fd)
	sa := &unix.SockaddrInet4{Port: int(p.port), Addr: p.server.As4()}
	start := time.Now()
	err = unix.Connect(fd, sa)
	d = time.Since(start)
	if !errors.Is(err, unix.EINTR) {
		return d, false, err
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		left := connectTimeout - time.Since(start)
		if left <= 0 {
			return time.Since(start), true, unix.ETIMEDOUT
		}
		ts := unix.NsecToTimespec(left.Nanoseconds())
		n, err := unix.Ppoll(fds, &ts, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return time.Since(start), true, err
		}
		if n == 0 {
			return time.Since(start), true, unix.ETIMEDOUT
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = unix.Errno(soerr)
		}
		return time.Since(start), true, err
	}
}

// measure runs a latency series and a connection-rate series on both
// sides. The conntrack tables are emptied first and the Go collector is
// off during the series (the lab's servers run in this process).
func (m *pairedMeter) measure(ctx context.Context) (DatapathRun, error) {
	var run DatapathRun
	if err := m.l.ForgetConnections(); err != nil {
		return run, err
	}
	// The servers must be up: a lab probe on each path starts them.
	for _, p := range m.paths {
		r := m.l.Probe(ctx, []lab.Probe{{Src: p.client, Dst: p.server, Port: p.port, Protocol: lab.TCP}})[0]
		if r.Err != nil {
			return run, r.Err
		}
		if !r.Connected {
			return run, fmt.Errorf("%s does not connect (%s)", p, r.Detail)
		}
	}
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(liveHeap() + gcHeadroom))

	if err := m.latency(ctx, &run); err != nil {
		return run, err
	}
	if err := m.rate(ctx, &run); err != nil {
		return run, err
	}
	return run, nil
}

// latency connects once per side per round, one connect at a time, on one
// thread pinned to one CPU, so that the whole handshake (which the kernel
// runs to completion inside connect() on a veth path) is measured on the
// same CPU on both sides. The side that goes first alternates.
func (m *pairedMeter) latency(ctx context.Context, run *DatapathRun) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if restore, err := pinToOneCPU(); err == nil {
		defer restore()
	} else {
		run.Notes = append(run.Notes, "latency series not pinned to a CPU: "+err.Error())
	}
	var socks [2]sockets
	for i, p := range m.paths {
		socks[i] = sockets{l: m.l, p: p}
		defer socks[i].close()
	}
	var lat [2][]time.Duration
	diffs := make([]time.Duration, 0, m.samples)
	deadline := time.Now().Add(latencyTimeLimit)
	for round := -warmup; round < m.samples; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			break
		}
		order := [2]int{sideTest, sideRef}
		if round%2 != 0 {
			order = [2]int{sideRef, sideTest}
		}
		var d [2]time.Duration
		var ok [2]bool
		interrupted := false
		for _, s := range order {
			fd, err := socks[s].next()
			if err != nil {
				return err
			}
			var intr bool
			d[s], intr, err = m.paths[s].connect(fd)
			ok[s] = err == nil
			interrupted = interrupted || intr
			if !ok[s] && round >= 0 {
				run.LatencyFailed++
				run.failed(err)
			}
		}
		if round < 0 {
			continue
		}
		if interrupted {
			run.LatencyInterrupted++
			continue
		}
		for s := range 2 {
			if ok[s] {
				lat[s] = append(lat[s], d[s])
			}
		}
		if ok[sideTest] && ok[sideRef] {
			diffs = append(diffs, d[sideTest]-d[sideRef])
		}
	}
	if len(lat[sideTest]) == 0 || len(lat[sideRef]) == 0 {
		return fmt.Errorf("no connect completed on %s or on %s (%d failed)", m.paths[sideTest], m.paths[sideRef], run.LatencyFailed)
	}
	run.LatencySamples = len(diffs)
	run.LatencyMedianMicros = micros(percentile(lat[sideTest], 50))
	run.LatencyP90Micros = micros(percentile(lat[sideTest], 90))
	run.ReferenceLatencyMedianMicros = micros(percentile(lat[sideRef], 50))
	run.ReferenceLatencyP90Micros = micros(percentile(lat[sideRef], 90))
	run.OverheadMedianMicros = round(run.LatencyMedianMicros-run.ReferenceLatencyMedianMicros, 2)
	run.PairedOverheadMedianMicros = micros(percentile(diffs, 50))
	return nil
}

// rateSlice is how long the connection-rate series stays on one side
// before switching.
const rateSlice = 50 * time.Millisecond

// rate runs m.parallel workers, each connecting and closing in a loop, for
// m.duration per side. The side alternates every rateSlice (test, ref,
// ref, test, …); a worker counts each connection for the side it targeted
// and each side's rate is its connections over the time its slices lasted.
func (m *pairedMeter) rate(ctx context.Context, run *DatapathRun) error {
	var (
		cur   atomic.Int32
		stop  atomic.Bool
		conns [2]atomic.Int64
		mu    sync.Mutex // guards werr and run's failure counts
		werr  error
	)
	var wg sync.WaitGroup
	for range m.parallel {
		wg.Go(func() {
			var socks [2]sockets
			for i, p := range m.paths {
				socks[i] = sockets{l: m.l, p: p}
				defer socks[i].close()
			}
			for n := 0; n < maxConnsPerWorker && !stop.Load(); n++ {
				s := cur.Load()
				fd, err := socks[s].next()
				if err != nil {
					mu.Lock()
					werr = errors.Join(werr, err)
					mu.Unlock()
					stop.Store(true)
					return
				}
				if _, _, err := m.paths[s].connect(fd); err == nil {
					conns[s].Add(1)
				} else {
					mu.Lock()
					run.ConnsFailed++
					run.failed(err)
					mu.Unlock()
				}
			}
		})
	}
	var spent [2]time.Duration
	slices := 2 * max(1, int(m.duration/rateSlice))
	for i := 0; i < slices && !stop.Load() && ctx.Err() == nil; i++ {
		s := int32(sideTest)
		if (i+1)/2%2 == 1 { // test, ref, ref, test, test, ref, …
			s = sideRef
		}
		start := time.Now()
		cur.Store(s)
		time.Sleep(rateSlice)
		spent[s] += time.Since(start)
	}
	stop.Store(true)
	wg.Wait()
	if werr != nil {
		return werr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	run.Conns, run.ReferenceConns = int(conns[sideTest].Load()), int(conns[sideRef].Load())
	run.ConnsSeconds = seconds(spent[sideTest])
	run.ConnsPerSecond = round(float64(run.Conns)/spent[sideTest].Seconds(), 1)
	run.ReferenceConnsPerSecond = round(float64(run.ReferenceConns)/spent[sideRef].Seconds(), 1)
	run.ConnsRatio = ratio(run.ConnsPerSecond, run.ReferenceConnsPerSecond)
	return nil
}

// failed counts a failed connect by its error.
func (r *DatapathRun) failed(err error) {
	if r.ConnectErrors == nil {
		r.ConnectErrors = map[string]int{}
	}
	r.ConnectErrors[err.Error()]++
}

// maxConnsPerWorker bounds each rate worker's loop whatever the clock.
const maxConnsPerWorker = 10_000_000

// pinToOneCPU restricts the calling (locked) thread to the first CPU it
// may run on and returns what restores its previous set.
func pinToOneCPU() (func(), error) {
	var prev unix.CPUSet
	if err := unix.SchedGetaffinity(0, &prev); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	cpu := -1
	for i := range 1024 {
		if prev.IsSet(i) {
			cpu = i
			break
		}
	}
	if cpu < 0 {
		return nil, errors.New("no CPU in the affinity set")
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return nil, fmt.Errorf("sched_setaffinity: %w", err)
	}
	return func() { _ = unix.SchedSetaffinity(0, &prev) }, nil
}
