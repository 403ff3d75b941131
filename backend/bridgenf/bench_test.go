package bridgenf_test

import (
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/bridgenf"
)

// BenchmarkCheck is the cost of one check of a bridged node with 20 pods
// (what the agent pays every --bridge-check-period), beside its baseline:
// reading the one sysctl alone from a thread in the same namespace.
func BenchmarkCheck(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: builds a lab of network namespaces")
	}
	l, err := lab.New(b.Context(), lab.Config{Topology: lab.Bridge})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	for i := range 20 {
		if err := l.AddPod(b.Context(), lab.PodSpec{Name: fmt.Sprintf("x/p%d", i),
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 244, 0, byte(10 + i)}), netip.MustParseAddr(fmt.Sprintf("fd00::%x", 10+i))}}); err != nil {
			b.Fatal(err)
		}
	}
	ns, err := l.NodeNS(0)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			st, err := bridgenf.Check(bridgenf.Config{NetNS: int(ns)})
			if err != nil || !st.OK() {
				b.Fatal(err, st.Reason())
			}
		}
	})
	b.Run("baseline-one-sysctl", func(b *testing.B) {
		for b.Loop() {
			if err := bridgenf.ReadIn(ns, bridgenf.CallIPTablesPath); err != nil {
				b.Fatal(err)
			}
		}
	})
}
