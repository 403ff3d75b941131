package nftables

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/policy/ir"
)

// synth describes a synthetic cluster seen from one node.
type synth struct {
	pods     int // local endpoints, 100 per namespace, 5 apps per namespace
	policies int // NetworkPolicies, each an ingress and an egress list
	remote   int // extra members of a cluster-wide peer set (remote pods)
}

func podIP(i int) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 10<<24+uint32(i)+1)
	return netip.AddrFrom4(b)
}

// snapshot builds the IR: per namespace, an address set per app and one of
// all its pods (sets of hosts, as the engine makes them); per policy (namespace n, app k) an ingress list admitting
// the next app and the remote set on TCP 80 and 8080-8090 and an ipBlock on
// UDP 53, and an egress list to the namespace plus DNS; two cluster-wide
// Admin lists on every pod's ingress.
func (c synth) snapshot() *ir.Snapshot {
	const perNS, apps = 100, 5
	nss := max(c.pods/perNS, 1)
	s := &ir.Snapshot{Generation: 1}
	appSet := func(ns, app int) string { return fmt.Sprintf("n%d-app%d", ns, app) }
	members := map[string][]netip.Prefix{}
	for i := 0; i < c.pods; i++ {
		ns, app := i/perNS, i%apps
		p := ir.HostPrefix(podIP(i))
		members[appSet(ns, app)] = append(members[appSet(ns, app)], p)
		members[fmt.Sprintf("n%d-all", ns)] = append(members[fmt.Sprintf("n%d-all", ns)], p)
	}
	for id, m := range members {
		s.AddressSets = append(s.AddressSets, ir.AddressSet{ID: id, Hosts: true, Members: m})
	}
	s.AddressSets = append(s.AddressSets, ir.AddressSet{ID: "blk", Members: ir.Subtract(netip.MustParsePrefix("172.16.0.0/12"), []netip.Prefix{netip.MustParsePrefix("172.16.5.0/24")})})
	remote := ir.AddressSet{ID: "remote", Hosts: true}
	for i := 0; i < c.remote; i++ {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 100<<24|64<<16+uint32(i)+1)
		remote.Members = append(remote.Members, netip.PrefixFrom(netip.AddrFrom4(b), 32))
	}
	s.AddressSets = append(s.AddressSets, remote)

	listIn := func(p int) string { return fmt.Sprintf("np/ns-%d/pol-%d/ingress", p%nss, p) }
	listEg := func(p int) string { return fmt.Sprintf("np/ns-%d/pol-%d/egress", p%nss, p) }
	for p := 0; p < c.policies; p++ {
		ns, app := p%nss, (p/nss)%apps
		o := ir.Origin{Kind: "NetworkPolicy", Namespace: fmt.Sprintf("ns-%d", ns), Name: fmt.Sprintf("pol-%d", p)}
		s.RuleLists = append(s.RuleLists,
			ir.RuleList{ID: listIn(p), Origin: o, Direction: ir.Ingress, Rules: []ir.Rule{
				{Index: 0, Action: ir.Allow, Peers: []string{appSet(ns, (app+1)%apps), "remote"},
					Ports: []ir.PortMatch{{Protocol: ir.TCP, Port: 80, EndPort: 80}, {Protocol: ir.TCP, Port: 8080, EndPort: 8090}}},
				{Index: 1, Action: ir.Allow, Peers: []string{"blk"}, Ports: []ir.PortMatch{{Protocol: ir.UDP, Port: 53, EndPort: 53}}},
			}},
			ir.RuleList{ID: listEg(p), Origin: o, Direction: ir.Egress, Rules: []ir.Rule{
				{Index: 0, Action: ir.Allow, Peers: []string{fmt.Sprintf("n%d-all", ns)}, AllPorts: true},
				{Index: 1, Action: ir.Allow, AllPeers: true, Ports: []ir.PortMatch{{Protocol: ir.UDP, Port: 53, EndPort: 53}}},
			}})
	}
	s.RuleLists = append(s.RuleLists,
		ir.RuleList{ID: "anp/a", Origin: ir.Origin{Kind: "AdminNetworkPolicy", Name: "a"}, Direction: ir.Ingress, Priority: 1,
			Rules: []ir.Rule{{Action: ir.Pass, Peers: []string{"blk"}, AllPorts: true}, {Index: 1, Action: ir.Deny, AllPeers: true, Ports: []ir.PortMatch{{Protocol: ir.TCP, Port: 23, EndPort: 23}}}}},
		ir.RuleList{ID: "anp/b", Origin: ir.Origin{Kind: "AdminNetworkPolicy", Name: "b"}, Direction: ir.Ingress, Priority: 2,
			Rules: []ir.Rule{{Action: ir.Allow, Peers: []string{"remote"}, Ports: []ir.PortMatch{{Protocol: ir.TCP, Port: 9100, EndPort: 9100}}}}})

	for i := 0; i < c.pods; i++ {
		ns, app := i/perNS, i%apps
		ep := ir.Endpoint{ID: fmt.Sprintf("ns-%d/pod-%d", ns, i), IPs: []netip.Addr{podIP(i)}}
		ep.Ingress = []ir.Tier{{Kind: ir.TierAdmin, RuleLists: []string{"anp/a", "anp/b"}}}
		if p := app*nss + ns; p < c.policies {
			ep.Ingress = append(ep.Ingress, ir.Tier{Kind: ir.TierNetworkPolicy, RuleLists: []string{listIn(p)}})
			ep.Egress = []ir.Tier{{Kind: ir.TierNetworkPolicy, RuleLists: []string{listEg(p)}}}
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	s.Sort()
	return s
}

// elements counts the set and map elements the snapshot programs.
func elements(tb testing.TB, snap *ir.Snapshot) int {
	st, err := build(snap, 0)
	require.NoError(tb, err)
	n := 0
	for _, s := range st.m.sets {
		n += s.size()
	}
	return n
}

func benchBackend(b *testing.B) *Backend {
	be, _ := newTestBackend(b)
	return be
}

// BenchmarkColdSync: 10k endpoints, 1k rule lists into an empty namespace.
func BenchmarkColdSync(b *testing.B) {
	be := benchBackend(b)
	snap := synth{pods: 10000, policies: 500}.snapshot()
	elems := elements(b, snap)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		require.NoError(b, be.Cleanup(context.Background()))
		fresh, err := New(be.cfg)
		require.NoError(b, err)
		b.StartTimer()
		rep, err := fresh.Sync(context.Background(), snap)
		require.NoError(b, err)
		b.StopTimer()
		b.ReportMetric(float64(rep.Changes), "changes")
		_ = fresh.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(elems), "elements")
}

// BenchmarkNoopResync: the same snapshot again (the ruleset generation is
// unchanged, so the table is not read back).
func BenchmarkNoopResync(b *testing.B) {
	be := benchBackend(b)
	snap := synth{pods: 10000, policies: 500}.snapshot()
	_, err := be.Sync(context.Background(), snap)
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := be.Sync(context.Background(), snap)
		require.NoError(b, err)
		if rep.Changes != 0 {
			b.Fatalf("no-op resync changed %d objects", rep.Changes)
		}
	}
}

// BenchmarkFullReadResync: the same snapshot after someone else committed
// (the table is read back over netlink and diffed), e.g. a restart.
func BenchmarkFullReadResync(b *testing.B) {
	be := benchBackend(b)
	snap := synth{pods: 10000, policies: 500}.snapshot()
	_, err := be.Sync(context.Background(), snap)
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		be.kgenKnown = false
		rep, err := be.Sync(context.Background(), snap)
		require.NoError(b, err)
		if rep.Changes != 0 {
			b.Fatalf("resync changed %d objects", rep.Changes)
		}
	}
}

// BenchmarkApplyLabelChange: one pod's labels change, moving it between two
// peer sets; at about 10k and 100k set elements.
func BenchmarkApplyLabelChange(b *testing.B) {
	for _, c := range []struct {
		name string
		s    synth
	}{
		{"elements=10k", synth{pods: 2000, policies: 100, remote: 2000}},
		{"elements=100k", synth{pods: 10000, policies: 500, remote: 60000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			be := benchBackend(b)
			snap := c.s.snapshot()
			elems := elements(b, snap)
			_, err := be.Sync(context.Background(), snap)
			require.NoError(b, err)
			p := ir.HostPrefix(podIP(0)) // ns 0, app 0
			gen := snap.Generation
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				from, to := "n0-app0", "n0-app1"
				if i%2 == 1 {
					from, to = to, from
				}
				d := &ir.Delta{Base: gen, Generation: gen + 1, AddressSetChanges: []ir.AddressSetChange{
					{ID: from, Removed: []netip.Prefix{p}},
					{ID: to, Added: []netip.Prefix{p}},
				}}
				if err := be.Apply(context.Background(), d); err != nil {
					b.Fatal(err)
				}
				gen++
			}
			b.ReportMetric(float64(elems), "elements")
		})
	}
}

// BenchmarkApplyNewEndpoint: a pod appears (two map entries, an existing
// profile) at 10k endpoints.
func BenchmarkApplyNewEndpoint(b *testing.B) {
	be := benchBackend(b)
	snap := synth{pods: 10000, policies: 500}.snapshot()
	_, err := be.Sync(context.Background(), snap)
	require.NoError(b, err)
	template := snap.Endpoints[0]
	gen := snap.Generation
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := &ir.Delta{Base: gen, Generation: gen + 1}
		if i%2 == 0 {
			ep := template.Clone()
			ep.ID, ep.IPs = "extra/pod", []netip.Addr{podIP(50000)}
			d.Endpoints = []ir.Endpoint{ep}
		} else {
			d.RemovedEndpoints = []string{"extra/pod"}
		}
		if err := be.Apply(context.Background(), d); err != nil {
			b.Fatal(err)
		}
		gen++
	}
}

// BenchmarkDriftCheck: the cost of one poll of the drift check at 10k
// endpoints: Changed (the ruleset generation, one netlink round trip)
// beside the baseline of reading our table back and diffing it (Drift).
func BenchmarkDriftCheck(b *testing.B) {
	be := benchBackend(b)
	snap := synth{pods: 10000, policies: 500}.snapshot()
	_, err := be.Sync(context.Background(), snap)
	require.NoError(b, err)
	b.Run("Changed", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			changed, err := be.Changed(context.Background())
			require.NoError(b, err)
			if changed {
				b.Fatal("Changed with nobody else committing")
			}
		}
	})
	b.Run("Drift-baseline", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			drift, err := be.Drift(context.Background())
			require.NoError(b, err)
			if len(drift) > 0 {
				b.Fatalf("drift with nobody else committing: %v", drift)
			}
		}
	})
}
