package nftables

import (
	"context"
	"net/netip"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
)

// BenchmarkTransport programs the same ruleset (10k endpoints, 1k rule
// lists) through our transport (tx.go, netlink.go over mdlayher/netlink)
// and through google/nftables' own Conn (its batch, set and dump calls), in
// one namespace and one run, for the three operations the backend does: a
// cold load, a one-pod label change (two set elements), and reading the
// table back. The expressions are the same: ours, decoded into
// github.com/google/nftables/expr values for Conn. doc.go holds the
// figures and the decision.
func BenchmarkTransport(b *testing.B) {
	be, ns := newTestBackend(b)
	snap := synth{pods: 10000, policies: 500}.snapshot()
	st, err := build(snap, 0)
	require.NoError(b, err)
	g := newGnftRuleset(b, be.cfg.TableName, st.m)
	// Both load the same thing.
	c := gnftConn(b, int(ns))
	g.load(b, c)
	require.NoError(b, c.Flush())
	require.NoError(b, c.CloseLasting())
	require.Empty(b, diffModels(kernelModel(b, be), st.m, nil), "google/nftables loaded another ruleset")

	b.Run("cold/palisade", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			require.NoError(b, be.Cleanup(context.Background()))
			fresh, err := New(be.cfg)
			require.NoError(b, err)
			b.StartTimer()
			_, err = fresh.Sync(context.Background(), snap)
			require.NoError(b, err)
			b.StopTimer()
			_ = fresh.Close()
			b.StartTimer()
		}
	})
	b.Run("cold/google-nftables", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			require.NoError(b, be.Cleanup(context.Background()))
			b.StartTimer()
			c := gnftConn(b, int(ns))
			g.load(b, c)
			require.NoError(b, c.Flush())
			b.StopTimer()
			_ = c.CloseLasting()
			b.StartTimer()
		}
	})

	// The label change of BenchmarkApplyLabelChange: a pod moves between
	// two peer sets.
	require.NoError(b, be.Cleanup(context.Background()))
	_, err = be.Sync(context.Background(), snap)
	require.NoError(b, err)
	p := ir.HostPrefix(podIP(0))
	gen := snap.Generation
	moves := 0 // across the runs of a sub-benchmark: where the pod is
	b.Run("one-pod/palisade-apply", func(b *testing.B) {
		for range b.N {
			from, to := "n0-app0", "n0-app1"
			if moves%2 == 1 {
				from, to = to, from
			}
			moves++
			d := &ir.Delta{Base: gen, Generation: gen + 1, AddressSetChanges: []ir.AddressSetChange{
				{ID: from, Removed: []netip.Prefix{p}}, {ID: to, Added: []netip.Prefix{p}},
			}}
			require.NoError(b, be.Apply(context.Background(), d))
			gen++
		}
	})
	// The same two elements through our transport alone (no compiler).
	b.Run("one-pod/palisade-transport", func(b *testing.B) {
		app0, app1 := be.st.m.sets["a4-n0-app0"], be.st.m.sets["a4-n0-app1"]
		for range b.N {
			from, to := app0, app1
			if moves%2 == 1 {
				from, to = to, from
			}
			moves++
			t := newTx(be.cfg.TableName)
			t.delHost(from, p.Addr())
			t.addHost(to, p.Addr())
			_, err := be.c.commit(t.messages(), 0, false)
			require.NoError(b, err)
		}
	})
	c = gnftConn(b, int(ns))
	defer func() { _ = c.CloseLasting() }()
	key := p.Addr().AsSlice()
	b.Run("one-pod/google-nftables", func(b *testing.B) {
		app0, app1 := g.sets["a4-n0-app0"], g.sets["a4-n0-app1"]
		for range b.N {
			from, to := app0, app1
			if moves%2 == 1 {
				from, to = to, from
			}
			moves++
			require.NoError(b, c.SetDeleteElements(from, []gnft.SetElement{{Key: key}}))
			require.NoError(b, c.SetAddElements(to, []gnft.SetElement{{Key: key}}))
			require.NoError(b, c.Flush())
		}
	})

	b.Run("dump/palisade", func(b *testing.B) {
		for range b.N {
			_, err := be.c.read(unix.NFPROTO_INET, be.cfg.TableName)
			require.NoError(b, err)
		}
	})
	b.Run("dump/google-nftables", func(b *testing.B) {
		for range b.N {
			g.dump(b, c)
		}
	})
}

// gnftConn is a lasting google/nftables connection to ns with socket
// buffers large enough for a cold load (one batch of several MiB).
func gnftConn(tb testing.TB, ns int) *gnft.Conn {
	c, err := gnft.New(gnft.WithNetNSFd(ns), gnft.AsLasting(), gnft.WithSockOptions(func(nl *netlink.Conn) error {
		raw, err := nl.SyscallConn()
		if err != nil {
			return err
		}
		return raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20)
			// Conn asks an ack of every message of a batch: a cold load
			// overflows a smaller receive buffer (ENOBUFS).
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20)
		})
	}))
	require.NoError(tb, err)
	return c
}

// gnftRuleset is a model in google/nftables' types.
type gnftRuleset struct {
	table  *gnft.Table
	sets   map[string]*gnft.Set
	elems  map[string][]gnft.SetElement
	chains []*gnft.Chain
	rules  []*gnft.Rule
}

func newGnftRuleset(tb testing.TB, table string, m *model) *gnftRuleset {
	g := &gnftRuleset{
		table: &gnft.Table{Family: gnft.TableFamilyINet, Name: table},
		sets:  map[string]*gnft.Set{},
		elems: map[string][]gnft.SetElement{},
	}
	t := newTx(table)
	for _, name := range sortedKeys(m.sets) {
		s := m.sets[name]
		addElements(s, t)
		addr := gnft.TypeIPAddr
		if s.fam == ir.IPv6 {
			addr = gnft.TypeIP6Addr
		}
		gs := &gnft.Set{Table: g.table, Name: name, KeyType: addr, Comment: commentSafe(s.comment)}
		switch s.kind {
		case addrKind:
			gs.Interval = true
		case portKind:
			kt, err := gnft.ConcatSetType(addr, gnft.TypeInetService)
			require.NoError(tb, err)
			gs.KeyType, gs.Concatenation = kt, true
		case vmapKind:
			gs.IsMap, gs.DataType = true, gnft.TypeVerdict
		}
		g.sets[name] = gs
		if o := t.elems[name]; o != nil {
			for _, e := range o.addElems() {
				ge := gnft.SetElement{Key: e.key, IntervalEnd: e.end}
				if e.chain != "" {
					ge.VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: e.chain}
				}
				g.elems[name] = append(g.elems[name], ge)
			}
		}
	}
	for _, name := range sortedKeys(m.chains) {
		c := m.chains[name]
		gc := &gnft.Chain{Table: g.table, Name: name}
		if c.base != nil {
			prio := gnft.ChainPriority(c.base.prio)
			accept := gnft.ChainPolicyAccept
			gc.Hooknum, gc.Priority, gc.Type, gc.Policy = gnft.ChainHookRef(gnft.ChainHook(c.base.hook)), &prio, gnft.ChainTypeFilter, &accept
		}
		g.chains = append(g.chains, gc)
		for _, r := range c.rules {
			gr := &gnft.Rule{Table: g.table, Chain: gc, UserData: r.udata}
			for _, b := range r.exprs {
				e, err := decodeExpr(b)
				require.NoError(tb, err, "chain %s", name)
				gr.Exprs = append(gr.Exprs, e)
			}
			g.rules = append(g.rules, gr)
		}
	}
	return g
}

// load queues the whole ruleset on c (one batch at Flush), in the order
// our tx uses: the verdict maps' jumps after the chains they name. Conn
// puts all the elements of one call in one netlink attribute, whose length
// is 16 bits: past about 64 KiB the message is corrupt (the kernel answers
// ENOENT), so elements go in calls of gnftChunk, as our tx splits them.
func (g *gnftRuleset) load(tb testing.TB, c *gnft.Conn) {
	c.AddTable(g.table)
	add := func(name string) {
		for es := g.elems[name]; len(es) > 0; {
			n := min(len(es), gnftChunk)
			require.NoError(tb, c.SetAddElements(g.sets[name], es[:n]))
			es = es[n:]
		}
	}
	for _, name := range sortedKeys(g.sets) {
		require.NoError(tb, c.AddSet(g.sets[name], nil))
		if !g.sets[name].IsMap {
			add(name)
		}
	}
	for _, ch := range g.chains {
		c.AddChain(ch)
	}
	for _, r := range g.rules {
		c.AddRule(r)
	}
	for _, name := range sortedKeys(g.sets) {
		if g.sets[name].IsMap {
			add(name)
		}
	}
}

const gnftChunk = 512

// dump reads the table back: chains, rules, sets and their elements.
func (g *gnftRuleset) dump(tb testing.TB, c *gnft.Conn) {
	chains, err := c.ListChainsOfTableFamily(gnft.TableFamilyINet)
	require.NoError(tb, err)
	for _, ch := range chains {
		if ch.Table.Name != g.table.Name {
			continue
		}
		_, err := c.GetRules(g.table, ch)
		require.NoError(tb, err)
	}
	sets, err := c.GetSets(g.table)
	require.NoError(tb, err)
	for _, s := range sets {
		_, err := c.GetSetElements(s)
		require.NoError(tb, err)
	}
}
