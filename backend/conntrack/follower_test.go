package conntrack_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/conntrack"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// fakeTable is a connection-tracking table in memory.
type fakeTable struct {
	mu      sync.Mutex
	entries []*netlink.ConntrackFlow
	local   []netip.Addr
	err     error // returned by DeleteMatching, after deleting
	dumps   []uint8
}

func (t *fakeTable) DeleteMatching(family uint8, match func(*netlink.ConntrackFlow) bool) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dumps = append(t.dumps, family)
	kept, n := t.entries[:0:0], 0
	for _, e := range t.entries {
		if e.FamilyType == family && match(e) {
			n++
			continue
		}
		kept = append(kept, e)
	}
	t.entries = kept
	return n, t.err
}

func (t *fakeTable) LocalAddrs() ([]netip.Addr, error) { return t.local, nil }

func (t *fakeTable) has(e *netlink.ConntrackFlow) bool {
	for _, x := range t.entries {
		if x == e {
			return true
		}
	}
	return false
}

type fakeMetrics struct {
	cuts   []int
	since  []time.Duration
	errors int
}

func (m *fakeMetrics) ObserveCut(n int, d time.Duration) {
	m.cuts = append(m.cuts, n)
	m.since = append(m.since, d)
}
func (m *fakeMetrics) IncError() { m.errors++ }

// entry is a tracked connection src:sport → dst:dport; with nat set, the
// destination was rewritten to nat (the reply comes from nat).
func entry(proto uint8, src, dst string, dport uint16, nat ...string) *netlink.ConntrackFlow {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	r := d
	if len(nat) > 0 {
		r = netip.MustParseAddr(nat[0])
	}
	fam := uint8(unix.AF_INET)
	if s.Is6() {
		fam = unix.AF_INET6
	}
	return &netlink.ConntrackFlow{
		FamilyType: fam,
		Forward:    netlink.IPTuple{Protocol: proto, SrcIP: net.IP(s.AsSlice()), DstIP: net.IP(d.AsSlice()), SrcPort: 40000, DstPort: dport},
		Reverse:    netlink.IPTuple{Protocol: proto, SrcIP: net.IP(r.AsSlice()), DstIP: net.IP(s.AsSlice()), SrcPort: dport, DstPort: 40000},
	}
}

const (
	db, db6   = "10.0.0.1", "fd00::1"
	fe, fe6   = "10.0.0.2", "fd00::2"
	oth, oth6 = "10.0.0.3", "fd00::3"
	node      = "10.0.0.254"
	vip       = "10.96.0.10"
	outside   = "192.0.2.1"
)

// cluster: db accepts TCP/6379, UDP/53 and SCTP/9 from the set "fe" (fe
// and oth at first); every other pod is unrestricted.
func cluster() *ir.Snapshot {
	return &ir.Snapshot{
		Generation:  1,
		AddressSets: []ir.AddressSet{irtest.HostSet("fe", fe+"/32", fe6+"/128", oth+"/32", oth6+"/128")},
		RuleLists: []ir.RuleList{irtest.List("np-db", "NetworkPolicy", "ns", "db", ir.Ingress,
			irtest.Rule(0, ir.Allow, irtest.Peers("fe"), irtest.Ports(irtest.Port(ir.TCP, 6379, 6379), irtest.Port(ir.UDP, 53, 53), irtest.Port(ir.SCTP, 9, 9))))},
		Endpoints: []ir.Endpoint{
			irtest.Endpoint("ns/db", []string{db, db6}, irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np-db"))),
			irtest.Endpoint("ns/fe", []string{fe, fe6}),
			irtest.Endpoint("ns/oth", []string{oth, oth6}),
		},
	}
}

// removeOth is oth losing the label: it leaves the set.
func removeOth(base uint64) *ir.Delta {
	return &ir.Delta{Base: base, Generation: base + 1, AddressSetChanges: []ir.AddressSetChange{
		{ID: "fe", Removed: irtest.Prefixes(oth+"/32", oth6+"/128")}}}
}

func newFollower(t *testing.T, tab *fakeTable, m *fakeMetrics, mode conntrack.Mode) (*conntrack.Follower, *memory.Backend) {
	t.Helper()
	inner := memory.New(memory.Config{})
	f, err := conntrack.New(inner, conntrack.Config{Mode: mode, Table: tab, Metrics: m})
	require.NoError(t, err)
	_, err = f.Sync(context.Background(), cluster())
	require.NoError(t, err)
	return f, inner
}

func TestFollowerCutsOnlyWhatTheChangeDenies(t *testing.T) {
	var (
		othTCP   = entry(unix.IPPROTO_TCP, oth, db, 6379)
		othUDP6  = entry(unix.IPPROTO_UDP, oth6, db6, 53)
		othSCTP  = entry(unix.IPPROTO_SCTP, oth, db, 9)
		othNAT   = entry(unix.IPPROTO_TCP, oth, vip, 80, db) // a Service: 10.96.0.10:80 → db:80
		feTCP    = entry(unix.IPPROTO_TCP, fe, db, 6379)
		feUDP6   = entry(unix.IPPROTO_UDP, fe6, db6, 53)
		othICMP  = entry(unix.IPPROTO_ICMP, oth, db, 0)
		fromNode = entry(unix.IPPROTO_TCP, node, db, 8080)
		othOut   = entry(unix.IPPROTO_TCP, oth, outside, 443) // oth's egress is unrestricted
		neither  = entry(unix.IPPROTO_TCP, outside, "198.51.100.1", 80)
	)
	// othNAT reaches db on port 80 in reply terms; give it 6379 so that the
	// rule allowed it before the change.
	othNAT.Reverse.SrcPort = 6379
	tab := &fakeTable{
		entries: []*netlink.ConntrackFlow{othTCP, othUDP6, othSCTP, othNAT, feTCP, feUDP6, othICMP, fromNode, othOut, neither},
		local:   []netip.Addr{netip.MustParseAddr(node)},
	}
	m := &fakeMetrics{}
	f, _ := newFollower(t, tab, m, conntrack.ModeFollow)
	// The first Sync judges every entry: fromNode is the only one db's
	// policy denies (port 8080), and it comes from the node itself.
	require.Len(t, tab.entries, 10)
	assert.Empty(t, m.cuts)

	changed := time.Now().Add(-time.Second)
	ctx := backend.WithChangeTime(context.Background(), changed)
	require.NoError(t, f.Apply(ctx, removeOth(1)))
	for _, e := range []*netlink.ConntrackFlow{othTCP, othUDP6, othSCTP, othNAT} {
		assert.False(t, tab.has(e), "%s cut", e)
	}
	for _, e := range []*netlink.ConntrackFlow{feTCP, feUDP6, othICMP, fromNode, othOut, neither} {
		assert.True(t, tab.has(e), "%s kept", e)
	}
	require.Equal(t, []int{4}, m.cuts)
	assert.GreaterOrEqual(t, m.since[0], time.Second, "measured from the change")
	assert.Zero(t, m.errors)

	// An unrelated change (a new unrestricted pod) dumps nothing.
	tab.dumps = nil
	require.NoError(t, f.Apply(context.Background(), &ir.Delta{Base: 2, Generation: 3,
		Endpoints: []ir.Endpoint{irtest.Endpoint("ns/new", []string{"10.0.0.9"})}}))
	assert.Equal(t, []uint8{unix.AF_INET}, tab.dumps, "the IPv4 table only: the new pod has no IPv6 address")
	assert.Len(t, tab.entries, 6)
	assert.Equal(t, []int{4}, m.cuts)
}

func TestFollowerKeepPassesThrough(t *testing.T) {
	othTCP := entry(unix.IPPROTO_TCP, oth, db, 6379)
	tab := &fakeTable{entries: []*netlink.ConntrackFlow{othTCP}}
	m := &fakeMetrics{}
	f, inner := newFollower(t, tab, m, conntrack.ModeKeep)
	require.NoError(t, f.Apply(context.Background(), removeOth(1)))
	assert.True(t, tab.has(othTCP))
	assert.Empty(t, tab.dumps)
	assert.Equal(t, uint64(2), inner.Generation(), "the wrapped backend got the delta")
}

func TestFollowerErrorsDoNotFailTheChange(t *testing.T) {
	tab := &fakeTable{entries: []*netlink.ConntrackFlow{entry(unix.IPPROTO_TCP, oth, db, 6379)}}
	m := &fakeMetrics{}
	f, inner := newFollower(t, tab, m, conntrack.ModeFollow)
	tab.err = errors.New("netlink says no")
	require.NoError(t, f.Apply(context.Background(), removeOth(1)))
	assert.Equal(t, 1, m.errors)
	assert.Equal(t, uint64(2), inner.Generation())

	// A delta the wrapped backend refuses is its error, and nothing is cut.
	err := f.Apply(context.Background(), removeOth(7))
	require.Error(t, err)
	assert.Equal(t, 1, m.errors)

	_, err = conntrack.New(inner, conntrack.Config{Mode: "sometimes", Table: tab})
	assert.ErrorContains(t, err, "sometimes")
	_, err = conntrack.New(nil, conntrack.Config{Table: tab})
	assert.Error(t, err)
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]conntrack.Mode{"": conntrack.ModeFollow, "follow": conntrack.ModeFollow, "keep": conntrack.ModeKeep} {
		got, err := conntrack.ParseMode(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := conntrack.ParseMode("Follow")
	assert.Error(t, err)
}

// A Sync (a restart, a resync after drift) judges every entry: the ones
// the synced state denies are cut, whatever changed.
func TestFollowerSyncJudgesEveryEntry(t *testing.T) {
	othTCP := entry(unix.IPPROTO_TCP, oth, db, 6379)
	feTCP := entry(unix.IPPROTO_TCP, fe, db, 6379)
	neither := entry(unix.IPPROTO_UDP, outside, "198.51.100.1", 53)
	tab := &fakeTable{entries: []*netlink.ConntrackFlow{othTCP, feTCP, neither}}
	m := &fakeMetrics{}
	f, _ := newFollower(t, tab, m, conntrack.ModeFollow)
	require.Len(t, tab.entries, 3)

	next := cluster()
	require.NoError(t, next.Apply(removeOth(1)))
	tab.dumps = nil
	_, err := f.Sync(context.Background(), next)
	require.NoError(t, err)
	assert.ElementsMatch(t, []uint8{unix.AF_INET, unix.AF_INET6}, tab.dumps, "both families")
	assert.False(t, tab.has(othTCP))
	assert.True(t, tab.has(feTCP))
	assert.True(t, tab.has(neither), "neither end is an endpoint: left alone")
	assert.Equal(t, []int{1}, m.cuts)
}
