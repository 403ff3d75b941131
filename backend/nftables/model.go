package nftables

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"regexp"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
)

// The model is the content of our table as plain data: sets with their
// elements and chains with their rules, keyed by name. The compiler (state)
// derives the wanted model from the IR; read.go decodes the kernel's into the
// same shape; diff.go turns the difference into a batch.

// Fixed object names.
const (
	chainEgressForward  = "egress-forward"
	chainIngressForward = "ingress-forward"
	chainEgressInput    = "egress-input"
)

// vmapName is the verdict map from endpoint address to profile chain for
// one direction and family.
func vmapName(dir ir.Direction, fam ir.Family) string {
	switch {
	case dir == ir.Ingress && fam == ir.IPv6:
		return "ingress-v6"
	case dir == ir.Ingress:
		return "ingress-v4"
	case fam == ir.IPv6:
		return "egress-v6"
	}
	return "egress-v4"
}

func famDigit(fam ir.Family) string {
	if fam == ir.IPv6 {
		return "6"
	}
	return "4"
}

var plainID = regexp.MustCompile(`^[a-z0-9-]{1,24}$`)

// setName derives a set's name from an IR set ID: the ID itself when it is
// plain ([a-z0-9-], at most 24 bytes, as the IR promises), else a hash; the
// two forms cannot collide ('-' against '_').
func setName(prefix string, fam ir.Family, id string) string {
	if plainID.MatchString(id) {
		return prefix + famDigit(fam) + "-" + id
	}
	return prefix + famDigit(fam) + "_" + shortHash(id)
}

func addrSetName(fam ir.Family, id string) string { return setName("a", fam, id) }
func portSetName(fam ir.Family, id string) string { return setName("n", fam, id) }

// listChainName is the chain of a rule list (IDs may hold any character).
func listChainName(fam ir.Family, id string) string { return "l" + famDigit(fam) + "-" + shortHash(id) }

// shortHash is 64 bits of SHA-256 in hex: short, safe in nft syntax, and a
// collision is detected by the compiler rather than assumed away.
func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// interval is an address range [lo, hi) as an interval set stores it: a start
// element lo and an end element hi. open means up to the last address of
// the family (no end element).
type interval struct {
	lo, hi netip.Addr
	open   bool
}

func prefixInterval(p netip.Prefix) interval {
	p = p.Masked()
	lo := p.Addr()
	next := lastAddr(p).Next()
	if !next.IsValid() {
		return interval{lo: lo, open: true}
	}
	return interval{lo: lo, hi: next}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// prefix returns the interval as a prefix when it is one.
func (iv interval) prefix() (netip.Prefix, bool) {
	for bits := 0; bits <= iv.lo.BitLen(); bits++ {
		p := netip.PrefixFrom(iv.lo, bits)
		if p.Masked().Addr() == iv.lo && prefixInterval(p) == iv {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (iv interval) String() string {
	if p, ok := iv.prefix(); ok {
		if p.IsSingleIP() {
			return p.Addr().String()
		}
		return p.String()
	}
	if iv.open {
		return iv.lo.String() + "-" + lastAddr(netip.PrefixFrom(iv.lo, 0)).String()
	}
	return iv.lo.String() + "-" + iv.hi.Prev().String()
}

// setKind is the shape of one of our sets. The set is closed.
type setKind uint8

const (
	// addrKind: peer prefixes (ipBlocks), an interval set of addresses.
	addrKind setKind = iota + 1
	// hostKind: peer pods, a hash set of single addresses (an IR address
	// set with Hosts); an update costs the same whatever the set's size.
	hostKind
	// portKind: named ports, a set of (address . port) for one protocol.
	portKind
	// vmapKind: endpoint dispatch, a verdict map from address to a jump to
	// the endpoint's profile chain.
	vmapKind
	// ifaceKind: source validation, the endpoints' interface names.
	ifaceKind
	// guardKind: source validation, (interface . source address) pairs an
	// endpoint may send from.
	guardKind
)

// setAttrs are the attributes fixed at a set's creation.
type setAttrs struct {
	flags, keyType, keyLen, dataType, dataLen uint32
}

// nft datatype numbers.
const (
	typeIPv4    = 7
	typeIPv6    = 8
	typeService = 13
	typeVerdict = 0xffffff00
)

type setModel struct {
	name    string
	kind    setKind
	fam     ir.Family
	comment string

	ivals  map[interval]struct{}
	hosts  map[netip.Addr]struct{}
	ports  map[netip.AddrPort]struct{}
	jumps  map[netip.Addr]string // endpoint address → profile chain
	ifaces map[string]struct{}
	pairs  map[ifAddr]struct{}

	// broken marks a kernel set whose elements could not be read as ours.
	broken bool
}

func newSet(name string, kind setKind, fam ir.Family, comment string) *setModel {
	s := &setModel{name: name, kind: kind, fam: fam, comment: comment}
	switch kind {
	case addrKind:
		s.ivals = map[interval]struct{}{}
	case hostKind:
		s.hosts = map[netip.Addr]struct{}{}
	case portKind:
		s.ports = map[netip.AddrPort]struct{}{}
	case vmapKind:
		s.jumps = map[netip.Addr]string{}
	case ifaceKind:
		s.ifaces = map[string]struct{}{}
	case guardKind:
		s.pairs = map[ifAddr]struct{}{}
	}
	return s
}

func (s *setModel) attrs() setAttrs {
	addrType := uint32(typeIPv4)
	if s.fam == ir.IPv6 {
		addrType = typeIPv6
	}
	switch s.kind {
	case addrKind:
		return setAttrs{flags: unix.NFT_SET_INTERVAL, keyType: addrType, keyLen: addrLen(s.fam)}
	case hostKind:
		return setAttrs{keyType: addrType, keyLen: addrLen(s.fam)}
	case portKind:
		return setAttrs{keyType: addrType<<6 | typeService, keyLen: addrLen(s.fam) + 4}
	case ifaceKind:
		return setAttrs{keyType: typeIfname, keyLen: ifnameLen}
	case guardKind:
		return setAttrs{keyType: typeIfname<<6 | addrType, keyLen: ifnameLen + addrLen(s.fam)}
	}
	return setAttrs{flags: unix.NFT_SET_MAP, keyType: addrType, keyLen: addrLen(s.fam), dataType: typeVerdict}
}

func (s *setModel) size() int {
	return len(s.ivals) + len(s.hosts) + len(s.ports) + len(s.jumps) + len(s.ifaces) + len(s.pairs)
}

// baseHook makes a chain a base chain: type filter, policy accept.
type baseHook struct {
	hook uint32
	prio int32
}

type chainModel struct {
	name    string
	base    *baseHook
	comment string
	rules   []*ruleModel
}

func sameSpec(a, b *chainModel) bool {
	if (a.base == nil) != (b.base == nil) {
		return false
	}
	return a.base == nil || *a.base == *b.base
}

func sameRules(a, b []*ruleModel) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].key != b[i].key {
			return false
		}
	}
	return true
}

// ruleModel is one rule: its marshalled expressions, userdata and nft text.
type ruleModel struct {
	exprs [][]byte
	udata []byte
	text  string
	// key identifies the content (expressions with counters zeroed, and
	// userdata); equal keys mean equal rules.
	key string
}

// newRule marshals f into a rule with comment c.
func newRule(f frag, c string) (*ruleModel, error) {
	r := &ruleModel{text: f.text, udata: comment(udataRuleComment, c), exprs: f.enc}
	if len(f.enc) != len(f.exprs) {
		r.exprs = make([][]byte, 0, len(f.exprs))
		for _, e := range f.exprs {
			b, err := expr.Marshal(unix.NFPROTO_INET, e)
			if err != nil {
				return nil, err
			}
			r.exprs = append(r.exprs, b)
		}
	}
	n := len(r.udata) + 1
	for _, b := range r.exprs {
		n += len(b)
	}
	var key strings.Builder
	key.Grow(n)
	for _, b := range r.exprs {
		key.Write(b)
	}
	key.WriteByte(0)
	key.Write(r.udata)
	r.key = key.String()
	return r, nil
}

type model struct {
	sets   map[string]*setModel
	chains map[string]*chainModel
	// limits are named limit objects (the verdict log's budget), name →
	// packets per second (burst as many).
	limits map[string]uint32
}

func newModel() *model {
	return &model{sets: map[string]*setModel{}, chains: map[string]*chainModel{}, limits: map[string]uint32{}}
}
