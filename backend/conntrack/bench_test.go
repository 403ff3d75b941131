package conntrack_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/conntrack"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// The benchmark cluster: benchNamespaces namespaces of benchPods pods;
// in each, the first half are frontends (the set fe-<ns>, no policy of
// their own) and the second half databases that accept TCP/6379 from the
// frontends. benchEntries connections, frontend → database of the same
// namespace, spread evenly.
const (
	benchNamespaces = 100
	benchPods       = 100
	benchEntries    = 10000
)

func benchPod(ns, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(ns / 256), byte(ns % 256), byte(i + 1)})
}

func benchCluster() *ir.Snapshot {
	s := &ir.Snapshot{Generation: 1}
	for ns := range benchNamespaces {
		set := ir.AddressSet{ID: fmt.Sprintf("fe-%d", ns), Hosts: true}
		for i := range benchPods / 2 {
			set.Members = append(set.Members, ir.HostPrefix(benchPod(ns, i)))
		}
		s.AddressSets = append(s.AddressSets, set)
		list := fmt.Sprintf("np-%d", ns)
		s.RuleLists = append(s.RuleLists, irtest.List(list, "NetworkPolicy", fmt.Sprint(ns), "db", ir.Ingress,
			irtest.Rule(0, ir.Allow, irtest.Peers(set.ID), irtest.Ports(irtest.Port(ir.TCP, 6379, 6379)))))
		for i := range benchPods {
			ep := ir.Endpoint{ID: fmt.Sprintf("%d/pod-%d", ns, i), IPs: []netip.Addr{benchPod(ns, i)}}
			if i >= benchPods/2 {
				ep.Ingress = []ir.Tier{irtest.Tier(ir.TierNetworkPolicy, list)}
			}
			s.Endpoints = append(s.Endpoints, ep)
		}
	}
	s.Sort()
	return s
}

func benchEntriesOf(r *rand.Rand) []*netlink.ConntrackFlow {
	out := make([]*netlink.ConntrackFlow, benchEntries)
	for k := range out {
		ns := k % benchNamespaces
		src, dst := benchPod(ns, r.IntN(benchPods/2)), benchPod(ns, benchPods/2+r.IntN(benchPods/2))
		sport := uint16(10000 + k)
		out[k] = &netlink.ConntrackFlow{
			FamilyType: unix.AF_INET,
			Forward:    netlink.IPTuple{Protocol: unix.IPPROTO_TCP, SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice()), SrcPort: sport, DstPort: 6379},
			Reverse:    netlink.IPTuple{Protocol: unix.IPPROTO_TCP, SrcIP: net.IP(dst.AsSlice()), DstIP: net.IP(src.AsSlice()), SrcPort: 6379, DstPort: sport},
		}
	}
	return out
}

// labelChange is frontend 0 of namespace 0 losing its label (i even) or
// getting it back.
func labelChange(gen uint64, i int) *ir.Delta {
	ch := ir.AddressSetChange{ID: "fe-0"}
	if i%2 == 0 {
		ch.Removed = []netip.Prefix{ir.HostPrefix(benchPod(0, 0))}
	} else {
		ch.Added = []netip.Prefix{ir.HostPrefix(benchPod(0, 0))}
	}
	return &ir.Delta{Base: gen, Generation: gen + 1, AddressSetChanges: []ir.AddressSetChange{ch}}
}

// BenchmarkJudge is the re-evaluation alone: every one of the 10k entries
// offered to the Judge after one label change ("change": the entries of
// the 50 databases the change affects are evaluated, the rest skipped) and
// after a Sync ("every-entry": all are evaluated).
func BenchmarkJudge(b *testing.B) {
	model := memory.New(memory.Config{})
	_, err := model.Sync(context.Background(), benchCluster())
	require.NoError(b, err)
	d := labelChange(1, 0)
	require.NoError(b, model.Apply(context.Background(), d))
	affected := map[netip.Addr]bool{}
	for _, ip := range model.Affected(d) {
		affected[ip] = true
	}
	entries := benchEntriesOf(rand.New(rand.NewPCG(1, 2)))
	for _, c := range []struct {
		name string
		all  bool
	}{{"change", false}, {"every-entry", true}} {
		b.Run(c.name, func(b *testing.B) {
			j := conntrack.NewJudge(model, nil, affected, c.all)
			cut := 0
			for b.Loop() {
				cut = 0
				for _, e := range entries {
					if j.Cut(e) {
						cut++
					}
				}
			}
			b.ReportMetric(float64(cut), "cut/op")
		})
	}
}

// BenchmarkApply is one label change through the whole Follower, wrapping
// a memory backend, with 10k entries in an in-memory table: "keep" is the
// baseline (the change alone), "follow" adds the model, the affected
// endpoints and the re-evaluation.
func BenchmarkApply(b *testing.B) {
	for _, mode := range []conntrack.Mode{conntrack.ModeKeep, conntrack.ModeFollow} {
		b.Run(string(mode), func(b *testing.B) {
			tab := &fakeTable{entries: benchEntriesOf(rand.New(rand.NewPCG(1, 2)))}
			f, err := conntrack.New(memory.New(memory.Config{}), conntrack.Config{Mode: mode, Table: tab})
			require.NoError(b, err)
			ctx := context.Background()
			_, err = f.Sync(ctx, benchCluster())
			require.NoError(b, err)
			gen := uint64(1)
			i := 0
			for b.Loop() {
				if err := f.Apply(ctx, labelChange(gen, i)); err != nil {
					b.Fatal(err)
				}
				gen++
				i++
			}
		})
	}
}

// BenchmarkNetlink is one dump of a real connection-tracking table, in a
// scratch namespace, with every entry offered to a Judge of the change
// (which cuts none: the entries were all created as allowed):
// "empty" is the same dump of a table with nothing in it (the baseline:
// a dump walks the kernel's hash table, shared by every namespace).
func BenchmarkNetlink(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: creates conntrack entries in a scratch network namespace")
	}
	model := memory.New(memory.Config{})
	_, err := model.Sync(context.Background(), benchCluster())
	require.NoError(b, err)
	affected := map[netip.Addr]bool{}
	for _, ip := range model.Affected(labelChange(1, 0)) {
		affected[ip] = true
	}
	j := conntrack.NewJudge(model, nil, affected, false)
	for _, n := range []int{0, benchEntries} {
		name := "empty"
		if n > 0 {
			name = fmt.Sprintf("%d-entries", n)
		}
		b.Run(name, func(b *testing.B) {
			ns := backendtest.NewNetNS(b, "conntrack entries")
			h, err := netlink.NewHandleAt(ns)
			require.NoError(b, err)
			b.Cleanup(h.Close)
			for _, e := range benchEntriesOf(rand.New(rand.NewPCG(1, 2)))[:n] {
				e.TimeOut = 600
				e.ProtoInfo = &netlink.ProtoInfoTCP{State: 3} // established
				require.NoError(b, h.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, e))
			}
			tab := conntrack.NetlinkTableForTest(b, int(ns))
			seen := 0
			for b.Loop() {
				seen = 0
				cut, err := tab.DeleteMatching(unix.AF_INET, func(e *netlink.ConntrackFlow) bool {
					seen++
					return j.Cut(e)
				})
				require.NoError(b, err)
				require.Zero(b, cut)
			}
			require.Equal(b, n, seen)
		})
	}
}
