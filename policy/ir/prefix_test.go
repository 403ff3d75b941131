package ir_test

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// prefixCmp compares prefixes by value (netip types have unexported fields).
var prefixCmp = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

func TestSubtract(t *testing.T) {
	tests := []struct {
		name    string
		cidr    string
		excepts []string
		want    []string
	}{
		{name: "no excepts", cidr: "10.0.0.0/24", want: []string{"10.0.0.0/24"}},
		{name: "cidr is masked first", cidr: "10.0.0.77/24", want: []string{"10.0.0.0/24"}},
		{name: "upper half", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.128/25"}, want: []string{"10.0.0.0/25"}},
		{name: "lower half", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.0/25"}, want: []string{"10.0.0.128/25"}},
		{
			name: "one address in the middle", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.5/32"},
			want: []string{
				"10.0.0.0/30", "10.0.0.4/32", "10.0.0.6/31", "10.0.0.8/29", "10.0.0.16/28",
				"10.0.0.32/27", "10.0.0.64/26", "10.0.0.128/25",
			},
		},
		{
			name: "everything but the private /8", cidr: "0.0.0.0/0", excepts: []string{"10.0.0.0/8"},
			want: []string{
				"0.0.0.0/5", "8.0.0.0/7", "11.0.0.0/8", "12.0.0.0/6", "16.0.0.0/4",
				"32.0.0.0/3", "64.0.0.0/2", "128.0.0.0/1",
			},
		},
		{name: "except equals cidr", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.0/24"}, want: nil},
		{name: "except wider than cidr", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.0/8"}, want: nil},
		{name: "host minus itself", cidr: "192.0.2.1/32", excepts: []string{"192.0.2.1/32"}, want: nil},
		{name: "except outside cidr", cidr: "10.0.0.0/24", excepts: []string{"10.0.1.0/24", "192.168.0.0/16"}, want: []string{"10.0.0.0/24"}},
		{name: "except of the other family", cidr: "10.0.0.0/24", excepts: []string{"::/0", "::ffff:10.0.0.0/120"}, want: []string{"10.0.0.0/24"}},
		{name: "v4 except on a v6 cidr", cidr: "fd00::/64", excepts: []string{"0.0.0.0/0"}, want: []string{"fd00::/64"}},
		{name: "except is masked", cidr: "10.0.0.0/16", excepts: []string{"10.0.1.7/24"}, want: []string{
			"10.0.0.0/24", "10.0.2.0/23", "10.0.4.0/22", "10.0.8.0/21", "10.0.16.0/20",
			"10.0.32.0/19", "10.0.64.0/18", "10.0.128.0/17",
		}},
		{name: "nested excepts", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.0/26", "10.0.0.0/25"}, want: []string{"10.0.0.128/25"}},
		{name: "nested excepts, inner last", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.0/25", "10.0.0.0/26"}, want: []string{"10.0.0.128/25"}},
		{name: "duplicate excepts", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.0/25", "10.0.0.0/25"}, want: []string{"10.0.0.128/25"}},
		{name: "adjacent excepts", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.64/26", "10.0.0.0/26"}, want: []string{"10.0.0.128/25"}},
		{name: "two holes", cidr: "10.0.0.0/24", excepts: []string{"10.0.0.192/26", "10.0.0.0/26"}, want: []string{"10.0.0.64/26", "10.0.0.128/26"}},
		{name: "v6 upper half", cidr: "fd00::/64", excepts: []string{"fd00::/65"}, want: []string{"fd00::8000:0:0:0/65"}},
		{name: "v6 everything but ::/1", cidr: "::/0", excepts: []string{"::/1"}, want: []string{"8000::/1"}},
		{
			name: "v6 one /64 out of a /61", cidr: "fd00:0:0:8::/61", excepts: []string{"fd00:0:0:a::/64"},
			want: []string{"fd00:0:0:8::/63", "fd00:0:0:b::/64", "fd00:0:0:c::/62"},
		},
		{name: "v6 host minus itself", cidr: "fd00::1/128", excepts: []string{"fd00::1/128"}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ir.Subtract(netip.MustParsePrefix(tc.cidr), irtest.Prefixes(tc.excepts...))
			if diff := cmp.Diff(irtest.Prefixes(tc.want...), got, prefixCmp, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Subtract(%s, %v) (-want +got):\n%s", tc.cidr, tc.excepts, diff)
			}
		})
	}
}

// TestSubtractRandom checks Subtract against a brute-force model over the
// 256 addresses of 10.0.0.0/24: the result covers exactly the addresses of
// cidr outside every except, its prefixes are masked, disjoint and sorted,
// and they are the fewest (each one's parent holds an excluded address or
// leaves cidr).
func TestSubtractRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randPrefix := func(minBits int) netip.Prefix {
		bits := 24 + minBits + rng.IntN(9-minBits)
		a := netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(256))})
		return netip.PrefixFrom(a, bits).Masked()
	}
	for i := range 500 {
		cidr := randPrefix(0)
		excepts := make([]netip.Prefix, rng.IntN(5))
		for j := range excepts {
			excepts[j] = randPrefix(0)
		}
		kept := func(a netip.Addr) bool {
			if !cidr.Contains(a) {
				return false
			}
			for _, e := range excepts {
				if e.Contains(a) {
					return false
				}
			}
			return true
		}
		got := ir.Subtract(cidr, excepts)
		require.Truef(t, slices.IsSortedFunc(got, ir.ComparePrefix), "case %d: %v not sorted", i, got)
		for k, p := range got {
			require.Equalf(t, p.Masked(), p, "case %d: %s not masked", i, p)
			if k > 0 {
				require.Falsef(t, got[k-1].Overlaps(p), "case %d: %s and %s overlap", i, got[k-1], p)
			}
			if p.Bits() > cidr.Bits() {
				parent := netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
				whole := true
				for a := parent.Addr(); parent.Contains(a); a = a.Next() {
					whole = whole && kept(a)
				}
				require.Falsef(t, whole, "case %d: %s and its sibling should be one prefix %s (cidr %s, excepts %v, got %v)", i, p, parent, cidr, excepts, got)
			}
		}
		for a := netip.MustParseAddr("10.0.0.0"); a.Less(netip.MustParseAddr("10.0.1.0")); a = a.Next() {
			in := slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Contains(a) })
			require.Equalf(t, kept(a), in, "case %d: %s (cidr %s, excepts %v, got %v)", i, a, cidr, excepts, got)
		}
	}
}

func TestComparePrefix(t *testing.T) {
	want := irtest.Prefixes(
		"0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/24", "10.0.0.1/32", "192.0.2.0/24",
		"::/0", "fd00::/8", "fd00::/64", "fd00::1/128",
	)
	got := slices.Clone(want)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
	slices.SortFunc(got, ir.ComparePrefix)
	if diff := cmp.Diff(want, got, prefixCmp); diff != "" {
		t.Errorf("sorted (-want +got):\n%s", diff)
	}
	assert.Zero(t, ir.ComparePrefix(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")))
	assert.Negative(t, ir.ComparePrefix(netip.MustParsePrefix("255.255.255.255/32"), netip.MustParsePrefix("::/0")), "IPv4 first")
	assert.Positive(t, ir.ComparePrefix(netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("10.0.0.0/8")), "shorter first")

	aps := []netip.AddrPort{netip.MustParseAddrPort("[fd00::1]:80"), netip.MustParseAddrPort("10.0.0.1:443"), netip.MustParseAddrPort("10.0.0.1:80")}
	slices.SortFunc(aps, ir.CompareAddrPort)
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.1:443"), netip.MustParseAddrPort("[fd00::1]:80")}, aps)
}

func TestHostPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":         "10.0.0.1/32",
		"0.0.0.0":          "0.0.0.0/32",
		"fd00::1":          "fd00::1/128",
		"::":               "::/128",
		"2001:db8::ff:0:1": "2001:db8::ff:0:1/128",
	} {
		got := ir.HostPrefix(netip.MustParseAddr(in))
		assert.Equal(t, netip.MustParsePrefix(want), got, in)
		assert.True(t, got.IsSingleIP(), in)
	}
}

func TestFamilyOf(t *testing.T) {
	assert.Equal(t, ir.IPv4, ir.FamilyOf(netip.MustParseAddr("10.0.0.1")))
	assert.Equal(t, ir.IPv4, ir.FamilyOf(netip.MustParseAddr("::ffff:10.0.0.1")), "v4-mapped is IPv4")
	assert.Equal(t, ir.IPv6, ir.FamilyOf(netip.MustParseAddr("fd00::1")))
}

func TestProtocol(t *testing.T) {
	for _, p := range ir.Protocols {
		got, ok := ir.ParseProtocol(p.String())
		assert.True(t, ok, p.String())
		assert.Equal(t, p, got)
	}
	assert.Equal(t, []string{"TCP", "UDP", "SCTP"}, []string{ir.TCP.String(), ir.UDP.String(), ir.SCTP.String()})
	assert.Equal(t, []ir.Protocol{6, 17, 132}, []ir.Protocol{ir.TCP, ir.UDP, ir.SCTP})
	assert.Equal(t, "proto-1", ir.Protocol(1).String())
	for _, s := range []string{"", "tcp", "ICMP", "TCP "} {
		_, ok := ir.ParseProtocol(s)
		assert.False(t, ok, "%q", s)
	}
}

func TestTierKind(t *testing.T) {
	assert.True(t, ir.TierAdmin.FirstMatch())
	assert.True(t, ir.TierBaseline.FirstMatch())
	assert.False(t, ir.TierNetworkPolicy.FirstMatch())
	assert.Equal(t, ir.Pass, ir.TierAdmin.NoMatch())
	assert.Equal(t, ir.Pass, ir.TierBaseline.NoMatch())
	assert.Equal(t, ir.Deny, ir.TierNetworkPolicy.NoMatch())
}

func TestOriginString(t *testing.T) {
	assert.Equal(t, "NetworkPolicy/shop/db", ir.Origin{Kind: "NetworkPolicy", Namespace: "shop", Name: "db"}.String())
	assert.Equal(t, "AdminNetworkPolicy/deny-all", ir.Origin{Kind: "AdminNetworkPolicy", Name: "deny-all"}.String())
}
