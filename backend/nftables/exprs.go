package nftables

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
)

// A frag is a piece of a rule: the netlink expressions and the nft syntax
// they stand for. Every rule is a join of the frags below, so building a rule
// reads as a line of nft and the register-level detail lives here only.
type frag struct {
	exprs []expr.Any
	text  string
	// enc holds the marshalled exprs when known (memoised frags).
	enc [][]byte
}

// join concatenates frags in order; empty texts are skipped.
func join(fs ...frag) frag {
	var out frag
	n, known := 0, true
	for _, f := range fs {
		n += len(f.exprs)
		known = known && len(f.enc) == len(f.exprs)
	}
	out.exprs = make([]expr.Any, 0, n)
	if known {
		out.enc = make([][]byte, 0, n)
	}
	var words []string
	for _, f := range fs {
		out.exprs = append(out.exprs, f.exprs...)
		if known {
			out.enc = append(out.enc, f.enc...)
		}
		if f.text != "" {
			words = append(words, f.text)
		}
	}
	out.text = strings.Join(words, " ")
	return out
}

// fragCache memoises frags with their encoding: rules repeat the same
// matches (a port range, a set lookup, a jump) thousands of times.
var fragCache = struct {
	sync.Mutex
	m map[string]frag
}{m: map[string]frag{}}

const fragCacheMax = 1 << 16

// memo returns the frag built for key, marshalling it once. A frag that does
// not marshal is returned without encoding (newRule reports the error).
func memo(key string, build func() frag) frag {
	fragCache.Lock()
	defer fragCache.Unlock()
	if f, ok := fragCache.m[key]; ok {
		return f
	}
	f := build()
	for _, e := range f.exprs {
		b, err := expr.Marshal(unix.NFPROTO_INET, e)
		if err != nil {
			return f
		}
		f.enc = append(f.enc, b)
	}
	if len(fragCache.m) >= fragCacheMax {
		clear(fragCache.m)
	}
	fragCache.m[key] = f
	return f
}

// Registers: the 16-byte register 1 for single loads; concatenations lay
// fields on the 32-bit registers from 8 (the same storage as register 1).
const (
	reg1     = unix.NFT_REG_1
	reg32_00 = unix.NFT_REG32_00
)

// concatReg names a 32-bit register the way the kernel reports it back:
// one that starts a 16-byte register by that register's number.
func concatReg(r uint32) uint32 {
	if (r-reg32_00)%4 == 0 {
		return reg1 + (r-reg32_00)/4
	}
	return r
}

// addrField is which address of the packet a match reads.
type addrField uint8

const (
	srcAddr addrField = iota
	dstAddr
)

// peerField is the address a rule's peer is matched against: the source for
// ingress (the peer sends), the destination for egress.
func peerField(dir ir.Direction) addrField {
	if dir == ir.Ingress {
		return srcAddr
	}
	return dstAddr
}

// endpointField is the address that identifies the endpoint in a direction.
func endpointField(dir ir.Direction) addrField {
	if dir == ir.Ingress {
		return dstAddr
	}
	return srcAddr
}

func famKeyword(fam ir.Family) string {
	if fam == ir.IPv6 {
		return "ip6"
	}
	return "ip"
}

func addrLen(fam ir.Family) uint32 {
	if fam == ir.IPv6 {
		return 16
	}
	return 4
}

// loadAddr loads the source or destination address into reg.
func loadAddr(fam ir.Family, f addrField, reg uint32) *expr.Payload {
	off := uint32(12) // IPv4 source
	switch {
	case fam == ir.IPv6 && f == srcAddr:
		off = 8
	case fam == ir.IPv6:
		off = 24
	case f == dstAddr:
		off = 16
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: addrLen(fam)}
}

func fieldText(fam ir.Family, f addrField) string {
	if f == srcAddr {
		return famKeyword(fam) + " saddr"
	}
	return famKeyword(fam) + " daddr"
}

// matchNFProto matches the packet's family (needed before an address load in
// an inet chain).
func matchNFProto(fam ir.Family) frag {
	return memo("nfproto "+famDigit(fam), func() frag { return buildNFProto(fam) })
}

func buildNFProto(fam ir.Family) frag {
	p := byte(unix.NFPROTO_IPV4)
	name := "ipv4"
	if fam == ir.IPv6 {
		p, name = unix.NFPROTO_IPV6, "ipv6"
	}
	return frag{
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{p}},
		},
		text: "meta nfproto " + name,
	}
}

// matchAddrSet matches when the address is in the named set.
func matchAddrSet(fam ir.Family, f addrField, set string) frag {
	return memo("addrset "+famDigit(fam)+strconv.Itoa(int(f))+" "+set, func() frag { return buildAddrSet(fam, f, set) })
}

// buildAddrSet checks the family first, as nft does before an ip or ip6
// header field in an inet chain (it prints the pair as "ip saddr"; without
// the check it prints a raw payload expression).
func buildAddrSet(fam ir.Family, f addrField, set string) frag {
	return frag{
		exprs: append(familyCheck(fam),
			loadAddr(fam, f, reg1),
			&expr.Lookup{SourceRegister: reg1, SetName: set},
		),
		text: fieldText(fam, f) + " @" + set,
	}
}

// familyCheck is the nfproto match nft adds (and does not print) before
// an address of the packet.
func familyCheck(fam ir.Family) []expr.Any {
	return buildNFProto(fam).exprs
}

// dispatch jumps to the chain the verdict map vmap gives for the address;
// nothing happens when the address is not in it. It is one lookup, as nft
// writes `ip saddr vmap @m`: a lookup keyed by another map's result is
// something nft cannot print (nft 1.0.6 aborts listing it).
func dispatch(fam ir.Family, f addrField, vmap string) frag {
	return memo("dispatch "+famDigit(fam)+strconv.Itoa(int(f))+" "+vmap, func() frag {
		return buildDispatch(fam, f, vmap)
	})
}

func buildDispatch(fam ir.Family, f addrField, vmap string) frag {
	return frag{
		exprs: []expr.Any{
			loadAddr(fam, f, reg1),
			&expr.Lookup{SourceRegister: reg1, SetName: vmap, DestRegister: unix.NFT_REG_VERDICT, IsDestRegSet: true},
		},
		text: fieldText(fam, f) + " vmap @" + vmap,
	}
}

func protoName(p ir.Protocol) string {
	switch p {
	case ir.TCP:
		return "tcp"
	case ir.UDP:
		return "udp"
	case ir.SCTP:
		return "sctp"
	}
	return fmt.Sprint(uint8(p))
}

// matchProto matches the transport protocol.
func matchProto(p ir.Protocol) frag {
	return memo("proto "+strconv.Itoa(int(p)), func() frag { return buildProto(p) })
}

func buildProto(p ir.Protocol) frag {
	return frag{
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(p)}},
		},
		text: "meta l4proto " + protoName(p),
	}
}

func loadDPort(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// matchPorts matches protocol p with a destination port in [lo, hi]; lo 0
// means every port of p.
func matchPorts(p ir.Protocol, lo, hi uint16) frag {
	return memo("ports "+strconv.Itoa(int(p))+" "+strconv.Itoa(int(lo))+" "+strconv.Itoa(int(hi)), func() frag { return buildPorts(p, lo, hi) })
}

func buildPorts(p ir.Protocol, lo, hi uint16) frag {
	f := buildProto(p)
	switch {
	case lo == 0:
		return f
	case hi <= lo:
		return join(f, frag{
			exprs: []expr.Any{loadDPort(reg1), &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: be16(lo)}},
			text:  fmt.Sprintf("th dport %d", lo),
		})
	default:
		return join(f, frag{
			exprs: []expr.Any{loadDPort(reg1), &expr.Range{Op: expr.CmpOpEq, Register: reg1, FromData: be16(lo), ToData: be16(hi)}},
			text:  fmt.Sprintf("th dport %d-%d", lo, hi),
		})
	}
}

// matchNamedPorts matches protocol p and (destination address, destination
// port) in a concatenated set.
func matchNamedPorts(fam ir.Family, p ir.Protocol, set string) frag {
	return memo("named "+famDigit(fam)+" "+strconv.Itoa(int(p))+" "+set, func() frag { return buildNamedPorts(fam, p, set) })
}

func buildNamedPorts(fam ir.Family, p ir.Protocol, set string) frag {
	return join(buildProto(p), frag{
		exprs: append(familyCheck(fam),
			loadAddr(fam, dstAddr, reg1),
			loadDPort(concatReg(reg32_00+addrLen(fam)/4)),
			&expr.Lookup{SourceRegister: reg1, SetName: set},
		),
		text: fieldText(fam, dstAddr) + " . th dport @" + set,
	})
}

// matchCtState matches when the connection tracking state has any of bits.
func matchCtState(bits uint32, text string) frag {
	return memo("ct "+strconv.Itoa(int(bits))+" "+text, func() frag { return buildCtState(bits, text) })
}

func buildCtState(bits uint32, text string) frag {
	return frag{
		exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: reg1},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
		},
		text: "ct state " + text,
	}
}

// matchICMPv6ND matches the neighbour discovery messages (types 133–137).
func matchICMPv6ND() frag {
	return memo("icmpv6 nd", buildICMPv6ND)
}

func buildICMPv6ND() frag {
	return join(buildNFProto(ir.IPv6), frag{
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Range{Op: expr.CmpOpEq, Register: reg1, FromData: []byte{133}, ToData: []byte{137}},
		},
		text: "meta l4proto ipv6-icmp icmpv6 type 133-137",
	})
}

// matchBridgedND matches neighbour discovery messages with hop limit 255:
// in a forward hook, only bridged ones (br_netfilter), since a routed
// packet's hop limit is already decremented there.
func matchBridgedND() frag {
	return memo("icmpv6 nd hoplimit 255", func() frag {
		nd := buildICMPv6ND()
		return frag{
			exprs: slices.Concat(nd.exprs[:2], []expr.Any{
				&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 7, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{255}},
			}, nd.exprs[2:]),
			text: "meta nfproto ipv6 ip6 hoplimit 255 meta l4proto ipv6-icmp icmpv6 type 133-137",
		}
	})
}

// counter counts the packets and bytes that reach it.
func counter() frag {
	return memo("counter", func() frag { return frag{exprs: []expr.Any{&expr.Counter{}}, text: "counter"} })
}

func accept() frag {
	return memo("accept", func() frag { return frag{exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, text: "accept"} })
}

func drop() frag {
	return memo("drop", func() frag { return frag{exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, text: "drop"} })
}

func ret() frag {
	return memo("return", func() frag { return frag{exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}, text: "return"} })
}

// jump evaluates chain and comes back unless it decides.
func jump(chain string) frag {
	return memo("jump "+chain, func() frag {
		return frag{exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}, text: "jump " + chain}
	})
}

// actionVerdict is the verdict of a matching rule: Allow ends the direction's
// check accepting, Deny drops, Pass leaves the list (the tier chain then
// skips the rest of the tier).
func actionVerdict(a ir.Action) frag {
	switch a {
	case ir.Allow:
		return accept()
	case ir.Pass:
		return ret()
	}
	return drop()
}

// maxComment bounds a comment in bytes: nft refuses to load a longer one
// (so a listing of our table could not be loaded back), and the userdata
// TLV's length is one byte.
const maxComment = 128

// comment encodes s as rule/chain/set userdata (the TLV nft reads as
// `comment "..."`), made printable by commentSafe.
func comment(typ byte, s string) []byte {
	s = commentSafe(s)
	return append([]byte{typ, byte(len(s) + 1)}, append([]byte(s), 0)...)
}

// commentSafe bounds s and makes it something nft prints as a comment it
// can parse back: nft quotes comments with '"' and knows no escapes, so a
// double quote becomes a single one and control characters spaces.
func commentSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r < 0x20 || r == 0x7f:
			return ' '
		}
		return r
	}, s)
	return truncate(s, maxComment)
}

// nftQuote is a comment as nft writes it.
func nftQuote(s string) string { return `"` + commentSafe(s) + `"` }

// commentText decodes what comment encoded; empty when absent.
func commentText(typ byte, udata []byte) string {
	for len(udata) >= 2 {
		t, l := udata[0], int(udata[1])
		if len(udata) < 2+l {
			return ""
		}
		if t == typ {
			return strings.TrimRight(string(udata[2:2+l]), "\x00")
		}
		udata = udata[2+l:]
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 { // keep UTF-8 whole
		n--
	}
	return s[:n]
}

// Userdata TLV types (libnftnl).
const (
	udataRuleComment  = 0
	udataChainComment = 0
	udataSetComment   = 7
)
