package conntrack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
)

// Mode says what happens to established connections when a change stops
// allowing them.
type Mode string

const (
	// ModeFollow cuts them: every packet is judged by the current policy.
	ModeFollow Mode = "follow"
	// ModeKeep keeps them: only new connections see the new policy.
	ModeKeep Mode = "keep"
)

// ParseMode parses "follow" or "keep"; "" is ModeFollow.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeFollow:
		return ModeFollow, nil
	case ModeKeep:
		return ModeKeep, nil
	}
	return "", fmt.Errorf("established-connections mode %q: want %q or %q", s, ModeFollow, ModeKeep)
}

// Metrics receives what a Follower does. Implementations must be safe for
// use from the goroutine that calls Sync and Apply.
type Metrics interface {
	// ObserveCut reports n > 0 connections cut after one change, and the
	// time from the change (backend.ChangeTime of the Sync or Apply's
	// context, else the start of the call) to the end of their deletion.
	ObserveCut(n int, sinceChange time.Duration)
	// IncError counts a failure to follow a change (it did not fail the
	// change itself).
	IncError()
}

// Table is the connection-tracking table of one network namespace.
type Table interface {
	// DeleteMatching dumps the entries of one address family
	// (unix.AF_INET or unix.AF_INET6) once and deletes each one match
	// returns true for. It returns how many it deleted; an entry already
	// gone counts as deleted. It is called for the two families at once,
	// from two goroutines.
	DeleteMatching(family uint8, match func(*netlink.ConntrackFlow) bool) (int, error)
	// LocalAddrs returns the addresses of the namespace itself (the node's).
	LocalAddrs() ([]netip.Addr, error)
}

// Config configures a Follower. The zero value follows in the calling
// thread's network namespace.
type Config struct {
	// Mode is ModeFollow when empty.
	Mode Mode
	// NetNS is a file descriptor of the network namespace whose
	// connection-tracking table to follow: the wrapped backend's. 0 means
	// the namespace of the calling thread at New. Ignored when Table is set.
	NetNS int
	// Table replaces the netlink table (tests); New then changes nothing in
	// any namespace.
	Table Table
	// KeepTCPPickup leaves the namespace's net.netfilter.nf_conntrack_tcp_loose
	// as it is. By default New sets it to 0 (see the package documentation:
	// otherwise a cut TCP connection is picked up again by its next packet
	// in the direction the policy allows, and revives).
	KeepTCPPickup bool
	// Metrics, when set, receives cuts and errors.
	Metrics Metrics
	// Logger receives failures (level 0) and cuts (level 2). Discarded when
	// unset.
	Logger logr.Logger
	// Now is time.Now when nil.
	Now func() time.Time
}

// Follower is a backend.Backend that programs the wrapped backend and then
// cuts the established connections the new policy denies. Like any backend
// its Sync and Apply are called from one goroutine at a time.
type Follower struct {
	be    backend.Backend
	cfg   Config
	table Table
	close func()

	mu     sync.Mutex
	model  *memory.Backend
	synced bool // the model holds what be holds
}

var _ backend.Backend = (*Follower)(nil)

// New wraps be. With ModeFollow it sets nf_conntrack_tcp_loose to 0 in
// cfg.NetNS (unless cfg.KeepTCPPickup) and opens netlink sockets there
// (unless cfg.Table is set); Close releases them. With ModeKeep it opens
// and changes nothing and passes every call through.
func New(be backend.Backend, cfg Config) (*Follower, error) {
	if be == nil {
		return nil, errors.New("conntrack: nil backend")
	}
	mode, err := ParseMode(string(cfg.Mode))
	if err != nil {
		return nil, fmt.Errorf("conntrack: Config.Mode: %w", err)
	}
	cfg.Mode = mode
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger.GetSink() == nil {
		cfg.Logger = logr.Discard()
	}
	f := &Follower{be: be, cfg: cfg, table: cfg.Table, close: func() {}, model: memory.New(memory.Config{})}
	if mode == ModeFollow && f.table == nil {
		if !cfg.KeepTCPPickup {
			if err := disableTCPPickup(cfg.NetNS); err != nil {
				return nil, fmt.Errorf("conntrack: only SYNs may start TCP connections (%s=0): %w", tcpLoose, err)
			}
		}
		t, err := openNetlink(cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("conntrack: %w", err)
		}
		f.table, f.close = t, t.close
	}
	return f, nil
}

// Close releases the netlink socket. It does not close the wrapped backend.
func (f *Follower) Close() error {
	f.close()
	f.close = func() {}
	return nil
}

// Unwrap returns the wrapped backend.
func (f *Follower) Unwrap() backend.Backend { return f.be }

// Sync syncs the wrapped backend, then (ModeFollow) cuts every tracked
// connection the snapshot denies. It returns what the wrapped Sync returned.
func (f *Follower) Sync(ctx context.Context, snap *ir.Snapshot) (backend.SyncReport, error) {
	start := f.cfg.Now()
	rep, err := f.be.Sync(ctx, snap)
	if err != nil || f.cfg.Mode == ModeKeep {
		return rep, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, merr := f.model.Sync(ctx, snap); merr != nil {
		f.synced = false
		f.fail(fmt.Errorf("conntrack: model of generation %d: %w", snap.Generation, merr))
		return rep, nil
	}
	f.synced = true
	f.follow(ctx, start, nil, true)
	return rep, nil
}

// Apply applies d to the wrapped backend, then (ModeFollow) cuts the
// tracked connections of the endpoints d may change that the new state
// denies. It returns what the wrapped Apply returned.
func (f *Follower) Apply(ctx context.Context, d *ir.Delta) error {
	start := f.cfg.Now()
	if err := f.be.Apply(ctx, d); err != nil || f.cfg.Mode == ModeKeep {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.synced {
		// The model lost track (see Sync); the next Sync catches up.
		return nil
	}
	before := f.model.Affected(d)
	if err := f.model.Apply(ctx, d); err != nil {
		f.synced = false
		f.fail(fmt.Errorf("conntrack: model of delta %d→%d: %w", d.Base, d.Generation, err))
		return nil
	}
	after := f.model.Affected(d)
	if len(before)+len(after) == 0 {
		return nil
	}
	affected := make(map[netip.Addr]bool, len(before)+len(after))
	for _, ip := range before {
		affected[ip] = true
	}
	for _, ip := range after {
		affected[ip] = true
	}
	f.follow(ctx, start, affected, false)
	return nil
}

// Cleanup cleans the wrapped backend up. Connections are left alone:
// nothing is enforced afterwards.
func (f *Follower) Cleanup(ctx context.Context) error {
	err := f.be.Cleanup(ctx)
	if err == nil && f.cfg.Mode == ModeFollow {
		f.mu.Lock()
		defer f.mu.Unlock()
		_ = f.model.Cleanup(ctx)
		f.synced = false
	}
	return err
}

// follow cuts the denied entries touching affected (every entry when all).
func (f *Follower) follow(ctx context.Context, start time.Time, affected map[netip.Addr]bool, all bool) {
	local, err := f.table.LocalAddrs()
	if err != nil {
		f.fail(fmt.Errorf("conntrack: addresses of the node: %w", err))
		return
	}
	j := NewJudge(f.model, local, affected, all)
	var cuts [2]int
	var errs [2]error
	var wg sync.WaitGroup
	for i, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if !all && !j.families[i] {
			continue
		}
		wg.Go(func() {
			n, err := f.table.DeleteMatching(fam, j.Cut)
			cuts[i] = n
			if err != nil {
				errs[i] = fmt.Errorf("conntrack: %s entries: %w", famName(fam), err)
			}
		})
	}
	wg.Wait()
	cut := cuts[0] + cuts[1]
	if err := errors.Join(errs[:]...); err != nil {
		f.fail(err)
	}
	if cut == 0 {
		return
	}
	since := start
	if t, ok := backend.ChangeTime(ctx); ok {
		since = t
	}
	took := f.cfg.Now().Sub(since)
	if f.cfg.Metrics != nil {
		f.cfg.Metrics.ObserveCut(cut, took)
	}
	f.cfg.Logger.V(2).Info("Cut established connections the policy now denies", "connections", cut, "sinceChange", took)
}

func (f *Follower) fail(err error) {
	f.cfg.Logger.Error(err, "Established connections may not follow the policy")
	if f.cfg.Metrics != nil {
		f.cfg.Metrics.IncError()
	}
}

func famIndex(fam uint8) int {
	if fam == unix.AF_INET6 {
		return 1
	}
	return 0
}

func famName(fam uint8) string {
	if fam == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// Judge decides which connection-tracking entries to cut. It is exported
// for benchmarks and for callers that list entries themselves.
type Judge struct {
	model    *memory.Backend
	local    map[netip.Addr]bool
	affected map[netip.Addr]bool
	all      bool
	families [2]bool
}

// NewJudge returns a Judge over model. local are the node's own addresses;
// affected the endpoint addresses whose entries are re-evaluated (all: every
// entry is).
func NewJudge(model *memory.Backend, local []netip.Addr, affected map[netip.Addr]bool, all bool) *Judge {
	j := &Judge{model: model, local: make(map[netip.Addr]bool, len(local)), affected: affected, all: all}
	for _, ip := range local {
		j.local[ip.Unmap()] = true
	}
	for ip := range affected {
		j.families[famIndex(familyOf(ip))] = true
	}
	return j
}

func familyOf(ip netip.Addr) uint8 {
	if ip.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Flow returns the flow of an entry as the packet filter judged its first
// packet (original source; destination and port after destination NAT),
// and false for an entry of a protocol policy does not name.
func Flow(e *netlink.ConntrackFlow) (memory.Flow, bool) {
	var proto ir.Protocol
	switch e.Forward.Protocol {
	case unix.IPPROTO_TCP:
		proto = ir.TCP
	case unix.IPPROTO_UDP:
		proto = ir.UDP
	case unix.IPPROTO_SCTP:
		proto = ir.SCTP
	default:
		return memory.Flow{}, false
	}
	src, ok := addrOf(e.Forward.SrcIP)
	if !ok {
		return memory.Flow{}, false
	}
	// The reply comes from where the connection really goes.
	dst, ok := addrOf(e.Reverse.SrcIP)
	port := e.Reverse.SrcPort
	if !ok {
		if dst, ok = addrOf(e.Forward.DstIP); !ok {
			return memory.Flow{}, false
		}
		port = e.Forward.DstPort
	}
	return memory.Flow{Src: src, Dst: dst, Protocol: proto, Port: port}, true
}

func addrOf(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// Cut reports whether e must be deleted: it touches an affected endpoint,
// does not start at the node itself, and the model denies its flow.
func (j *Judge) Cut(e *netlink.ConntrackFlow) bool {
	fl, ok := Flow(e)
	if !ok || j.local[fl.Src] {
		return false
	}
	if !j.all && !j.affected[fl.Src] && !j.affected[fl.Dst] {
		return false
	}
	return !j.model.Evaluate(fl).Allowed
}
