package memory_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

func TestAffected(t *testing.T) {
	// a's ingress uses np-a (peers pods-b, named port set); b's egress uses
	// np-b (all peers); c is unrestricted.
	base := func() *ir.Snapshot {
		return snapshot(setB(), setC(), irtest.PortSet("tcp-http", ir.TCP, "http", ipA+":80"),
			ruleList("np-a", ir.Ingress, irtest.Rule(0, ir.Allow, irtest.Peers("pods-b"), irtest.Ports(irtest.Named(ir.TCP, "tcp-http")))),
			ruleList("np-b", ir.Egress, irtest.Rule(0, ir.Allow, irtest.AllPeers, irtest.AllPorts)),
			podA(irtest.Ingress(np("np-a"))), podB(irtest.Egress(np("np-b"))), podC())
	}
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return out
	}
	for _, tc := range []struct {
		name string
		d    *ir.Delta
		want []netip.Addr
	}{
		{"nil", nil, nil},
		{"empty", &ir.Delta{}, nil},
		{"address set member", &ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "pods-b", Removed: irtest.Prefixes(ipB + "/32")}}}, addrs(ipA, ipA6)},
		{"port set member", &ir.Delta{PortSetChanges: []ir.PortSetChange{{ID: "tcp-http", Added: []netip.AddrPort{irtest.AddrPort(ipA + ":81")}}}}, addrs(ipA, ipA6)},
		{"unused set", &ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "pods-c", Added: irtest.Prefixes("10.0.0.9/32")}}}, nil},
		{"rule list replaced", &ir.Delta{RuleLists: []ir.RuleList{ruleList("np-b", ir.Egress)}}, addrs(ipB, ipB6)},
		{"endpoint upserted and removed", &ir.Delta{Endpoints: []ir.Endpoint{podC()}, RemovedEndpoints: []string{"ns/b", "ns/gone"}}, addrs(ipB, ipB6, ipC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := memory.New(memory.Config{})
			_, err := m.Sync(context.Background(), base())
			require.NoError(t, err)
			got := m.Affected(tc.d)
			slices.SortFunc(got, netip.Addr.Compare)
			assert.Equal(t, tc.want, got)
		})
	}
}
