package nftables

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// These tests program a fresh network namespace and read the result back
// over netlink.

func TestSyncProgramsSnapshot(t *testing.T) {
	b, _ := newTestBackend(t)
	snap := testSnapshot()
	changes, repairs := mustSync(t, b, snap)
	assert.Positive(t, changes)
	assert.Empty(t, repairs, "the first Sync of a fresh backend repairs nothing")
	requireKernelEquals(t, b, snap)

	ks := kernelModel(t, b)
	// Pod peers (Hosts) are hash sets of addresses: no interval flag.
	for _, name := range []string{"a4-frontend", "a6-frontend", "a4-monitoring", "a6-monitoring"} {
		assert.Equal(t, hostKind, ks.m.sets[name].kind, name)
		assert.Zero(t, ks.attrs[name].flags, "%s: a plain hash set", name)
		assert.Zero(t, ks.attrs[name].flags&unix.NFT_SET_INTERVAL, name)
	}
	assert.Equal(t, setAttrs{keyType: typeIPv4, keyLen: 4}, ks.attrs["a4-frontend"])
	assert.Equal(t, setAttrs{keyType: typeIPv6, keyLen: 16}, ks.attrs["a6-frontend"])
	assert.Equal(t, map[netip.Addr]struct{}{irtest.Addr("10.0.0.2"): {}, irtest.Addr("10.0.0.3"): {}}, ks.m.sets["a4-frontend"].hosts)
	assert.Equal(t, map[netip.Addr]struct{}{irtest.Addr("fd00::2"): {}}, ks.m.sets["a6-frontend"].hosts)
	assert.Empty(t, ks.m.sets["a4-frontend"].ivals)
	// Other peers (ipBlocks) are interval sets, adjacent and whole-space
	// members included.
	for _, name := range []string{"a4-all", "a6-all", "a4-block-ext", "a6-block-ext"} {
		assert.Equal(t, addrKind, ks.m.sets[name].kind, name)
		assert.Equal(t, uint32(unix.NFT_SET_INTERVAL), ks.attrs[name].flags, name)
	}
	assert.Equal(t, map[interval]struct{}{{lo: irtest.Addr("0.0.0.0"), open: true}: {}}, ks.m.sets["a4-all"].ivals)
	assert.Equal(t, map[interval]struct{}{{lo: irtest.Addr("::"), open: true}: {}}, ks.m.sets["a6-all"].ivals)
	assert.Len(t, ks.m.sets["a4-block-ext"].ivals, 8, "192.168.0.0/16 minus a /24 is 8 prefixes")
	assert.Empty(t, ks.m.sets["a6-block-ext"].ivals)
	// Named ports are (address . port) sets per family.
	assert.Equal(t, map[netip.AddrPort]struct{}{irtest.AddrPort("10.0.0.10:8080"): {}}, ks.m.sets["n4-http-tcp"].ports)
	assert.Equal(t, map[netip.AddrPort]struct{}{irtest.AddrPort("[fd00::10]:8080"): {}}, ks.m.sets["n6-http-tcp"].ports)

	// Dispatch: restricted directions only; the unrestricted endpoint has
	// no entry; both families. Entries jump to profile chains, shared by
	// endpoints with the same tiers.
	in4, eg4, in6 := ks.m.sets["ingress-v4"].jumps, ks.m.sets["egress-v4"].jumps, ks.m.sets["ingress-v6"].jumps
	assert.Len(t, in4, 2)
	assert.Contains(t, in4, irtest.Addr("10.0.0.10"))
	assert.Contains(t, in4, irtest.Addr("10.0.0.2"))
	assert.NotContains(t, in4, irtest.Addr("10.0.0.3"))
	assert.Equal(t, []netip.Addr{irtest.Addr("10.0.0.10")}, keys(eg4))
	assert.Len(t, in6, 2)
	assert.Equal(t, []netip.Addr{irtest.Addr("fd00::10")}, keys(ks.m.sets["egress-v6"].jumps))
	profiles := map[string]bool{}
	for _, name := range []string{"ingress-v4", "egress-v4", "ingress-v6", "egress-v6"} {
		for _, chain := range ks.m.sets[name].jumps {
			assert.Equal(t, "p"+name[len(name)-1:]+"-", chain[:3], "%s jumps to a profile chain of its family", name)
			require.NotNil(t, ks.m.chains[chain], "%s jumps to a chain that exists", name)
			profiles[chain] = true
		}
	}
	assert.Len(t, profiles, 6, "db in, db out, web in; two families each")

	// The db ingress profile: invalid drop, the Admin tier chain (two lists),
	// the NetworkPolicy list then its default drop, the Baseline list.
	prof := ks.m.chains[in4[irtest.Addr("10.0.0.10")]]
	require.NotNil(t, prof)
	var comments []string
	for _, r := range prof.rules {
		comments = append(comments, r.text)
	}
	assert.Equal(t, []string{
		"invalid packets",
		"admin tier: 2 lists",
		"NetworkPolicy tier: list np/default/db/ingress",
		"NetworkPolicy tier: no rule matched, isolated",
		"Baseline tier: list banp/default/ingress",
	}, comments)
	assert.NotEqual(t, in4[irtest.Addr("10.0.0.2")], in4[irtest.Addr("10.0.0.10")])

	// The tier chain re-checks the first list's Pass rule after it.
	tierChain := ks.m.chains[strings.TrimPrefix(b.st.m.chains[prof.name].rules[1].text, "counter jump ")]
	require.NotNil(t, tierChain)
	var tierComments []string
	for _, r := range tierChain.rules {
		tierComments = append(tierComments, r.text)
	}
	assert.Equal(t, []string{
		"Admin tier: list anp/pass-front/ingress",
		"AdminNetworkPolicy/pass-front ingress rule 0: pass, skip the rest of the tier",
		"Admin tier: list anp/allow-mon/ingress",
	}, tierComments)

	// Every rule is counted and carries a comment naming its origin.
	for name, c := range ks.m.chains {
		for i, r := range c.rules {
			assert.True(t, hasCounter(r), "chain %s rule %d has no counter", name, i)
			assert.NotEmpty(t, r.text, "chain %s rule %d has no comment", name, i)
		}
	}
	db := ks.m.chains[listChainName(ir.IPv4, "np/default/db/ingress")]
	require.NotNil(t, db)
	assert.Equal(t, "NetworkPolicy/default/db ingress rule 1: allow", db.rules[2].text)
	assert.Equal(t, "rule list np/default/db/ingress (NetworkPolicy/default/db ingress)", db.comment)
	// rule 0: 2 port alternatives × 1 peer; rule 1: 2 × 2; rule 2: 1.
	assert.Len(t, db.rules, 7)

	// Base chains: egress at the filter priority, ingress just after.
	assert.Equal(t, &baseHook{hook: unix.NF_INET_FORWARD, prio: 0}, ks.m.chains[chainEgressForward].base)
	assert.Equal(t, &baseHook{hook: unix.NF_INET_FORWARD, prio: 1}, ks.m.chains[chainIngressForward].base)
	assert.Equal(t, &baseHook{hook: unix.NF_INET_LOCAL_IN, prio: 0}, ks.m.chains[chainEgressInput].base)
}

func keys[K comparable, V any](m map[K]V) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	return out
}

func hasCounter(r *ruleModel) bool {
	for _, e := range r.exprs {
		if strings.Contains(string(e), "counter\x00") {
			return true
		}
	}
	return false
}

func TestSyncIsIdempotent(t *testing.T) {
	b, ns := newTestBackend(t)
	snap := testSnapshot()
	mustSync(t, b, snap)

	changes, repairs := mustSync(t, b, snap)
	assert.Zero(t, changes, "second Sync, generation unchanged")
	assert.Empty(t, repairs)

	// Someone commits elsewhere in the namespace: Sync reads the table back
	// and still finds nothing to do.
	other := libConn(t, ns)
	other.AddTable(&gnft.Table{Name: "someone-else", Family: gnft.TableFamilyIPv4})
	require.NoError(t, other.Flush())
	changes, repairs = mustSync(t, b, snap)
	assert.Zero(t, changes, "Sync after a full read")
	assert.Empty(t, repairs)
	requireKernelEquals(t, b, snap)
}

func TestSyncRepairsDrift(t *testing.T) {
	tests := []struct {
		name   string
		drift  func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle)
		repair string
	}{
		{"deleted base chain", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			c.DelChain(&gnft.Chain{Name: chainEgressInput, Table: tbl})
		}, "chain egress-input missing"},
		{"flushed set", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			c.FlushSet(&gnft.Set{Name: "a4-frontend", Table: tbl})
		}, "set a4-frontend: 2 elements missing or different, 0 unexpected"},
		{"removed host", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			set := &gnft.Set{Name: "a4-frontend", Table: tbl, KeyType: gnft.TypeIPAddr}
			require.NoError(t, c.SetDeleteElements(set, []gnft.SetElement{{Key: irtest.Addr("10.0.0.2").AsSlice()}}))
		}, "set a4-frontend: 1 elements missing or different, 0 unexpected"},
		{"removed IPv6 host", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			set := &gnft.Set{Name: "a6-monitoring", Table: tbl, KeyType: gnft.TypeIP6Addr}
			require.NoError(t, c.SetDeleteElements(set, []gnft.SetElement{{Key: irtest.Addr("fd00::20").AsSlice()}}))
		}, "set a6-monitoring: 1 elements missing or different, 0 unexpected"},
		{"removed map entry", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			set := &gnft.Set{Name: "ingress-v4", Table: tbl, IsMap: true, KeyType: gnft.TypeIPAddr}
			require.NoError(t, c.SetDeleteElements(set, []gnft.SetElement{{Key: irtest.Addr("10.0.0.10").AsSlice()}}))
		}, "set ingress-v4: 1 elements missing or different, 0 unexpected"},
		{"added host", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			set := &gnft.Set{Name: "a4-monitoring", Table: tbl, KeyType: gnft.TypeIPAddr}
			require.NoError(t, c.SetAddElements(set, []gnft.SetElement{{Key: irtest.Addr("172.16.0.1").AsSlice()}}))
		}, "set a4-monitoring: 0 elements missing or different, 1 unexpected"},
		{"added interval", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			set := &gnft.Set{Name: "a6-block-ext", Table: tbl, Interval: true, KeyType: gnft.TypeIP6Addr}
			require.NoError(t, c.SetAddElements(set, []gnft.SetElement{
				{Key: irtest.Addr("2001:db8::").AsSlice()}, {Key: irtest.Addr("2001:db9::").AsSlice(), IntervalEnd: true}}))
		}, "set a6-block-ext: 0 elements missing or different, 1 unexpected"},
		{"changed rule", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			ch := &gnft.Chain{Name: listChainName(ir.IPv4, "np/default/db/ingress"), Table: tbl}
			rules, err := c.GetRules(tbl, ch)
			require.NoError(t, err)
			r := rules[0]
			r.Exprs = []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}}
			c.ReplaceRule(r)
		}, "chain l4-" + shortHash("np/default/db/ingress") + ": rules differ (7 found, 7 expected)"},
		{"deleted rule", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			ch := &gnft.Chain{Name: chainIngressForward, Table: tbl}
			rules, err := c.GetRules(tbl, ch)
			require.NoError(t, err)
			require.NoError(t, c.DelRule(rules[0]))
		}, "chain ingress-forward: rules differ (3 found, 4 expected)"},
		{"foreign chain", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			c.AddChain(&gnft.Chain{Name: "intruder", Table: tbl})
		}, "chain intruder unexpected"},
		{"dormant table", func(t *testing.T, c *gnft.Conn, tbl *gnft.Table, ns netns.NsHandle) {
			// The library always sends flags 0: send the update by hand.
			var a attrBuf
			a.putStr(unix.NFTA_TABLE_NAME, tbl.Name)
			a.putU32(unix.NFTA_TABLE_FLAGS, unix.NFT_TABLE_F_DORMANT)
			other, err := dial(int(ns))
			require.NoError(t, err)
			defer other.close()
			_, err = other.commit([]netlink.Message{newTx(tbl.Name).msg(unix.NFT_MSG_NEWTABLE, 0, a.b)}, 0, false)
			require.NoError(t, err)
		}, "table dormant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ns := newTestBackend(t)
			snap := testSnapshot()
			mustSync(t, b, snap)
			c := libConn(t, ns)
			tbl := &gnft.Table{Name: b.cfg.TableName, Family: gnft.TableFamilyINet}
			tt.drift(t, c, tbl, ns)
			require.NoError(t, c.Flush())
			require.NotEmpty(t, diffModels(kernelModel(t, b), b.st.m, nil), "the drift is visible")
			drift, err := b.Drift(context.Background())
			require.NoError(t, err)
			assert.Contains(t, drift, tt.repair, "Drift lists what Sync will repair")

			changes, repairs := mustSync(t, b, snap)
			assert.Positive(t, changes)
			assert.Contains(t, repairs, tt.repair)
			requireKernelEquals(t, b, snap)
			changes, repairs = mustSync(t, b, snap)
			assert.Zero(t, changes)
			assert.Empty(t, repairs)
			drift, err = b.Drift(context.Background())
			require.NoError(t, err)
			assert.Empty(t, drift)
		})
	}
}

func TestVerifier(t *testing.T) {
	ctx := context.Background()
	b, _ := newTestBackend(t)
	installed, err := b.Installed(ctx)
	require.NoError(t, err)
	assert.False(t, installed, "a fresh namespace holds no table of ours")
	_, err = b.Drift(ctx)
	assert.ErrorIs(t, err, backend.ErrNotSynced, "nothing to compare with before the first Sync")

	mustSync(t, b, testSnapshot())
	installed, err = b.Installed(ctx)
	require.NoError(t, err)
	assert.True(t, installed)
	drift, err := b.Drift(ctx)
	require.NoError(t, err)
	assert.Empty(t, drift, "everything in place after a Sync")

	require.NoError(t, b.Cleanup(ctx))
	installed, err = b.Installed(ctx)
	require.NoError(t, err)
	assert.False(t, installed, "Cleanup removed the table")
}

func libConn(t *testing.T, ns netns.NsHandle) *gnft.Conn {
	c, err := gnft.New(gnft.WithNetNSFd(int(ns)))
	require.NoError(t, err)
	return c
}

// deltaSteps is a sequence of deltas over testSnapshot covering every kind
// of change.
func deltaSteps() []ir.Delta {
	return []ir.Delta{
		{ // a pod's labels change: set members move
			Base: 1, Generation: 2,
			AddressSetChanges: []ir.AddressSetChange{
				{ID: "frontend", Added: []netip.Prefix{irtest.Prefix("10.0.0.4/32")}, Removed: []netip.Prefix{irtest.Prefix("10.0.0.3/32")}},
				{ID: "monitoring", Added: []netip.Prefix{irtest.Prefix("10.0.0.3/32")}},
			},
		},
		{ // a new pod, selected by the db policy's admin tier only; web isolated for egress
			Base: 2, Generation: 3,
			AddedAddressSets: []ir.AddressSet{irtest.AddrSet("ext", "203.0.113.0/24", "2001:db8::/32")},
			PortSetChanges:   []ir.PortSetChange{{ID: "http-tcp", Added: []netip.AddrPort{irtest.AddrPort("10.0.0.30:80")}}},
			RuleLists: []ir.RuleList{irtest.List("np/default/web/egress", "NetworkPolicy", "default", "web", ir.Egress,
				irtest.Rule(0, ir.Allow, irtest.Peers("ext", "frontend"), irtest.Ports(irtest.Port(ir.TCP, 443, 443))))},
			Endpoints: []ir.Endpoint{
				irtest.Endpoint("default/new", []string{"10.0.0.30"}, irtest.Ingress(irtest.Tier(ir.TierAdmin, "anp/pass-front/ingress", "anp/allow-mon/ingress"))),
				irtest.Endpoint("default/web", []string{"10.0.0.2", "fd00::2"},
					irtest.Ingress(irtest.Tier(ir.TierBaseline, "banp/default/ingress")), irtest.Egress(irtest.Tier(ir.TierNetworkPolicy, "np/default/web/egress"))),
			},
		},
		{ // a policy changes: a Pass rule appears in the second admin list
			Base: 3, Generation: 4,
			RuleLists: []ir.RuleList{irtest.List("anp/allow-mon/ingress", "AdminNetworkPolicy", "", "allow-mon", ir.Ingress,
				irtest.Rule(0, ir.Pass, irtest.Peers("block-ext")),
				irtest.Rule(1, ir.Allow, irtest.Peers("monitoring"), irtest.Ports(irtest.Port(ir.TCP, 9090, 9091))))},
		},
		{ // a pod goes, another takes its address; a policy and its set go
			Base: 4, Generation: 5,
			RemovedEndpoints: []string{"default/free", "default/new"},
			Endpoints: []ir.Endpoint{irtest.Endpoint("default/reuse", []string{"10.0.0.3"},
				irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np/default/db/ingress")))},
			RemovedRuleLists:   []string{"np/default/web/egress"},
			RemovedAddressSets: []string{"ext"},
			// web loses its egress isolation (the list is gone)
		},
		{ // the admin tier goes away from db; a named-port set goes
			Base: 5, Generation: 6,
			RuleLists: []ir.RuleList{irtest.List("np/default/db/ingress", "NetworkPolicy", "default", "db", ir.Ingress,
				irtest.Rule(0, ir.Allow, irtest.Peers("frontend"), irtest.Ports(irtest.Port(ir.TCP, 5432, 5432))))},
			Endpoints: []ir.Endpoint{irtest.Endpoint("default/db", []string{"10.0.0.10", "fd00::10"},
				irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np/default/db/ingress")),
				irtest.Egress(irtest.Tier(ir.TierNetworkPolicy, "np/default/db/egress")))},
			RemovedPortSets: []string{"http-tcp"},
		},
	}
}

func TestApplyMatchesSync(t *testing.T) {
	b, ns := newTestBackend(t)
	ref, err := New(Config{NetNS: int(ns), TableName: "palisade-ref"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ref.Close() })

	snap := testSnapshot()
	mustSync(t, b, snap)
	steps := deltaSteps()
	// Step 4 also drops web's egress tier, which referenced the removed list.
	steps[3].Endpoints = append(steps[3].Endpoints, irtest.Endpoint("default/web", []string{"10.0.0.2", "fd00::2"},
		irtest.Ingress(irtest.Tier(ir.TierBaseline, "banp/default/ingress"))))
	for _, d := range steps {
		require.NoError(t, snap.Apply(&d), "test delta %d→%d", d.Base, d.Generation)
		require.NoError(t, b.Apply(context.Background(), &d), "delta %d→%d", d.Base, d.Generation)

		// The reference: a fresh Sync of the resulting snapshot into
		// another table of the same namespace.
		require.NoError(t, ref.Cleanup(context.Background()))
		mustSync(t, ref, snap)
		got, want := kernelModel(t, b), kernelModel(t, ref)
		assert.Empty(t, diffModels(got, want.m, nil), "after delta %d→%d, Apply and Sync differ", d.Base, d.Generation)
		requireKernelEquals(t, b, snap)

		changes, _ := mustSync(t, b, snap)
		assert.Zero(t, changes, "Sync after Apply %d→%d", d.Base, d.Generation)
	}
}

func TestApplyIsMinimal(t *testing.T) {
	b, _ := newTestBackend(t)
	snap := testSnapshot()
	mustSync(t, b, snap)
	d := deltaSteps()[0]
	tx := newTx(b.cfg.TableName)
	st, err := build(snap, 0)
	require.NoError(t, err)
	require.NoError(t, st.check(&d))
	require.NoError(t, st.apply(&d, tx))
	// Three host changes: one out, two in; no chain is touched.
	assert.Equal(t, 3, tx.changes())
	assert.Empty(t, tx.writes)
	assert.Len(t, tx.messages(), 3)
}

func TestApplyRefusesWrongBase(t *testing.T) {
	b, _ := newTestBackend(t)
	snap := testSnapshot()
	mustSync(t, b, snap)
	gen, err := b.c.generation()
	require.NoError(t, err)

	d := deltaSteps()[1] // Base 2, the backend holds 1
	err = b.Apply(context.Background(), &d)
	require.ErrorIs(t, err, ir.ErrStaleBase)
	assert.ErrorContains(t, err, "does not apply to generation 1")

	bad := ir.Delta{Base: 1, Generation: 2, RemovedEndpoints: []string{"default/nobody"}}
	require.Error(t, b.Apply(context.Background(), &bad))

	after, err := b.c.generation()
	require.NoError(t, err)
	assert.Equal(t, gen, after, "nothing was committed")
	requireKernelEquals(t, b, snap)
	good := deltaSteps()[0]
	require.NoError(t, b.Apply(context.Background(), &good), "the backend still holds generation 1")
}

func TestSyncRefusesInvalidSnapshot(t *testing.T) {
	b, _ := newTestBackend(t)
	snap := testSnapshot()
	mustSync(t, b, snap)
	gen, err := b.c.generation()
	require.NoError(t, err)

	for name, tweak := range map[string]func(*ir.Snapshot){
		"dangling set":  func(s *ir.Snapshot) { s.RuleLists[0].Rules[0].Peers = []string{"nope"} },
		"dangling list": func(s *ir.Snapshot) { s.Endpoints[0].Ingress[1].RuleLists = []string{"nope"} },
		"wrong direction": func(s *ir.Snapshot) {
			s.Endpoints[0].Egress[0].RuleLists = []string{"np/default/db/ingress"}
		},
		"shared address": func(s *ir.Snapshot) { s.Endpoints[2].IPs = []netip.Addr{irtest.Addr("10.0.0.10")} },
	} {
		bad := testSnapshot()
		bad.Generation = 2
		tweak(bad)
		_, err := b.Sync(context.Background(), bad)
		assert.Error(t, err, name)
	}
	after, err := b.c.generation()
	require.NoError(t, err)
	assert.Equal(t, gen, after, "nothing was committed")
	requireKernelEquals(t, b, snap)
	changes, _ := mustSync(t, b, snap)
	assert.Zero(t, changes)
}

func TestRestartReconcilesInPlace(t *testing.T) {
	b, ns := newTestBackend(t)
	snap := testSnapshot()
	mustSync(t, b, snap)
	c := libConn(t, ns)
	tbl := &gnft.Table{Name: b.cfg.TableName, Family: gnft.TableFamilyINet}
	handles := func() map[string][]uint64 {
		out := map[string][]uint64{}
		for _, name := range []string{chainEgressForward, chainIngressForward, chainEgressInput} {
			rules, err := c.GetRules(tbl, &gnft.Chain{Name: name, Table: tbl})
			require.NoError(t, err)
			for _, r := range rules {
				out[name] = append(out[name], r.Handle)
			}
		}
		return out
	}
	before := handles()

	// Same snapshot: nothing to do, nothing to repair.
	b2 := reopen(t, ns)
	changes, repairs := mustSync(t, b2, snap)
	assert.Zero(t, changes)
	assert.Empty(t, repairs)

	// A changed snapshot after another restart: only the difference moves
	// (one host out, two in), the base chains keep their rules.
	next := snap.Clone()
	d := deltaSteps()[0]
	require.NoError(t, next.Apply(&d))
	b3 := reopen(t, ns)
	changes, repairs = mustSync(t, b3, next)
	assert.Equal(t, 3, changes)
	assert.Empty(t, repairs)
	assert.Equal(t, before, handles(), "base chains untouched")
	requireKernelEquals(t, b3, next)
}

func TestCleanup(t *testing.T) {
	b, ns := newTestBackend(t)
	c := libConn(t, ns)
	c.AddTable(&gnft.Table{Name: "not-ours", Family: gnft.TableFamilyINet})
	require.NoError(t, c.Flush())

	mustSync(t, b, testSnapshot())
	require.NoError(t, b.Cleanup(context.Background()))
	assert.False(t, kernelModel(t, b).exists)
	require.NoError(t, b.Cleanup(context.Background()), "Cleanup of a missing table")

	tables, err := c.ListTables()
	require.NoError(t, err)
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Name)
	}
	assert.Equal(t, []string{"not-ours"}, names)

	err = b.Apply(context.Background(), &ir.Delta{Base: 1, Generation: 2})
	assert.Error(t, err, "Apply after Cleanup needs a Sync")
	mustSync(t, b, testSnapshot())
	requireKernelEquals(t, b, testSnapshot())
}

func TestGenerationTracking(t *testing.T) {
	b, ns := newTestBackend(t)
	snap := testSnapshot()
	mustSync(t, b, snap)
	require.True(t, b.kgenKnown, "our own batch moved the generation by one")
	gen, err := b.c.generation()
	require.NoError(t, err)
	assert.Equal(t, b.kgen, gen)

	// A batch checked against a stale generation is refused whole.
	tx := newTx(b.cfg.TableName)
	tx.createChain(&chainModel{name: "stale"})
	_, err = b.c.commit(tx.messages(), gen-1, true)
	require.ErrorIs(t, err, errGenChanged)
	assert.NotContains(t, kernelModel(t, b).m.chains, "stale")

	// Someone else commits: Apply still goes through (unchecked), and the
	// next Sync reads the table back and finds nothing to repair.
	other := libConn(t, ns)
	other.AddTable(&gnft.Table{Name: "someone-else", Family: gnft.TableFamilyIPv4})
	require.NoError(t, other.Flush())
	d := deltaSteps()[0]
	require.NoError(t, b.Apply(context.Background(), &d))
	require.NoError(t, snap.Apply(&d))
	assert.False(t, b.kgenKnown)
	changes, repairs := mustSync(t, b, snap)
	assert.Zero(t, changes)
	assert.Empty(t, repairs)
	assert.True(t, b.kgenKnown)
	requireKernelEquals(t, b, snap)
}

// hostsSnapshot is testSnapshot with the Hosts of the pod sets set to hosts
// (generation gen).
func hostsSnapshot(hosts bool, gen uint64) *ir.Snapshot {
	s := testSnapshot()
	s.Generation = gen
	for i := range s.AddressSets {
		if id := s.AddressSets[i].ID; id == "frontend" || id == "monitoring" {
			s.AddressSets[i].Hosts = hosts
		}
	}
	return s
}

// requireSetKinds checks the kind and flags of the pod sets in the kernel.
func requireSetKinds(t *testing.T, b *Backend, hosts bool) {
	t.Helper()
	ks := kernelModel(t, b)
	for _, name := range []string{"a4-frontend", "a6-frontend", "a4-monitoring", "a6-monitoring"} {
		if hosts {
			require.Equal(t, hostKind, ks.m.sets[name].kind, name)
			require.Zero(t, ks.attrs[name].flags, name)
		} else {
			require.Equal(t, addrKind, ks.m.sets[name].kind, name)
			require.Equal(t, uint32(unix.NFT_SET_INTERVAL), ks.attrs[name].flags, name)
		}
	}
}

// TestSyncReplacesSetOfWrongKind: a kernel set of the wrong kind (an interval
// set where a hash set of hosts is wanted, or the reverse) is recreated by
// Sync in one batch, with the rules that reference it, whether the backend
// finds it after a restart, as drift, or by a change of the snapshot.
func TestSyncReplacesSetOfWrongKind(t *testing.T) {
	t.Run("restart", func(t *testing.T) {
		for _, hosts := range []bool{true, false} {
			b, ns := newTestBackend(t)
			mustSync(t, b, hostsSnapshot(!hosts, 1))
			requireSetKinds(t, b, !hosts)

			b2 := reopen(t, ns)
			snap := hostsSnapshot(hosts, 2)
			changes, repairs := mustSync(t, b2, snap)
			assert.Positive(t, changes)
			assert.Empty(t, repairs, "a fresh backend has nothing to compare with")
			requireSetKinds(t, b2, hosts)
			requireKernelEquals(t, b2, snap)
			changes, _ = mustSync(t, b2, snap)
			assert.Zero(t, changes)
		}
	})
	t.Run("drift", func(t *testing.T) {
		b, ns := newTestBackend(t)
		snap := hostsSnapshot(true, 1)
		mustSync(t, b, snap)
		// Someone else programs our table with interval sets.
		other := reopen(t, ns)
		mustSync(t, other, hostsSnapshot(false, 1))
		requireSetKinds(t, b, false)

		changes, repairs := mustSync(t, b, snap)
		assert.Positive(t, changes)
		assert.Contains(t, repairs, "set a4-frontend: type or flags differ")
		assert.Contains(t, repairs, "set a6-monitoring: type or flags differ")
		requireSetKinds(t, b, true)
		requireKernelEquals(t, b, snap)
		changes, repairs = mustSync(t, b, snap)
		assert.Zero(t, changes)
		assert.Empty(t, repairs)

		// Apply still works on the rebuilt sets.
		d := deltaSteps()[0]
		require.NoError(t, b.Apply(context.Background(), &d))
		require.NoError(t, snap.Apply(&d))
		requireKernelEquals(t, b, snap)
	})
	t.Run("snapshot", func(t *testing.T) {
		// The same backend, without a read back: the change of Hosts does
		// not fit a delta, so Sync reads the table and replaces the sets.
		b, _ := newTestBackend(t)
		mustSync(t, b, hostsSnapshot(false, 1))
		snap := hostsSnapshot(true, 2)
		changes, repairs := mustSync(t, b, snap)
		assert.Positive(t, changes)
		assert.Empty(t, repairs, "nothing drifted")
		requireSetKinds(t, b, true)
		requireKernelEquals(t, b, snap)
		changes, _ = mustSync(t, b, snap)
		assert.Zero(t, changes)
	})
}

func TestHostSetRefusesPrefix(t *testing.T) {
	b, _ := newTestBackend(t)
	snap := testSnapshot()
	mustSync(t, b, snap)
	gen, err := b.c.generation()
	require.NoError(t, err)

	d := ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{
		{ID: "frontend", Added: []netip.Prefix{irtest.Prefix("10.1.0.0/24")}}}}
	err = b.Apply(context.Background(), &d)
	require.ErrorIs(t, err, ir.ErrInvalid)
	require.ErrorContains(t, err, `address set "frontend": holds hosts only, but has 10.1.0.0/24`)
	d = ir.Delta{Base: 1, Generation: 2, AddedAddressSets: []ir.AddressSet{irtest.HostSet("pods", "10.0.0.0/31")}}
	require.ErrorContains(t, b.Apply(context.Background(), &d), `address set "pods": holds hosts only`)

	bad := testSnapshot()
	bad.Generation = 2
	bad.AddressSets[2].Members = append(bad.AddressSets[2].Members, irtest.Prefix("10.9.0.0/16"))
	_, err = b.Sync(context.Background(), bad)
	require.Error(t, err)

	after, err := b.c.generation()
	require.NoError(t, err)
	assert.Equal(t, gen, after, "nothing was committed")
	requireKernelEquals(t, b, snap)

	// The IR holds IPv4 in its plain form only (the memory backend would
	// read a mapped one as IPv6): a mapped address is refused.
	mapped := ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{
		{ID: "frontend", Added: []netip.Prefix{irtest.Prefix("::ffff:10.0.0.7/128")}}}}
	require.ErrorIs(t, b.Apply(context.Background(), &mapped), ir.ErrInvalid)
	ok := ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{
		{ID: "frontend", Added: []netip.Prefix{irtest.Prefix("10.0.0.7/32"), irtest.Prefix("fd00::7/128")}}}}
	require.NoError(t, b.Apply(context.Background(), &ok))
	require.NoError(t, snap.Apply(&ok))
	requireKernelEquals(t, b, snap)
	assert.Contains(t, kernelModel(t, b).m.sets["a4-frontend"].hosts, irtest.Addr("10.0.0.7"))
}
