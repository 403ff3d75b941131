package lab

import (
	"context"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testFilter is a table of the test's own in one node namespace, with a
// forward chain that accepts by default.
type testFilter struct {
	c     *nftables.Conn
	table *nftables.Table
	chain *nftables.Chain
}

func newTestFilter(t *testing.T, ns netns.NsHandle) *testFilter {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	require.NoError(t, err)
	f := &testFilter{c: c, table: c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "labtest"})}
	accept := nftables.ChainPolicyAccept
	f.chain = c.AddChain(&nftables.Chain{
		Name: "forward", Table: f.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	require.NoError(t, c.Flush())
	return f
}

// dropPort adds "meta l4proto proto th dport port drop".
func (f *testFilter) dropPort(t *testing.T, proto byte, port uint16) {
	t.Helper()
	f.c.AddRule(&nftables.Rule{Table: f.table, Chain: f.chain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	require.NoError(t, f.c.Flush())
}

// rejectPort adds "meta l4proto proto th dport port reject" (a TCP reset,
// or ICMP port unreachable).
func (f *testFilter) rejectPort(t *testing.T, proto byte, port uint16) {
	t.Helper()
	reject := &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}
	if proto == unix.IPPROTO_TCP {
		reject = &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}
	}
	f.c.AddRule(&nftables.Rule{Table: f.table, Chain: f.chain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		reject,
	}})
	require.NoError(t, f.c.Flush())
}

// dropInvalid adds "ct state invalid counter drop".
func (f *testFilter) dropInvalid(t *testing.T) {
	t.Helper()
	f.c.AddRule(&nftables.Rule{Table: f.table, Chain: f.chain, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitINVALID), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	require.NoError(t, f.c.Flush())
}

// dropped sums the packets counted by the chain's counters.
func (f *testFilter) dropped(t *testing.T) uint64 {
	t.Helper()
	rules, err := f.c.GetRules(f.table, f.chain)
	require.NoError(t, err)
	var n uint64
	for _, r := range rules {
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok {
				n += c.Packets
			}
		}
	}
	return n
}

func (f *testFilter) remove(t *testing.T) {
	t.Helper()
	f.c.DelTable(f.table)
	require.NoError(t, f.c.Flush())
}

// A packet filter in the node namespace that drops one port shows up as
// Connected=false for that port only, for every protocol and family, and
// the port connects again once the filter is gone.
func TestProbeObservesDeny(t *testing.T) {
	l := newLab(t, Config{})
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/b", 0, "10.244.0.11", "fd00::11")
	f := newTestFilter(t, nodeNS(t, l, 0))
	for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP} {
		f.dropPort(t, proto, 81)
	}

	var ps []Probe
	for _, dst := range []string{"10.244.0.11", "fd00::11"} {
		ps = append(ps, probes("x/a", ip(dst), 80, 81, 82)...)
	}
	res := l.Probe(context.Background(), ps)
	assertVerdicts(t, res, func(p Probe) bool { return p.Port != 81 })
	for _, r := range res {
		if !r.Connected {
			assert.Equal(t, "timeout", r.Detail, describe(r.Probe))
			assert.GreaterOrEqual(t, r.Latency, l.cfg.ProbeTimeout/2, describe(r.Probe))
		}
	}

	f.remove(t)
	assertVerdicts(t, l.Probe(context.Background(), ps), all)
}

// A rejecting filter is a deny too, reported at once with the kernel's
// reason.
func TestProbeObservesReject(t *testing.T) {
	l := newLab(t, Config{})
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/b", 0, "10.244.0.11", "fd00::11")
	f := newTestFilter(t, nodeNS(t, l, 0))
	f.rejectPort(t, unix.IPPROTO_TCP, 81)
	f.rejectPort(t, unix.IPPROTO_UDP, 81)
	var ps []Probe
	for _, dst := range []string{"10.244.0.11", "fd00::11"} {
		for _, proto := range []Protocol{TCP, UDP} {
			for _, port := range []uint16{80, 81} {
				ps = append(ps, Probe{Src: "x/a", Dst: ip(dst), Port: port, Protocol: proto})
			}
		}
	}
	res := l.Probe(context.Background(), ps)
	assertVerdicts(t, res, func(p Probe) bool { return p.Port != 81 })
	for _, r := range res {
		if r.Probe.Port == 81 {
			assert.Equal(t, "connection refused", r.Detail, describe(r.Probe))
			assert.Less(t, r.Latency, l.cfg.ProbeTimeout/2, describe(r.Probe))
		}
	}
}

// The SCTP INIT's CRC32c is right by the kernel's own check: conntrack,
// which verifies SCTP checksums on forwarded packets, does not find it
// invalid, while a corrupted one is counted invalid and dropped.
func TestSCTPChecksumAcceptedByConntrack(t *testing.T) {
	l := newLab(t, Config{Nodes: 2})
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/b", 1, "10.244.1.10", "fd00::1:10")
	f := newTestFilter(t, nodeNS(t, l, 0))
	f.dropInvalid(t)

	ps := []Probe{
		{Src: "x/a", Dst: ip("10.244.1.10"), Port: 80, Protocol: SCTP},
		{Src: "x/a", Dst: ip("fd00::1:10"), Port: 80, Protocol: SCTP},
		{Src: "x/a", Dst: ip("fd00::1:10"), Port: 80, Protocol: TCP},
	}
	assertVerdicts(t, l.Probe(context.Background(), ps), all)
	assert.Zero(t, f.dropped(t), "invalid packets")

	l.corruptSCTP = true
	defer func() { l.corruptSCTP = false }()
	assertVerdicts(t, l.Probe(context.Background(), ps[:2]), func(Probe) bool { return false })
	assert.Positive(t, f.dropped(t), "corrupted INITs counted invalid")
}

// ForgetConnections empties each node's conntrack table in both families,
// so a later probe cannot ride on an entry an earlier probe left.
func TestForgetConnections(t *testing.T) {
	l := newLab(t, Config{})
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/b", 0, "10.244.0.11", "fd00::11")
	f := newTestFilter(t, nodeNS(t, l, 0))
	f.dropInvalid(t) // a ct expression: the node now tracks connections

	var ps []Probe
	for _, dst := range []string{"10.244.0.11", "fd00::11"} {
		ps = append(ps, Probe{Src: "x/a", Dst: ip(dst), Port: 80, Protocol: UDP})
	}
	assertVerdicts(t, l.Probe(context.Background(), ps), all)
	flows := func(fam netlink.InetFamily) int {
		fs, err := l.nodes[0].nl.ConntrackTableList(netlink.ConntrackTable, fam)
		require.NoError(t, err)
		return len(fs)
	}
	require.NotZero(t, flows(unix.AF_INET), "IPv4 probes left no conntrack entry")
	require.NotZero(t, flows(unix.AF_INET6), "IPv6 probes left no conntrack entry")

	require.NoError(t, l.ForgetConnections())
	assert.Zero(t, flows(unix.AF_INET))
	assert.Zero(t, flows(unix.AF_INET6))

	require.NoError(t, l.Close())
	assert.ErrorIs(t, l.ForgetConnections(), ErrClosed)
}
