package memory_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// Deltas that only change members of pod sets and port sets take a path
// of their own; its result must be the general path's, and a delta that
// does not fit must fail and change nothing, as on the general path.
func TestMemberChangesAgreeWithSnapshotApply(t *testing.T) {
	base := func() *ir.Snapshot {
		hosts := func(s ir.AddressSet) ir.AddressSet { s.Hosts = true; return s }
		return snapshot(hosts(setAB()), hosts(setC()), ipBlock("block", "192.0.2.0/24"),
			irtest.PortSet("tcp-http", ir.TCP, "http", ipA+":80"),
			ruleList("np-a", ir.Ingress,
				irtest.Rule(0, ir.Allow, irtest.Peers("pods-ab", "pods-c"), irtest.Ports(irtest.Named(ir.TCP, "tcp-http")))),
			podA(irtest.Ingress(np("np-a"))), podB(), podC())
	}
	deltas := []struct {
		name string
		d    ir.Delta
		ok   bool
	}{
		{"pod leaves a set", ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "pods-ab", Removed: irtest.Prefixes(ipB+"/32", ipB6+"/128")}}}, true},
		{"pod joins a set", ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "pods-c", Added: irtest.Prefixes(ipB + "/32")}}}, true},
		{"port set", ir.Delta{PortSetChanges: []ir.PortSetChange{{ID: "tcp-http", Added: []netip.AddrPort{irtest.AddrPort(ipA + ":8080")}, Removed: []netip.AddrPort{irtest.AddrPort(ipA + ":80")}}}}, true},
		{"both", ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "pods-ab", Removed: irtest.Prefixes(ipB + "/32")}, {ID: "pods-c", Added: irtest.Prefixes(ipB + "/32")}},
			PortSetChanges:    []ir.PortSetChange{{ID: "tcp-http", Added: []netip.AddrPort{irtest.AddrPort(ipA + ":81")}}}}, true},
		{"block set (general path)", ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "block", Added: irtest.Prefixes("198.51.100.0/24")}}}, true},
		{"absent member removed", ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "pods-c", Removed: irtest.Prefixes(ipA + "/32")}}}, false},
		{"present member added", ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "pods-c", Added: irtest.Prefixes(ipC + "/32")}}}, false},
		{"unknown set", ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "nope", Added: irtest.Prefixes(ipC + "/32")}}}, false},
		{"prefix in a pod set", ir.Delta{AddressSetChanges: []ir.AddressSetChange{{ID: "pods-c", Added: irtest.Prefixes("10.9.0.0/16")}}}, false},
		{"absent port removed", ir.Delta{PortSetChanges: []ir.PortSetChange{{ID: "tcp-http", Removed: []netip.AddrPort{irtest.AddrPort(ipB + ":80")}}}}, false},
	}
	flows := []memory.Flow{
		flow(ipB, ipA, ir.TCP, 80), flow(ipB, ipA, ir.TCP, 8080), flow(ipB, ipA, ir.TCP, 81),
		flow(ipC, ipA, ir.TCP, 80), flow(ipB6, ipA6, ir.TCP, 80), flow("192.0.2.9", ipA, ir.TCP, 80),
	}
	for _, tc := range deltas {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := memory.New(memory.Config{})
			_, err := m.Sync(ctx, base())
			require.NoError(t, err)
			before := m.Dump()
			d := tc.d
			d.Base, d.Generation = 1, 2
			err = m.Apply(ctx, &d)

			want := base()
			werr := want.Apply(&d)
			require.Equal(t, tc.ok, werr == nil, "the general path: %v", werr)
			if !tc.ok {
				assert.Error(t, err)
				assert.Equal(t, before, m.Dump(), "nothing changed")
				return
			}
			require.NoError(t, err)
			ref := memory.New(memory.Config{})
			_, err = ref.Sync(ctx, want)
			require.NoError(t, err)
			assert.Equal(t, ref.Dump(), m.Dump())
			assert.Equal(t, want, m.Snapshot())
			for _, f := range flows {
				assert.Equal(t, ref.Evaluate(f), m.Evaluate(f), "%s", f)
			}
		})
	}
}
