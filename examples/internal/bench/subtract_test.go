package bench

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go4.org/netipx"

	"github.com/palisade-net/palisade/policy/ir"
)

// ir.Subtract against go4.org/netipx's IPSetBuilder, the candidate
// replacement: same answers (TestSubtractMatchesNetipx) and the cost of
// each in the same run (BenchmarkSubtract). The library keeps its own
// Subtract unless netipx is shorter and as fast (see policy/ir/prefix.go);
// this comparison lives in the examples module so that the library's
// importers never see the dependency.

func subtractNetipx(cidr netip.Prefix, excepts []netip.Prefix) []netip.Prefix {
	var b netipx.IPSetBuilder
	b.AddPrefix(cidr.Masked())
	for _, ex := range excepts {
		b.RemovePrefix(ex.Masked())
	}
	s, err := b.IPSet()
	if err != nil {
		panic(err) // only on invalid prefixes, which the cases never hold
	}
	return s.Prefixes()
}

type subtractCase struct {
	name    string
	cidr    netip.Prefix
	excepts []netip.Prefix
}

// subtractCases: a typical ipBlock (one except), a private range with a
// few holes, and IPv6 with many scattered excepts.
func subtractCases() []subtractCase {
	r := rand.New(rand.NewPCG(1, 2))
	v4 := func(n int) []netip.Prefix {
		var out []netip.Prefix
		for range n {
			a := netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), 0})
			out = append(out, netip.PrefixFrom(a, 24))
		}
		return out
	}
	v6 := func(n int) []netip.Prefix {
		var out []netip.Prefix
		for range n {
			b := [16]byte{0xfd, 0, 0, 0, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
			out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), 64))
		}
		return out
	}
	return []subtractCase{
		{"v4/1-except", netip.MustParsePrefix("192.168.0.0/16"), []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}},
		{"v4/8-excepts", netip.MustParsePrefix("10.0.0.0/8"), v4(8)},
		{"v4/100-excepts", netip.MustParsePrefix("10.0.0.0/8"), v4(100)},
		{"v6/100-excepts", netip.MustParsePrefix("fd00::/16"), v6(100)},
	}
}

func TestSubtractMatchesNetipx(t *testing.T) {
	cases := subtractCases()
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		base := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), 0, 0}), 8+r.IntN(12))
		var ex []netip.Prefix
		for range r.IntN(6) {
			a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
			ex = append(ex, netip.PrefixFrom(a, 8+r.IntN(25)))
		}
		cases = append(cases, subtractCase{fmt.Sprint("random ", i), base, ex})
	}
	for _, c := range cases {
		if diff := cmp.Diff(subtractNetipx(c.cidr, c.excepts), ir.Subtract(c.cidr, c.excepts), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: %s minus %v (-netipx +ir):\n%s", c.name, c.cidr, c.excepts, diff)
		}
	}
}

func BenchmarkSubtract(b *testing.B) {
	for _, c := range subtractCases() {
		b.Run(c.name+"/ir", func(b *testing.B) {
			for range b.N {
				_ = ir.Subtract(c.cidr, c.excepts)
			}
		})
		b.Run(c.name+"/netipx", func(b *testing.B) {
			for range b.N {
				_ = subtractNetipx(c.cidr, c.excepts)
			}
		})
	}
}
