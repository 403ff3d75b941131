package verdictlog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// DefaultQueue is Config.Queue when zero.
const DefaultQueue = 4096

// copyRange is how much of each packet the kernel copies to us: the IP
// header with IPv6 extension headers, and the ports.
const copyRange = 256

// The kernel batches log messages into one netlink message of up to
// batchBytes, sent when it holds batchRecords or batchCentis hundredths of
// a second after its first: one wakeup of the reader per batch instead of
// one per logged packet, for a delay of at most 10 ms.
const (
	batchBytes   = 64 << 10
	batchRecords = 64
	batchCentis  = 1
)

// Counter is a count that only goes up.
type Counter interface{ Add(float64) }

// Instruments are the reader's counts; a nil field is not counted.
type Instruments struct {
	// Records counts the records emitted, by verdict ("allow", "deny").
	Records func(verdict string) Counter
	// Dropped counts records dropped because the queue was full.
	Dropped Counter
	// Overruns counts the times the socket's buffer overflowed (ENOBUFS):
	// the kernel dropped log messages, never packets.
	Overruns Counter
	// Undecodable counts messages that were not ours or did not decode.
	Undecodable Counter
}

// Config configures a Reader. NetNS 0 is the caller's network namespace.
type Config struct {
	// NetNS is a file descriptor of the backend's network namespace; 0 is
	// the namespace of the calling thread.
	NetNS int
	// Group is the NFLOG group the backend logs to (Logging.Group).
	Group uint16
	// Node is Record.Node.
	Node string
	// Resolver names rules and addresses; required.
	Resolver Resolver
	// Queue bounds the records received but not yet emitted; DefaultQueue
	// when 0. Past it, records are dropped and counted.
	Queue int
	// Instruments receive the counts (Stats holds them too).
	Instruments Instruments
	// Now is the clock of Record.Time; time.Now when nil.
	Now func() time.Time
}

// Event is a record with what the kernel logged beyond the file schema: the
// addresses, the source port (which identifies a probe) and the prefix.
type Event struct {
	Record
	Packet Packet
	Ref    Ref
}

// Stats are the reader's counts so far. Received is Emitted + Dropped +
// Undecodable + Queued, once receiving has stopped.
type Stats struct {
	Received, Emitted, Dropped, Overruns, Undecodable uint64
	// Queued is the records in the queue: received, not yet emitted.
	Queued int
}

// Reader reads one NFLOG group. Open binds it; Run emits.
type Reader struct {
	cfg  Config
	conn *netlink.Conn
	q    chan Event

	received, emitted, dropped, overruns, undecodable atomic.Uint64
	closeOnce                                         sync.Once
}

// Open subscribes to cfg.Group in cfg.NetNS. The kernel starts queueing
// log messages for the reader at once; Run reads them. It fails when the
// group is bound by another socket (EBUSY) or cfg lacks a Resolver.
func Open(cfg Config) (*Reader, error) {
	if cfg.Resolver == nil {
		return nil, errors.New("verdictlog: Open: Config.Resolver is nil")
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: cfg.NetNS})
	if err != nil {
		return nil, fmt.Errorf("verdictlog: netlink dial: %w", err)
	}
	_ = c.SetReadBuffer(4 << 20)
	req := netlink.Message{
		Header: netlink.Header{Type: nfnlSubsysULOG<<8 | nfulnlMsgConfig, Flags: netlink.Request | netlink.Acknowledge},
		Data: configMessage(cfg.Group, cfgCmd(nfulnlCfgCmdBind), cfgMode(copyRange),
			cfgU32(nfulaCfgNLBufSiz, batchBytes), cfgU32(nfulaCfgQThresh, batchRecords), cfgU32(nfulaCfgTimeout, batchCentis)),
	}
	if _, err := c.Execute(req); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("verdictlog: bind NFLOG group %d: %w", cfg.Group, err)
	}
	return &Reader{cfg: cfg, conn: c, q: make(chan Event, cfg.Queue)}, nil
}

// Close unbinds the group and releases the socket; Run returns. It is safe
// to call more than once.
func (r *Reader) Close() error {
	var err error
	r.closeOnce.Do(func() { err = r.conn.Close() })
	return err
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats {
	return Stats{Received: r.received.Load(), Emitted: r.emitted.Load(), Dropped: r.dropped.Load(),
		Overruns: r.overruns.Load(), Undecodable: r.undecodable.Load(), Queued: len(r.q)}
}

// Run reads the group and calls emit, from Run's goroutine, for each
// record in the order received, until ctx is done or the socket fails. It
// closes the reader when it returns, and returns nil when ctx ended it.
// emit may be slow: the socket is read by another goroutine into the
// bounded queue, which drops (and counts) what does not fit.
func (r *Reader) Run(ctx context.Context, emit func(*Event)) error {
	done := make(chan error, 1)
	go func() { done <- r.receive() }()
	defer r.Close()
	for {
		select {
		case <-ctx.Done():
			_ = r.Close()
			<-done
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case ev := <-r.q:
			r.complete(&ev)
			r.emitted.Add(1)
			if r.cfg.Instruments.Records != nil {
				if c := r.cfg.Instruments.Records(ev.Verdict); c != nil {
					c.Add(1)
				}
			}
			emit(&ev)
		}
	}
}

// receive reads the socket until it is closed.
func (r *Reader) receive() error {
	for {
		msgs, err := r.conn.Receive()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				r.overruns.Add(1)
				count(r.cfg.Instruments.Overruns)
				continue
			}
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADF) {
				return nil
			}
			return fmt.Errorf("verdictlog: receive: %w", err)
		}
		now := r.cfg.Now()
		for _, m := range msgs {
			if m.Header.Type != msgTypePacket {
				continue
			}
			r.received.Add(1)
			ev, ok := r.decode(m.Data, now)
			if !ok {
				r.undecodable.Add(1)
				count(r.cfg.Instruments.Undecodable)
				continue
			}
			select {
			case r.q <- ev:
			default:
				r.dropped.Add(1)
				count(r.cfg.Instruments.Dropped)
			}
		}
	}
}

func count(c Counter) {
	if c != nil {
		c.Add(1)
	}
}

// decode turns one message into an event without names (complete adds
// them, off the socket's goroutine).
func (r *Reader) decode(b []byte, now time.Time) (Event, bool) {
	m, err := DecodeMessage(b)
	if err != nil || m.Group != r.cfg.Group {
		return Event{}, false
	}
	ref, err := ParsePrefix(m.Prefix)
	if err != nil {
		return Event{}, false
	}
	p, err := DecodePacket(m.Payload)
	if err != nil {
		return Event{}, false
	}
	return Event{Record: Record{Time: now.UTC()}, Packet: p, Ref: ref}, true
}

// complete fills the record's fields from the packet and the resolver.
func (r *Reader) complete(ev *Event) {
	res := r.cfg.Resolver
	rec := &ev.Record
	rec.Node = r.cfg.Node
	rec.Src = r.name(ev.Packet.Src)
	rec.Dst = r.name(ev.Packet.Dst)
	rec.Port = ev.Packet.DstPort
	rec.Protocol = ProtocolName(ev.Packet.Proto)
	rec.Verdict = VerdictDeny
	if ev.Ref.Allow {
		rec.Verdict = VerdictAllow
	}
	tier, policy, rule, ok := res.Decision(ev.Ref)
	if !ok {
		tier, policy, rule = "", "", ev.Ref.List+":"+strconv.Itoa(ev.Ref.Rule)
	}
	rec.Tier, rec.Policy, rec.Rule = tier, policy, rule
}

func (r *Reader) name(a netip.Addr) string {
	a = a.Unmap()
	if n, ok := r.cfg.Resolver.Name(a); ok {
		return n
	}
	return a.String()
}
