package nftables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

// DefaultTableName is the table used when Config.TableName is empty.
const DefaultTableName = "palisade"

// Config configures a Backend. The zero value works: table inet palisade in
// the caller's network namespace, base chains at the filter priority.
type Config struct {
	// TableName is the name of our inet table; DefaultTableName when empty.
	// Several instances (tests, agents) must use different names.
	TableName string
	// NetNS is a file descriptor of the network namespace to program; 0
	// means the namespace of the calling thread at New.
	NetNS int
	// Priority is added to the filter priority (0): the egress base chains
	// hook at Priority, the ingress one at Priority+1.
	Priority int32
	// Log turns on the kernel's verdict log (NFLOG) and says what it
	// records; the zero value logs nothing. See package verdictlog.
	Log verdictlog.Logging
}

// Backend programs the IR into one nftables table over netlink.
// It implements backend.Backend; its methods are safe for concurrent use
// (they serialise).
type Backend struct {
	cfg Config

	mu sync.Mutex
	c  kernelConn
	st *state // nil before the first Sync
	// dirty: st may not match the kernel (a failed Apply); Apply refuses
	// and the next Sync reads everything.
	dirty bool
	// kgen is the ruleset generation right after our last commit; when the
	// kernel still reports it, nobody changed anything since, and Sync can
	// trust st instead of reading the table back.
	kgen      uint32
	kgenKnown bool

	// rc is Counters' own netlink connection, so that a long read of the
	// counters never holds mu (nil: Counters uses c under mu).
	rmu sync.Mutex
	rc  kernelConn
}

var _ backend.Backend = (*Backend)(nil)

// kernelConn is what the backend needs from the kernel: the ruleset
// generation, a read of our table, and one atomic batch (applied whole or
// not at all; with checkGen, only while the generation is still gen). conn
// is the netlink implementation; the tests' fakeKernel applies batches to
// an in-memory table, so that the diff, read and batch logic runs without
// root.
type kernelConn interface {
	generation() (uint32, error)
	// tableExists reports whether the table is there, without reading it.
	tableExists(table string) (bool, error)
	// read dumps our table of family (unix.NFPROTO_INET or
	// unix.NFPROTO_BRIDGE).
	read(family byte, table string) (*kernelState, error)
	// readRules returns the table's chains and rules with their counters
	// (Counters); no table, no chains. It stops with ctx's error.
	readRules(ctx context.Context, table string) ([]*chainModel, error)
	commit(msgs []netlink.Message, gen uint32, checkGen bool) (uint32, error)
	close() error
}

var _ kernelConn = (*conn)(nil)

// New opens a netlink socket in cfg.NetNS. It does not touch the ruleset.
func New(cfg Config) (*Backend, error) {
	if cfg.TableName == "" {
		cfg.TableName = DefaultTableName
	}
	if len(cfg.TableName) > 255 || strings.ContainsRune(cfg.TableName, 0) {
		return nil, fmt.Errorf("nftables: invalid table name %q", cfg.TableName)
	}
	if err := cfg.Log.Validate(); err != nil {
		return nil, fmt.Errorf("nftables: Config.Log: %w", err)
	}
	c, err := dial(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	rc, err := dial(cfg.NetNS)
	if err != nil {
		_ = c.close()
		return nil, err
	}
	return &Backend{cfg: cfg, c: c, rc: rc}, nil
}

// Close releases the netlink sockets. The table stays (see Cleanup).
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if b.rc != nil {
		_ = b.rc.close()
	}
	return b.c.close()
}

// Sync makes our table equal to snap in one atomic batch. When nothing in
// the namespace's ruleset changed since our last commit (same generation),
// it diffs snap against the state it programmed; otherwise it reads the
// table back and diffs against that, listing in Repairs what differed from
// the state it had programmed. It never deletes the table, nor a base chain
// whose hook and priority are right. An invalid snapshot changes nothing.
func (b *Backend) Sync(ctx context.Context, snap *ir.Snapshot) (backend.SyncReport, error) {
	if snap == nil {
		return backend.SyncReport{}, fmt.Errorf("nftables: Sync: %w: nil snapshot", ir.ErrInvalid)
	}
	// Both paths of sync check the whole snapshot against the IR contract
	// before anything is sent: the fast one as the delta from the state it
	// holds (what the snapshot leaves unchanged was checked when it was
	// programmed), the other by building it from nothing.
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if err = ctx.Err(); err != nil {
			return backend.SyncReport{}, err
		}
		var rep backend.SyncReport
		rep, err = b.sync(snap)
		if errors.Is(err, errGenChanged) || errors.Is(err, errDumpInterrupted) {
			b.kgenKnown = false
			continue // someone else committed meanwhile: read again
		}
		return rep, err
	}
	return backend.SyncReport{}, err
}

func (b *Backend) sync(snap *ir.Snapshot) (backend.SyncReport, error) {
	g0, err := b.c.generation()
	if err != nil {
		return backend.SyncReport{}, err
	}
	if b.st != nil && !b.dirty && b.kgenKnown && g0 == b.kgen && idsInOrder(snap) {
		if d, ok := b.st.deltaTo(snap); ok {
			if err := b.st.check(d); err != nil {
				return backend.SyncReport{}, fmt.Errorf("nftables: snapshot %d: %w", snap.Generation, err)
			}
			t := newTx(b.cfg.TableName)
			if err := b.st.apply(d, t); err != nil {
				b.dirty = true
				return backend.SyncReport{}, fmt.Errorf("nftables: snapshot %d: %w", snap.Generation, err)
			}
			n, err := b.commit(t, g0, true)
			if err != nil {
				b.dirty = true
				return backend.SyncReport{}, err
			}
			return backend.SyncReport{Generation: snap.Generation, Changes: n}, nil
		}
	}

	have, err := b.c.read(unix.NFPROTO_INET, b.cfg.TableName)
	if err != nil {
		return backend.SyncReport{}, err
	}
	haveBr, err := b.c.read(unix.NFPROTO_BRIDGE, b.cfg.TableName)
	if err != nil {
		return backend.SyncReport{}, err
	}
	fresh, err := buildLogging(snap, b.cfg.Priority, b.cfg.Log)
	if err != nil {
		return backend.SyncReport{}, fmt.Errorf("nftables: snapshot %d: %w", snap.Generation, err)
	}
	var repairs []string
	if b.st != nil && !b.dirty {
		repairs = append(diffModels(have, b.st.m, nil), diffBridge(haveBr, b.st.bm, nil)...)
	}
	t := newTx(b.cfg.TableName)
	diffModels(have, fresh.m, t)
	diffBridge(haveBr, fresh.bm, t)
	n, err := b.commit(t, g0, true)
	if err != nil {
		return backend.SyncReport{}, err
	}
	b.st, b.dirty = fresh, false
	return backend.SyncReport{Generation: snap.Generation, Changes: n, Repairs: repairs}, nil
}

// commit sends t (nothing when empty) and tracks the generation.
func (b *Backend) commit(t *tx, gen uint32, checkGen bool) (int, error) {
	if t.empty() {
		if checkGen {
			b.kgen, b.kgenKnown = gen, true
		}
		return 0, nil
	}
	n := t.changes()
	msgs := t.messages()
	g1, err := b.c.commit(msgs, gen, checkGen)
	if err != nil {
		b.kgenKnown = false
		return 0, err
	}
	b.kgen, b.kgenKnown = g1, checkGen && g1 == gen+1
	return n, nil
}

// Apply applies a delta to the state of the last Sync or Apply in one batch:
// set elements, map entries and the chains of the rule lists and profiles it
// touches. It fails, changing nothing, when d.Base is not the generation
// held or d does not fit it (what it changes or removes must exist, what it
// adds must not); after a kernel error the caller must Sync.
func (b *Backend) Apply(ctx context.Context, d *ir.Delta) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var held uint64
	if b.st != nil {
		held = b.st.gen
	}
	if err := backend.CheckApply(ctx, "nftables", d, b.st != nil, b.dirty, held); err != nil {
		return err
	}
	if err := b.st.check(d); err != nil {
		return fmt.Errorf("nftables: delta %d→%d: %w", d.Base, d.Generation, err)
	}
	t := newTx(b.cfg.TableName)
	if err := b.st.apply(d, t); err != nil {
		b.dirty = true
		return fmt.Errorf("nftables: delta %d→%d: %w", d.Base, d.Generation, err)
	}
	_, err := b.commit(t, b.kgen, b.kgenKnown)
	if errors.Is(err, errGenChanged) {
		// Someone else committed since our last batch: apply anyway, and
		// let the next Sync read the table back.
		_, err = b.commit(t, 0, false)
	}
	if err != nil {
		b.dirty = true
		return err
	}
	return nil
}

// Cleanup deletes our tables (inet, and bridge when source validation made
// it) and everything in them. It succeeds when they do not exist.
func (b *Backend) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st, b.dirty, b.kgenKnown = nil, false, false
	var errs []error
	for _, t := range []*tx{newTx(b.cfg.TableName), newTx(b.cfg.TableName).bridge()} {
		// One batch per table: deleting a table that is not there fails
		// the batch it is in.
		t.deleteTable()
		if _, err := b.c.commit(t.messages(), 0, false); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deltaTo computes the IR change from the state to snap. ok is false when
// the change does not fit a delta (a port set changed protocol or name, an
// address set its Hosts).
// idsInOrder reports whether every slice of snap is in strictly increasing
// ID order, as Snapshot documents and the engine emits. deltaTo needs it: a
// repeated ID would go unseen there (the full path's check reports it).
func idsInOrder(snap *ir.Snapshot) bool {
	return inOrder(snap.AddressSets, func(s *ir.AddressSet) string { return s.ID }) &&
		inOrder(snap.PortSets, func(s *ir.PortSet) string { return s.ID }) &&
		inOrder(snap.RuleLists, func(rl *ir.RuleList) string { return rl.ID }) &&
		inOrder(snap.Endpoints, func(ep *ir.Endpoint) string { return ep.ID })
}

func inOrder[T any](xs []T, id func(*T) string) bool {
	for i := 1; i < len(xs); i++ {
		if id(&xs[i-1]) >= id(&xs[i]) {
			return false
		}
	}
	return true
}

func (s *state) deltaTo(snap *ir.Snapshot) (*ir.Delta, bool) {
	d := &ir.Delta{Base: s.gen, Generation: snap.Generation}
	found := 0
	for i := range snap.AddressSets {
		set := &snap.AddressSets[i]
		have, ok := s.addr[set.ID]
		if !ok {
			d.AddedAddressSets = append(d.AddedAddressSets, *set)
			continue
		}
		found++
		if set.Hosts != s.hostsOf(set.ID) {
			return nil, false // the kind of its kernel sets changes
		}
		if added, removed := diffMembers(have, set.Members, unmapPrefix); len(added)+len(removed) > 0 {
			d.AddressSetChanges = append(d.AddressSetChanges, ir.AddressSetChange{ID: set.ID, Added: added, Removed: removed})
		}
	}
	d.RemovedAddressSets = removedIDs(s.addr, found, len(snap.AddressSets), func(i int) string { return snap.AddressSets[i].ID })

	found = 0
	unmap := func(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) }
	for i := range snap.PortSets {
		set := &snap.PortSets[i]
		have, ok := s.ports[set.ID]
		if !ok {
			d.AddedPortSets = append(d.AddedPortSets, *set)
			continue
		}
		found++
		if have.proto != set.Protocol || have.name != set.PortName {
			return nil, false
		}
		if added, removed := diffMembers(have.members, set.Members, unmap); len(added)+len(removed) > 0 {
			d.PortSetChanges = append(d.PortSetChanges, ir.PortSetChange{ID: set.ID, Added: added, Removed: removed})
		}
	}
	d.RemovedPortSets = removedIDs(s.ports, found, len(snap.PortSets), func(i int) string { return snap.PortSets[i].ID })

	found = 0
	for i := range snap.RuleLists {
		rl := &snap.RuleLists[i]
		have := s.lists[rl.ID]
		if have != nil {
			found++
		}
		if have == nil || !ruleListEqual(have, rl) {
			d.RuleLists = append(d.RuleLists, *rl)
		}
	}
	d.RemovedRuleLists = removedIDs(s.lists, found, len(snap.RuleLists), func(i int) string { return snap.RuleLists[i].ID })

	found = 0
	for i := range snap.Endpoints {
		ep := &snap.Endpoints[i]
		have := s.eps[ep.ID]
		if have != nil {
			found++
		}
		if have == nil || !have.ep.Equal(ep) {
			d.Endpoints = append(d.Endpoints, *ep)
		}
	}
	d.RemovedEndpoints = removedIDs(s.eps, found, len(snap.Endpoints), func(i int) string { return snap.Endpoints[i].ID })
	return d, true
}

// removedIDs lists, sorted, the keys of have that none of the n IDs of the
// snapshot names; found of those n are keys of have (so when found equals
// len(have), nothing was removed and nothing is built).
func removedIDs[V any](have map[string]V, found, n int, id func(int) string) []string {
	if found == len(have) {
		return nil
	}
	seen := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		seen[id(i)] = true
	}
	var out []string
	for k := range have {
		if !seen[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// diffMembers compares a member map with a member list.
func diffMembers[T comparable](have map[T]struct{}, want []T, norm func(T) T) (added, removed []T) {
	same := len(have) == len(want)
	for _, m := range want {
		if _, ok := have[norm(m)]; !ok {
			added = append(added, m)
			same = false
		}
	}
	if same {
		return nil, nil
	}
	wantSet := make(map[T]struct{}, len(want))
	for _, m := range want {
		wantSet[norm(m)] = struct{}{}
	}
	for m := range have {
		if _, ok := wantSet[m]; !ok {
			removed = append(removed, m)
		}
	}
	return added, removed
}

func ruleListEqual(a, b *ir.RuleList) bool { return a.Equal(b) }

var _ backend.Verifier = (*Backend)(nil)

// Installed reports whether our table exists in the namespace.
func (b *Backend) Installed(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c.tableExists(b.cfg.TableName)
}

// Drift reads our table back and lists what differs from the state of the
// last Sync or Apply.
func (b *Backend) Drift(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.st == nil:
		return nil, fmt.Errorf("nftables: Drift before the first Sync: %w", backend.ErrNotSynced)
	case b.dirty:
		return nil, fmt.Errorf("nftables: Drift: %w", backend.ErrDirty)
	}
	have, err := b.c.read(unix.NFPROTO_INET, b.cfg.TableName)
	if err != nil {
		return nil, err
	}
	haveBr, err := b.c.read(unix.NFPROTO_BRIDGE, b.cfg.TableName)
	if err != nil {
		return nil, err
	}
	return append(diffModels(have, b.st.m, nil), diffBridge(haveBr, b.st.bm, nil)...), nil
}

var _ backend.DriftWatcher = (*Backend)(nil)

// Changed asks the kernel for the namespace's ruleset generation (one
// netlink round trip) and reports whether it moved since our last commit:
// someone else committed, to our table or to another one of the namespace.
// It is false before the first Sync and after Cleanup, and true when our
// last change failed or was committed over someone else's (the generation
// of our own commit is then unknown). The Sync it calls for reads our table
// back; when only another table changed, that Sync changes nothing and
// records the new generation, so Changed is false again.
func (b *Backend) Changed(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.st == nil:
		return false, nil
	case b.dirty || !b.kgenKnown:
		return true, nil
	}
	g, err := b.c.generation()
	if err != nil {
		return false, err
	}
	return g != b.kgen, nil
}
