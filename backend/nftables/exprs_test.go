package nftables

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

func TestFragments(t *testing.T) {
	tests := []struct {
		name  string
		frag  frag
		text  string
		exprs []expr.Any
	}{
		{"ipv4 source in set", matchAddrSet(ir.IPv4, srcAddr, "a4-x"), "ip saddr @a4-x", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: "a4-x"},
		}},
		{"ipv6 destination in set", matchAddrSet(ir.IPv6, dstAddr, "a6-x"), "ip6 daddr @a6-x", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Lookup{SourceRegister: 1, SetName: "a6-x"},
		}},
		{"every port of a protocol", matchPorts(ir.SCTP, 0, 0), "meta l4proto sctp", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{132}},
		}},
		{"one port", matchPorts(ir.TCP, 80, 80), "meta l4proto tcp th dport 80", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 80}},
		}},
		{"port range", matchPorts(ir.UDP, 1000, 2000), "meta l4proto udp th dport 1000-2000", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{0x03, 0xe8}, ToData: []byte{0x07, 0xd0}},
		}},
		{"ipv4 named port", matchNamedPorts(ir.IPv4, ir.TCP, "n4-http"), "meta l4proto tcp ip daddr . th dport @n4-http", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: "n4-http"},
		}},
		{"ipv6 named port", matchNamedPorts(ir.IPv6, ir.UDP, "n6-dns"), "meta l4proto udp ip6 daddr . th dport @n6-dns", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}},
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Payload{DestRegister: 2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, // register 32-bit 12 is register 2
			&expr.Lookup{SourceRegister: 1, SetName: "n6-dns"},
		}},
		{"dispatch", dispatch(ir.IPv4, dstAddr, "ingress-v4"), "ip daddr vmap @ingress-v4", []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: "ingress-v4", DestRegister: 0, IsDestRegSet: true},
		}},
		{"family", matchNFProto(ir.IPv6), "meta nfproto ipv6", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
		}},
		{"conntrack state", matchCtState(2|4, "established,related"), "ct state established,related", []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{6, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		}},
		{"counter", counter(), "counter", []expr.Any{&expr.Counter{}}},
		{"jump", jump("l4-abc"), "jump l4-abc", []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "l4-abc"}}},
		{"allow", actionVerdict(ir.Allow), "accept", []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}},
		{"deny", actionVerdict(ir.Deny), "drop", []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}},
		{"pass", actionVerdict(ir.Pass), "return", []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.text, tt.frag.text)
			if diff := cmp.Diff(tt.exprs, tt.frag.exprs); diff != "" {
				t.Errorf("expressions (-want +got):\n%s", diff)
			}
			// The memoised encoding is the marshalled expressions.
			require.Len(t, tt.frag.enc, len(tt.frag.exprs))
			for i, e := range tt.frag.exprs {
				b, err := expr.Marshal(unix.NFPROTO_INET, e)
				require.NoError(t, err)
				assert.Equal(t, b, tt.frag.enc[i])
			}
		})
	}
}

func TestJoinAndRule(t *testing.T) {
	f := join(matchPorts(ir.TCP, 80, 80), frag{}, matchAddrSet(ir.IPv4, srcAddr, "a4-x"), counter(), accept())
	assert.Equal(t, "meta l4proto tcp th dport 80 ip saddr @a4-x counter accept", f.text)
	assert.Len(t, f.exprs, 10)
	r, err := newRule(f, "NetworkPolicy/ns/p ingress rule 0: allow")
	require.NoError(t, err)
	assert.Equal(t, "NetworkPolicy/ns/p ingress rule 0: allow", commentText(udataRuleComment, r.udata))

	// The kernel's form of the same rule decodes to the same key.
	var a attrBuf
	l := a.begin(unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range r.exprs {
		el := a.begin(unix.NFTA_LIST_ELEM)
		a.b = append(a.b, e...)
		a.end(el)
	}
	a.end(l)
	a.put(unix.NFTA_RULE_USERDATA, r.udata)
	_, _, back := decodeRule(a.b)
	assert.Equal(t, r.key, back.key)

	// A counter's values do not change the key.
	withCounts := join(matchPorts(ir.TCP, 80, 80), frag{exprs: []expr.Any{&expr.Counter{Packets: 5, Bytes: 300}}})
	counted, err := newRule(withCounts, "")
	require.NoError(t, err)
	zero, err := newRule(join(matchPorts(ir.TCP, 80, 80), counter()), "")
	require.NoError(t, err)
	var b attrBuf
	l = b.begin(unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range counted.exprs {
		el := b.begin(unix.NFTA_LIST_ELEM)
		b.b = append(b.b, e...)
		b.end(el)
	}
	b.end(l)
	b.put(unix.NFTA_RULE_USERDATA, counted.udata)
	_, _, back = decodeRule(b.b)
	assert.Equal(t, zero.key, back.key)
}

func TestComment(t *testing.T) {
	assert.Equal(t, "hello", commentText(0, comment(0, "hello")))
	long := string(make([]byte, 400))
	assert.Equal(t, strings.Repeat(" ", maxComment), commentText(0, comment(0, long)), "control characters are spaces, the length bounded")
	// nft quotes comments with '"' and has no escapes: a double quote
	// would make a listing of the table impossible to load back.
	assert.Equal(t, `named port 'http'/TCP`, commentText(0, comment(0, `named port "http"/TCP`)))
	assert.Equal(t, `"a 'b'"`, nftQuote(`a "b"`))
	s := ""
	for len(s) < 300 {
		s += "é"
	}
	got := commentText(0, comment(0, s))
	assert.LessOrEqual(t, len(got), maxComment)
	assert.Equal(t, s[:len(got)], got, "cut on a rune boundary")
}

func TestIntervals(t *testing.T) {
	tests := []struct {
		prefix string
		want   interval
		text   string
	}{
		{"10.0.0.1/32", interval{lo: irtest.Addr("10.0.0.1"), hi: irtest.Addr("10.0.0.2")}, "10.0.0.1"},
		{"10.0.0.0/24", interval{lo: irtest.Addr("10.0.0.0"), hi: irtest.Addr("10.0.1.0")}, "10.0.0.0/24"},
		{"10.0.0.77/24", interval{lo: irtest.Addr("10.0.0.0"), hi: irtest.Addr("10.0.1.0")}, "10.0.0.0/24"},
		{"255.255.255.255/32", interval{lo: irtest.Addr("255.255.255.255"), open: true}, "255.255.255.255"},
		{"0.0.0.0/0", interval{lo: irtest.Addr("0.0.0.0"), open: true}, "0.0.0.0/0"},
		{"fd00::/64", interval{lo: irtest.Addr("fd00::"), hi: irtest.Addr("fd00:0:0:1::")}, "fd00::/64"},
		{"::/0", interval{lo: irtest.Addr("::"), open: true}, "::/0"},
	}
	for _, tt := range tests {
		iv := prefixInterval(irtest.Prefix(tt.prefix))
		assert.Equal(t, tt.want, iv, tt.prefix)
		assert.Equal(t, tt.text, iv.String(), tt.prefix)
		p, ok := iv.prefix()
		assert.True(t, ok)
		assert.Equal(t, irtest.Prefix(tt.prefix).Masked(), p)
	}
	_, ok := interval{lo: irtest.Addr("10.0.0.1"), hi: irtest.Addr("10.0.0.4")}.prefix()
	assert.False(t, ok)
	assert.Equal(t, "10.0.0.1-10.0.0.3", interval{lo: irtest.Addr("10.0.0.1"), hi: irtest.Addr("10.0.0.4")}.String())
}

func TestPairIntervals(t *testing.T) {
	key := func(s string) []byte { return irtest.Addr(s).AsSlice() }
	// Adjacent intervals share a key (an end, then a start), and the last
	// one is open; the kernel may list them in any order.
	elems := []element{
		{key: key("10.0.0.3")},
		{key: key("10.0.0.2")},
		{key: key("10.0.0.3"), end: true},
		{key: key("10.0.0.4"), end: true},
		{key: key("192.168.0.0")},
	}
	got, ok := pairIntervals(elems, 4)
	assert.True(t, ok)
	assert.Equal(t, []interval{
		{lo: irtest.Addr("10.0.0.2"), hi: irtest.Addr("10.0.0.3")},
		{lo: irtest.Addr("10.0.0.3"), hi: irtest.Addr("10.0.0.4")},
		{lo: irtest.Addr("192.168.0.0"), open: true},
	}, got)

	_, ok = pairIntervals([]element{{key: key("10.0.0.4"), end: true}}, 4)
	assert.False(t, ok, "an end without a start")
}

func TestNames(t *testing.T) {
	assert.Equal(t, "a4-frontend", addrSetName(ir.IPv4, "frontend"))
	assert.Equal(t, "n6-http-tcp", portSetName(ir.IPv6, "http-tcp"))
	odd := addrSetName(ir.IPv4, "Not/Plain")
	assert.Equal(t, "a4_"+shortHash("Not/Plain"), odd)
	assert.NotEqual(t, addrSetName(ir.IPv4, shortHash("Not/Plain")), odd, "plain and hashed forms differ")
	long := addrSetName(ir.IPv4, "abcdefghijklmnopqrstuvwxyz")
	assert.Len(t, long, 3+16)

	l := listChainName(ir.IPv4, "np/ns:x/name with spaces")
	assert.Regexp(t, `^l4-[0-9a-f]{16}$`, l)
	assert.NotEqual(t, l, listChainName(ir.IPv6, "np/ns:x/name with spaces"))

	// Profile keys are unambiguous whatever the IDs hold.
	a := ir.ProfileKey(ir.Ingress, []ir.Tier{{Kind: ir.TierNetworkPolicy, RuleLists: []string{"a b", "c"}}})
	b := ir.ProfileKey(ir.Ingress, []ir.Tier{{Kind: ir.TierNetworkPolicy, RuleLists: []string{"a", "b c"}}})
	assert.NotEqual(t, a, b)
}

func TestPortKey(t *testing.T) {
	var ar arena
	assert.Equal(t, []byte{10, 0, 0, 1, 0x1f, 0x90, 0, 0}, ar.port(netip.MustParseAddrPort("10.0.0.1:8080")))
	assert.Len(t, ar.port(netip.MustParseAddrPort("[fd00::1]:53")), 20)
}
