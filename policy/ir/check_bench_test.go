package ir_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// benchSnapshot has n endpoints in n/10 policies: policy i selects pods
// 10i..10i+9 and admits the pods of its own hosts set.
func benchSnapshot(n int) *ir.Snapshot {
	s := &ir.Snapshot{Generation: 1}
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for p := range n / 10 {
		set := ir.AddressSet{ID: fmt.Sprintf("pods-%d", p), Hosts: true}
		for i := 10 * p; i < 10*p+10; i++ {
			set.Members = append(set.Members, ir.HostPrefix(addr(i)))
		}
		s.AddressSets = append(s.AddressSets, set)
		list := fmt.Sprintf("np-%d", p)
		s.RuleLists = append(s.RuleLists, irtest.List(list, "NetworkPolicy", "ns", list, ir.Ingress,
			irtest.Rule(0, ir.Allow, irtest.Peers(set.ID), irtest.Ports(irtest.Port(ir.TCP, 80, 80)))))
		for i := 10 * p; i < 10*p+10; i++ {
			s.Endpoints = append(s.Endpoints, ir.Endpoint{ID: fmt.Sprintf("ns/pod-%d", i), IPs: []netip.Addr{addr(i)},
				Ingress: []ir.Tier{irtest.Tier(ir.TierNetworkPolicy, list)}})
		}
	}
	s.Sort()
	return s
}

// BenchmarkCheckDelta measures the validator on the deltas a backend
// checks, beside the empty delta (the fixed cost) as the baseline: a
// one-pod change (a label change moves it between sets; a new pod) costs
// the same at 10k and 100k endpoints; removing a policy scans the held
// endpoints for references to its list.
func BenchmarkCheckDelta(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		s := benchSnapshot(n)
		held := s.Held()
		p := netip.MustParsePrefix
		deltas := []struct {
			name string
			d    *ir.Delta
		}{
			{"empty", &ir.Delta{Base: 1, Generation: 2}},
			{"label-change", &ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{
				{ID: "pods-0", Removed: []netip.Prefix{p("10.0.0.1/32")}},
				{ID: "pods-1", Added: []netip.Prefix{p("10.0.0.1/32")}}}}},
			{"new-pod", &ir.Delta{Base: 1, Generation: 2,
				AddressSetChanges: []ir.AddressSetChange{{ID: "pods-0", Added: []netip.Prefix{p("10.200.0.1/32")}}},
				Endpoints: []ir.Endpoint{{ID: "ns/new", IPs: []netip.Addr{netip.MustParseAddr("10.200.0.1")},
					Ingress: []ir.Tier{irtest.Tier(ir.TierNetworkPolicy, "np-0")}}}}},
			{"remove-policy", func() *ir.Delta {
				d := &ir.Delta{Base: 1, Generation: 2, RemovedRuleLists: []string{"np-0"}, RemovedAddressSets: []string{"pods-0"}}
				for i := range 10 {
					d.Endpoints = append(d.Endpoints, ir.Endpoint{ID: fmt.Sprintf("ns/pod-%d", i), IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})}})
				}
				return d
			}()},
		}
		for _, tc := range deltas {
			b.Run(fmt.Sprintf("endpoints=%d/%s", n, tc.name), func(b *testing.B) {
				if err := ir.CheckDelta(held, tc.d); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					_ = ir.CheckDelta(held, tc.d)
				}
			})
		}
	}
}
