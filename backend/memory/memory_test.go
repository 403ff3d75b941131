package memory_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

var irCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

// base is a small valid snapshot in canonical order: b admits a on TCP/80 and on its named
// port "http"; a's egress passes through an Admin tier first.
func base() *ir.Snapshot {
	return snapshot(setA(), setAB(),
		irtest.PortSet("tcp-http", ir.TCP, "http", ipB+":8080"),
		ruleList("anp-out", ir.Egress, irtest.BareRule(0, ir.Pass, irtest.Peers("pods-ab"), irtest.AllPorts), irtest.BareRule(1, ir.Deny, irtest.AllPeers, irtest.AllPorts)),
		ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("pods-a"), irtest.Ports(tcp(80), irtest.Named(ir.TCP, "tcp-http")))),
		podA(irtest.Egress(admin("anp-out"))),
		podB(irtest.Ingress(np("np-b-in"))))
}

func mustSync(t *testing.T, b *memory.Backend, s *ir.Snapshot) backend.SyncReport {
	t.Helper()
	rep, err := b.Sync(context.Background(), s)
	require.NoError(t, err)
	return rep
}

func TestNew(t *testing.T) {
	b := memory.New(memory.Config{})
	assert.Equal(t, uint64(0), b.Generation())
	if diff := cmp.Diff(&ir.Snapshot{}, b.Snapshot(), irCmp); diff != "" {
		t.Errorf("new backend holds (-want +got):\n%s", diff)
	}
	assert.Equal(t, "generation 0\n", b.Dump())
	assert.True(t, b.Evaluate(flow(ipA, ipB, ir.TCP, 80)).Allowed, "nothing is enforced")
	_, ok := b.Endpoint(netip.MustParseAddr(ipA))
	assert.False(t, ok)
}

func TestSync(t *testing.T) {
	b := memory.New(memory.Config{})
	rep := mustSync(t, b, base())
	assert.Equal(t, backend.SyncReport{Generation: 1, Changes: 7}, rep, "2 address sets, 1 port set, 2 rule lists, 2 endpoints")
	assert.Equal(t, uint64(1), b.Generation())
	if diff := cmp.Diff(base(), b.Snapshot(), irCmp); diff != "" {
		t.Errorf("held snapshot (-want +got):\n%s", diff)
	}
	assert.False(t, b.Evaluate(flow(ipC, ipB, ir.TCP, 80)).Allowed)

	// Idempotent: the same snapshot again changes nothing.
	rep = mustSync(t, b, base())
	assert.Equal(t, backend.SyncReport{Generation: 1}, rep)

	// The same content in another order is the same state.
	shuffled := base()
	slices.Reverse(shuffled.AddressSets)
	slices.Reverse(shuffled.AddressSets[0].Members)
	slices.Reverse(shuffled.RuleLists)
	slices.Reverse(shuffled.Endpoints)
	shuffled.Generation = 2
	rep = mustSync(t, b, shuffled)
	assert.Equal(t, backend.SyncReport{Generation: 2}, rep)
	want := base()
	want.Generation = 2
	if diff := cmp.Diff(want, b.Snapshot(), irCmp); diff != "" {
		t.Errorf("Sync does not hold the sorted snapshot (-want +got):\n%s", diff)
	}
}

func TestSyncChanges(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(s *ir.Snapshot)
		want  int
	}{
		{"nothing", func(*ir.Snapshot) {}, 0},
		{"generation only", func(s *ir.Snapshot) { s.Generation = 7 }, 0},
		{"one member added", func(s *ir.Snapshot) {
			s.AddressSets[1].Members = append(s.AddressSets[1].Members, netip.MustParsePrefix(ipC+"/32"))
		}, 1},
		{"one member replaced", func(s *ir.Snapshot) { s.AddressSets[0].Members[1] = netip.MustParsePrefix("fd00::9/128") }, 2},
		{"port member added", func(s *ir.Snapshot) {
			s.PortSets[0].Members = append(s.PortSets[0].Members, netip.MustParseAddrPort("["+ipB6+"]:8080"))
		}, 1},
		{"address set added", func(s *ir.Snapshot) { s.AddressSets = append(s.AddressSets, setC()) }, 1},
		{"port set removed and its use", func(s *ir.Snapshot) {
			s.PortSets = nil
			s.RuleLists[1].Rules[0].Ports = s.RuleLists[1].Rules[0].Ports[:1]
		}, 2},
		{"rule list replaced", func(s *ir.Snapshot) { s.RuleLists[0].Rules[0].Action = ir.Allow }, 1},
		{"rule list priority", func(s *ir.Snapshot) { s.RuleLists[0].Priority = 5 }, 1},
		{"endpoint IPs", func(s *ir.Snapshot) { s.Endpoints[0].IPs = s.Endpoints[0].IPs[:1] }, 1},
		{"endpoint tiers", func(s *ir.Snapshot) { s.Endpoints[0].Ingress = []ir.Tier{np("np-b-in")} }, 1},
		{"endpoint removed", func(s *ir.Snapshot) { s.Endpoints = s.Endpoints[1:] }, 1},
		{"port set added", func(s *ir.Snapshot) {
			s.PortSets = append(s.PortSets, irtest.PortSet("x-spare", ir.TCP, "spare", ipB+":1"))
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := memory.New(memory.Config{})
			mustSync(t, b, base())
			s := base()
			tc.tweak(s)
			rep := mustSync(t, b, s)
			assert.Equal(t, tc.want, rep.Changes)
			assert.Equal(t, s.Generation, rep.Generation)
			assert.Empty(t, rep.Repairs, "the memory backend cannot drift")
		})
	}
}

// TestSyncCountsEveryDifference: Changes is zero only when the backend
// already held exactly the snapshot, so a set whose attributes changed
// (members aside) counts too.
func TestSyncCountsEveryDifference(t *testing.T) {
	withSpare := func(proto ir.Protocol, name string) *ir.Snapshot {
		s := base()
		s.PortSets = append(s.PortSets, irtest.PortSet("x-spare", proto, name, ipB+":1"))
		return s
	}
	tests := []struct {
		name     string
		from, to *ir.Snapshot
	}{
		{"port set protocol", withSpare(ir.TCP, "spare"), withSpare(ir.SCTP, "spare")},
		{"port set name", withSpare(ir.TCP, "spare"), withSpare(ir.TCP, "other")},
		{"address set description", base(), func() *ir.Snapshot {
			s := base()
			s.AddressSets[0].Description = "changed"
			return s
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := memory.New(memory.Config{})
			mustSync(t, b, tc.from)
			before := b.Dump()
			rep := mustSync(t, b, tc.to)
			assert.Equal(t, 1, rep.Changes)
			assert.NotEqual(t, before, b.Dump(), "the held state did change")
		})
	}
}

func TestSyncRejects(t *testing.T) {
	tests := []struct {
		name  string
		snap  *ir.Snapshot
		wants []string
	}{
		{"nil", nil, []string{"nil snapshot"}},
		{"dangling rule list", func() *ir.Snapshot {
			s := base()
			s.Endpoints[0].Ingress = []ir.Tier{np("np-gone")}
			return s
		}(), []string{`unknown rule list "np-gone"`}},
		{"dangling set and overlap", func() *ir.Snapshot {
			s := base()
			s.RuleLists[0].Rules[0].Peers = []string{"pods-gone"}
			s.AddressSets[1].Members = append(s.AddressSets[1].Members, netip.MustParsePrefix("10.0.0.0/8"))
			return s
		}(), []string{`unknown address set "pods-gone"`, "overlap"}},
		{"named port protocol mismatch", func() *ir.Snapshot {
			s := base()
			s.RuleLists[1].Rules[0].Ports[1].Protocol = ir.UDP
			return s
		}(), []string{`port set "tcp-http" is TCP, match is UDP`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := memory.New(memory.Config{})
			mustSync(t, b, base())
			before := b.Dump()
			_, err := b.Sync(context.Background(), tc.snap)
			require.ErrorIs(t, err, ir.ErrInvalid)
			for _, w := range tc.wants {
				assert.ErrorContains(t, err, w)
			}
			assert.Equal(t, before, b.Dump(), "a rejected Sync changed the state")
			assert.False(t, b.Evaluate(flow(ipC, ipB, ir.TCP, 80)).Allowed)
		})
	}
}

// TestSyncOwnsItsCopy: the caller may change its snapshot after Sync, and
// the result of Snapshot, without touching the backend.
func TestSyncOwnsItsCopy(t *testing.T) {
	b := memory.New(memory.Config{})
	s := base()
	mustSync(t, b, s)
	before := b.Dump()
	s.AddressSets[0].Members[0] = netip.MustParsePrefix("0.0.0.0/0")
	s.RuleLists[0].Rules[0].AllPeers = true
	s.Endpoints[1].Ingress[0].RuleLists[0] = "np-other"
	got := b.Snapshot()
	got.AddressSets[0].Members[0] = netip.MustParsePrefix("0.0.0.0/0")
	got.RuleLists[0].Rules[0].Peers[0] = "x"
	got.Endpoints[0].IPs[0] = netip.MustParseAddr("10.9.9.9")
	assert.Equal(t, before, b.Dump())
	assert.False(t, b.Evaluate(flow(ipC, ipB, ir.TCP, 80)).Allowed)
	ep, ok := b.Endpoint(netip.MustParseAddr(ipA))
	require.True(t, ok)
	ep.IPs[0] = netip.MustParseAddr("10.9.9.9")
	_, ok = b.Endpoint(netip.MustParseAddr(ipA))
	assert.True(t, ok)
}

func TestApply(t *testing.T) {
	ctx := context.Background()
	b := memory.New(memory.Config{})
	mustSync(t, b, base())
	require.False(t, b.Evaluate(flow(ipC, ipB, ir.TCP, 80)).Allowed)

	// c joins a's set: c may reach b.
	d := &ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{{ID: "pods-a", Added: irtest.Prefixes(ipC + "/32")}}}
	require.NoError(t, b.Apply(ctx, d))
	assert.Equal(t, uint64(2), b.Generation())
	assert.True(t, b.Evaluate(flow(ipC, ipB, ir.TCP, 80)).Allowed)

	// A wrong base, and a delta that does not fit, change nothing.
	before := b.Dump()
	err := b.Apply(ctx, &ir.Delta{Base: 1, Generation: 3, AddressSetChanges: []ir.AddressSetChange{{ID: "pods-a", Removed: irtest.Prefixes(ipC + "/32")}}})
	assert.ErrorIs(t, err, ir.ErrStaleBase)
	assert.ErrorContains(t, err, "delta 1→3 does not apply to generation 2")
	err = b.Apply(ctx, &ir.Delta{
		Base: 2, Generation: 3,
		AddressSetChanges:  []ir.AddressSetChange{{ID: "pods-a", Removed: irtest.Prefixes(ipC + "/32")}},
		RemovedAddressSets: []string{"pods-ab"}, // still used by anp-out
	})
	assert.ErrorIs(t, err, ir.ErrInvalid)
	assert.ErrorContains(t, err, `rule list "anp-out" rule 0: address set "pods-ab" is removed but still used`)
	assert.ErrorIs(t, b.Apply(ctx, nil), ir.ErrInvalid)
	assert.Equal(t, before, b.Dump())
	assert.True(t, b.Evaluate(flow(ipC, ipB, ir.TCP, 80)).Allowed)

	// Remove b's policy in dependency order: b is no longer isolated.
	require.NoError(t, b.Apply(ctx, &ir.Delta{
		Base: 2, Generation: 3,
		Endpoints:        []ir.Endpoint{podB()},
		RemovedRuleLists: []string{"np-b-in"},
		RemovedPortSets:  []string{"tcp-http"},
	}))
	assert.True(t, b.Evaluate(flow(ext, ipB, ir.TCP, 81)).Allowed)
	assert.False(t, b.Evaluate(flow(ipA, ext, ir.TCP, 81)).Allowed, "a's egress is still enforced")
}

// TestApplyEqualsSync: a Sync to S then Apply of d holds what a Sync of
// S+d holds, and evaluates the same.
func TestApplyEqualsSync(t *testing.T) {
	ctx := context.Background()
	d := &ir.Delta{
		Base: 1, Generation: 2,
		AddedAddressSets: []ir.AddressSet{setC()},
		RuleLists:        []ir.RuleList{ruleList("np-b-in", ir.Ingress, irtest.BareRule(0, ir.Allow, irtest.Peers("pods-c"), irtest.Ports(port(ir.SCTP, 0))))},
		Endpoints:        []ir.Endpoint{podC(irtest.Ingress(np("np-b-in")))},
		RemovedPortSets:  []string{"tcp-http"},
	}
	viaApply := memory.New(memory.Config{})
	mustSync(t, viaApply, base())
	require.NoError(t, viaApply.Apply(ctx, d))

	want := base()
	require.NoError(t, want.Apply(d))
	viaSync := memory.New(memory.Config{})
	mustSync(t, viaSync, want)
	assert.Equal(t, viaSync.Dump(), viaApply.Dump())
	for _, f := range []memory.Flow{
		flow(ipC, ipB, ir.SCTP, 9), flow(ipC, ipC, ir.SCTP, 9), flow(ipA, ipC, ir.SCTP, 9),
		flow(ipC, ipB, ir.TCP, 80), flow(ipA, ipB, ir.TCP, 8080), flow(ipA, ipB, ir.TCP, 80),
	} {
		assert.Equal(t, viaSync.Evaluate(f), viaApply.Evaluate(f), f.String())
	}
}

func TestCleanup(t *testing.T) {
	ctx := context.Background()
	b := memory.New(memory.Config{})
	require.NoError(t, b.Cleanup(ctx), "nothing to remove")
	mustSync(t, b, base())
	require.False(t, b.Evaluate(flow(ipC, ipB, ir.TCP, 80)).Allowed)
	require.NoError(t, b.Cleanup(ctx))
	assert.Equal(t, uint64(0), b.Generation())
	assert.Equal(t, "generation 0\n", b.Dump())
	assert.True(t, b.Evaluate(flow(ipC, ipB, ir.TCP, 80)).Allowed)
	require.NoError(t, b.Cleanup(ctx), "twice")
	// After Cleanup the backend is at generation 0 again: the engine's
	// first delta applies.
	require.NoError(t, b.Apply(ctx, &ir.Delta{Base: 0, Generation: 1, AddedAddressSets: []ir.AddressSet{setA()}}))
	// And a full Sync counts everything as new.
	rep := mustSync(t, memory.New(memory.Config{}), base())
	assert.Equal(t, 7, rep.Changes)
}

func TestDump(t *testing.T) {
	s := base()
	s.RuleLists[0].Priority = 10
	s.RuleLists[0].Rules[0].Name = "pass-pods"
	s.AddressSets = append(s.AddressSets, ipBlock("net-ext", "192.0.2.0/24", "192.0.2.0/25"))
	s.RuleLists = append(s.RuleLists, ruleList("np-a-out", ir.Egress,
		irtest.BareRule(2, ir.Allow, irtest.Peers("net-ext", "pods-ab"), irtest.Ports(irtest.Port(ir.UDP, 1000, 2000), port(ir.SCTP, 0)))))
	s.Endpoints[0].Egress = append(s.Endpoints[0].Egress, np("np-a-out"))
	// Out of order on purpose: Dump is sorted.
	slices.Reverse(s.AddressSets)
	slices.Reverse(s.RuleLists)
	slices.Reverse(s.Endpoints)
	slices.Reverse(s.AddressSets[1].Members)

	b := memory.New(memory.Config{})
	mustSync(t, b, s)
	want := `generation 1
address-set net-ext # block 192.0.2.0/24
  192.0.2.128/25
address-set pods-a # set pods-a
  10.0.0.1/32
  fd00::1/128
address-set pods-ab # set pods-ab
  10.0.0.1/32
  10.0.0.2/32
  fd00::1/128
  fd00::2/128
port-set tcp-http TCP "http"
  10.0.0.2:8080
rule-list anp-out AdminNetworkPolicy/out Egress priority 10
  [0] "pass-pods" Pass peers=pods-ab ports=*
  [1] Deny peers=* ports=*
rule-list np-a-out NetworkPolicy/ns/a-out Egress priority 0
  [2] Allow peers=net-ext,pods-ab ports=UDP/1000-2000,SCTP/*
rule-list np-b-in NetworkPolicy/ns/b-in Ingress priority 0
  [0] Allow peers=pods-a ports=TCP/80,TCP/@tcp-http
endpoint ns/a [10.0.0.1 fd00::1]
  Egress Admin anp-out
  Egress NetworkPolicy np-a-out
endpoint ns/b [10.0.0.2 fd00::2]
  Ingress NetworkPolicy np-b-in
`
	if diff := cmp.Diff(want, b.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	assert.Equal(t, b.Dump(), b.Dump(), "stable")
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "TCP/80", memory.FormatPort(tcp(80)))
	assert.Equal(t, "UDP/53-54", memory.FormatPort(irtest.Port(ir.UDP, 53, 54)))
	assert.Equal(t, "SCTP/*", memory.FormatPort(port(ir.SCTP, 0)))
	assert.Equal(t, "TCP/@tcp-http", memory.FormatPort(irtest.Named(ir.TCP, "tcp-http")))
	assert.Equal(t, `[3] "web" Allow peers=a,b ports=TCP/80,UDP/53-54`,
		memory.FormatRule(ir.Rule{Index: 3, Name: "web", Action: ir.Allow, Peers: []string{"a", "b"}, Ports: []ir.PortMatch{tcp(80), irtest.Port(ir.UDP, 53, 54)}}))
	assert.Equal(t, "[0] Deny peers= ports=", memory.FormatRule(ir.Rule{Action: ir.Deny}))
}

func TestEndpoint(t *testing.T) {
	b := memory.New(memory.Config{})
	mustSync(t, b, base())
	for _, s := range []string{ipA, ipA6, "::ffff:" + ipA} {
		ep, ok := b.Endpoint(netip.MustParseAddr(s))
		require.True(t, ok, s)
		assert.Equal(t, "ns/a", ep.ID)
	}
	_, ok := b.Endpoint(netip.MustParseAddr(ipC))
	assert.False(t, ok)
}

// TestConcurrent runs readers beside writers; run it with -race.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	b := memory.New(memory.Config{})
	mustSync(t, b, base())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				b.Evaluate(flow(ipA, ipB, ir.TCP, 80))
				b.Explain(flow(ipC, ipB, ir.TCP, 8080))
				_ = b.Dump()
				_ = b.Snapshot()
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			s := base()
			s.Generation = uint64(i + 2)
			if i%2 == 0 {
				s.AddressSets[0].Members = append(s.AddressSets[0].Members, netip.MustParsePrefix(ipC+"/32"))
			}
			if _, err := b.Sync(ctx, s); err != nil {
				t.Error(err)
			}
		}
		if err := b.Cleanup(ctx); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
}
