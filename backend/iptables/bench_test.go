package iptables

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

func benchIP(i int) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 10<<24+uint32(i)+1)
	return netip.AddrFrom4(b)
}

// synthSnapshot is a cluster seen from one node: pods local endpoints, 100
// per namespace and 5 apps per namespace, an address set per app and per
// namespace; each policy (namespace n, app k) has an ingress list
// admitting the next app on TCP 80 and 8080-8090 and an egress list to its
// namespace plus UDP 53, and selects the pods of app k.
func synthSnapshot(pods, policies int) *ir.Snapshot {
	const perNS, apps = 100, 5
	nss := max(pods/perNS, 1)
	s := &ir.Snapshot{Generation: 1}
	appSet := func(ns, app int) string { return fmt.Sprintf("n%d-app%d", ns, app) }
	members := map[string][]netip.Prefix{}
	for i := 0; i < pods; i++ {
		ns, app := i/perNS, i%apps
		p := ir.HostPrefix(benchIP(i))
		members[appSet(ns, app)] = append(members[appSet(ns, app)], p)
		members[fmt.Sprintf("n%d-all", ns)] = append(members[fmt.Sprintf("n%d-all", ns)], p)
	}
	for id, m := range members {
		s.AddressSets = append(s.AddressSets, ir.AddressSet{ID: id, Members: m})
	}
	s.AddressSets = append(s.AddressSets, ir.AddressSet{ID: "dns", Members: []netip.Prefix{irtest.Prefix("10.96.0.10/32")}})
	selected := map[[2]int][]int{}
	for p := 0; p < policies; p++ {
		ns, app := p%nss, (p/nss)%apps
		selected[[2]int{ns, app}] = append(selected[[2]int{ns, app}], p)
		origin := ir.Origin{Kind: "NetworkPolicy", Namespace: fmt.Sprintf("ns-%d", ns), Name: fmt.Sprintf("pol-%d", p)}
		s.RuleLists = append(s.RuleLists,
			ir.RuleList{ID: fmt.Sprintf("np-%d-in", p), Origin: origin, Direction: ir.Ingress, Rules: []ir.Rule{
				{Index: 0, Action: ir.Allow, Peers: []string{appSet(ns, (app+1)%apps)}, Ports: []ir.PortMatch{{Protocol: ir.TCP, Port: 80, EndPort: 80}, {Protocol: ir.TCP, Port: 8080, EndPort: 8090}}},
			}},
			ir.RuleList{ID: fmt.Sprintf("np-%d-eg", p), Origin: origin, Direction: ir.Egress, Rules: []ir.Rule{
				{Index: 0, Action: ir.Allow, Peers: []string{fmt.Sprintf("n%d-all", ns)}, AllPorts: true},
				{Index: 1, Action: ir.Allow, Peers: []string{"dns"}, Ports: []ir.PortMatch{{Protocol: ir.UDP, Port: 53, EndPort: 53}}},
			}})
	}
	for i := 0; i < pods; i++ {
		ns, app := i/perNS, i%apps
		ep := ir.Endpoint{ID: fmt.Sprintf("ns-%d/pod-%d", ns, i), IPs: []netip.Addr{benchIP(i)}}
		if ps := selected[[2]int{ns, app}]; len(ps) > 0 {
			in, eg := ir.Tier{Kind: ir.TierNetworkPolicy}, ir.Tier{Kind: ir.TierNetworkPolicy}
			for _, p := range ps {
				in.RuleLists = append(in.RuleLists, fmt.Sprintf("np-%d-in", p))
				eg.RuleLists = append(eg.RuleLists, fmt.Sprintf("np-%d-eg", p))
			}
			ep.Ingress, ep.Egress = []ir.Tier{in}, []ir.Tier{eg}
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	s.Sort()
	return s
}

// BenchmarkSyncCold is a full Sync of 10k endpoints and 1k policies (2k
// rule lists) into an empty namespace: ipset restore, iptables-restore,
// ip6tables-restore, reads included.
func BenchmarkSyncCold(b *testing.B) {
	for _, mode := range modes {
		b.Run(string(mode), func(b *testing.B) {
			snap := synthSnapshot(10000, 1000)
			be, _ := newTestBackend(b, mode)
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				require.NoError(b, be.Cleanup(ctx))
				b.StartTimer()
				_, err := be.Sync(ctx, snap)
				require.NoError(b, err)
			}
		})
	}
}

// BenchmarkSyncNoop is a Sync that finds everything in place (reads and
// compares only).
func BenchmarkSyncNoop(b *testing.B) {
	for _, mode := range modes {
		b.Run(string(mode), func(b *testing.B) {
			snap := synthSnapshot(10000, 1000)
			be, _ := newTestBackend(b, mode)
			ctx := context.Background()
			_, err := be.Sync(ctx, snap)
			require.NoError(b, err)
			for b.Loop() {
				rep, err := be.Sync(ctx, snap)
				require.NoError(b, err)
				require.Zero(b, rep.Changes)
			}
		})
	}
}

// BenchmarkApplyOnePod is one pod's label change at that size: the pod
// leaves one app set and joins another (two ipset elements, one exec).
func BenchmarkApplyOnePod(b *testing.B) {
	for _, mode := range modes {
		b.Run(string(mode), func(b *testing.B) {
			snap := synthSnapshot(10000, 1000)
			be, _ := newTestBackend(b, mode)
			ctx := context.Background()
			_, err := be.Sync(ctx, snap)
			require.NoError(b, err)
			p := ir.HostPrefix(benchIP(0)) // in n0-app0
			gen := snap.Generation
			in := true
			for b.Loop() {
				d := ir.Delta{Base: gen, Generation: gen + 1}
				from, to := "n0-app0", "n0-app1"
				if !in {
					from, to = to, from
				}
				d.AddressSetChanges = []ir.AddressSetChange{
					{ID: to, Added: []netip.Prefix{p}},
					{ID: from, Removed: []netip.Prefix{p}},
				}
				require.NoError(b, be.Apply(ctx, &d))
				gen++
				in = !in
			}
		})
	}
}

// BenchmarkBuild is the compile step of a full Sync alone (no kernel):
// 10k endpoints, 1k policies.
func BenchmarkBuild(b *testing.B) {
	snap := synthSnapshot(10000, 1000)
	n := &names{chain: DefaultChainPrefix, set: DefaultSetPrefix, allow: DefaultAllowMark, pass: DefaultPassMark}
	for b.Loop() {
		_, err := build(n, snap)
		require.NoError(b, err)
	}
}

// BenchmarkDriftCheck is one poll of the drift check (Changed: our chains
// and jumps read back, set names listed) at 10k endpoints, beside the
// baseline of a Sync that finds everything in place (members read too).
func BenchmarkDriftCheck(b *testing.B) {
	for _, mode := range modes {
		b.Run(string(mode), func(b *testing.B) {
			snap := synthSnapshot(10000, 1000)
			be, _ := newTestBackend(b, mode)
			ctx := context.Background()
			_, err := be.Sync(ctx, snap)
			require.NoError(b, err)
			b.Run("Changed", func(b *testing.B) {
				for b.Loop() {
					changed, err := be.Changed(ctx)
					require.NoError(b, err)
					require.False(b, changed)
				}
			})
			b.Run("SyncNoop-baseline", func(b *testing.B) {
				for b.Loop() {
					rep, err := be.Sync(ctx, snap)
					require.NoError(b, err)
					require.Zero(b, rep.Changes)
				}
			})
		})
	}
}
