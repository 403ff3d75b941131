package ir

import (
	"cmp"
	"net/netip"
	"slices"
)

// ComparePrefix orders prefixes IPv4 first, then by address, then by length.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// CompareAddrPort orders by address (IPv4 first), then port.
func CompareAddrPort(a, b netip.AddrPort) int {
	return a.Compare(b)
}

// HostPrefix returns the single-address prefix of a (/32 or /128).
func HostPrefix(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, a.BitLen())
}

// Subtract returns the addresses of cidr that lie in none of excepts, as the
// fewest disjoint prefixes, sorted. Excepts of another family, or outside
// cidr, remove nothing. cidr is masked first.
func Subtract(cidr netip.Prefix, excepts []netip.Prefix) []netip.Prefix {
	cidr = cidr.Masked()
	out := []netip.Prefix{cidr}
	for _, ex := range excepts {
		ex = ex.Masked()
		if ex.Addr().BitLen() != cidr.Addr().BitLen() {
			continue
		}
		var next []netip.Prefix
		for _, p := range out {
			next = append(next, subtractOne(p, ex)...)
		}
		out = next
	}
	slices.SortFunc(out, ComparePrefix)
	return out
}

// subtractOne returns p minus ex as disjoint prefixes.
func subtractOne(p, ex netip.Prefix) []netip.Prefix {
	if !p.Overlaps(ex) {
		return []netip.Prefix{p}
	}
	if ex.Bits() <= p.Bits() {
		return nil // ex covers p
	}
	// Walk from p down to ex; at each level keep the sibling half that does
	// not contain ex.
	var out []netip.Prefix
	cur := p
	for cur.Bits() < ex.Bits() {
		lo, hi := halves(cur)
		if lo.Contains(ex.Addr()) {
			out = append(out, hi)
			cur = lo
		} else {
			out = append(out, lo)
			cur = hi
		}
	}
	return out
}

// halves splits p into its two prefixes one bit longer.
func halves(p netip.Prefix) (lo, hi netip.Prefix) {
	bits := p.Bits() + 1
	lo = netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	idx := p.Bits() / 8
	b[idx] |= 0x80 >> (p.Bits() % 8)
	a, _ := netip.AddrFromSlice(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	hi = netip.PrefixFrom(a, bits)
	return lo, hi
}
