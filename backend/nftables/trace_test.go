package nftables

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
)

// tracer runs the first packet of a flow through a model: the expressions
// the compiler would program (decoded from their netlink encoding, as the
// kernel receives them), over the sets' contents, hook by hook. It is the
// kernel's evaluation reduced to what our table uses; an expression it
// does not know is an error, never a silent match.
type tracer struct {
	m       *model
	nodeIPs []netip.Addr
	decoded map[*ruleModel][]expr.Any
}

func newTracer(m *model, nodeIPs []netip.Addr) *tracer {
	return &tracer{m: m, nodeIPs: nodeIPs, decoded: map[*ruleModel][]expr.Any{}}
}

type verdict uint8

const (
	vContinue verdict = iota // end of chain or return
	vAccept
	vDrop
)

// packet is the first packet of a flow, as the expressions see it.
type packet struct {
	fam     ir.Family
	src     netip.Addr
	dst     netip.Addr
	proto   ir.Protocol
	dport   uint16
	ctState uint32 // the conntrack state bit of a new connection
}

// allowed reports whether the flow's first packet passes every base chain
// of its hook: forward for traffic between other addresses, input for
// traffic to a node address; traffic from the node (output) has no chain
// of ours.
func (tr *tracer) allowed(f memory.Flow) (bool, error) {
	if slices.Contains(tr.nodeIPs, f.Src) {
		return true, nil
	}
	hook := uint32(unix.NF_INET_FORWARD)
	if slices.Contains(tr.nodeIPs, f.Dst) {
		hook = unix.NF_INET_LOCAL_IN
	}
	p := &packet{fam: ir.FamilyOf(f.Src), src: f.Src, dst: f.Dst, proto: f.Protocol, dport: f.Port, ctState: 1 << 3}
	var base []*chainModel
	for _, c := range tr.m.chains {
		if c.base != nil && c.base.hook == hook {
			base = append(base, c)
		}
	}
	slices.SortFunc(base, func(a, b *chainModel) int { return cmp.Compare(a.base.prio, b.base.prio) })
	for _, c := range base {
		v, err := tr.chain(c.name, p, 0)
		if err != nil {
			return false, err
		}
		if v == vDrop {
			return false, nil
		}
	}
	return true, nil // base chain policy accept
}

func (tr *tracer) chain(name string, p *packet, depth int) (verdict, error) {
	if depth > 16 {
		return 0, fmt.Errorf("chain %s: jumps nest deeper than 16", name)
	}
	c := tr.m.chains[name]
	if c == nil {
		return 0, fmt.Errorf("jump to missing chain %s", name)
	}
	for _, r := range c.rules {
		v, done, err := tr.rule(r, p, depth)
		if err != nil {
			return 0, fmt.Errorf("chain %s rule %q: %w", name, r.text, err)
		}
		if done {
			return v, nil
		}
	}
	return vContinue, nil
}

// regs is the register file: four 16-byte registers, which the 32-bit
// registers overlay.
type regs [64]byte

func regSlice(rs *regs, r uint32, n int) ([]byte, error) {
	var off int
	switch {
	case r >= unix.NFT_REG_1 && r <= unix.NFT_REG_4:
		off = int(r-unix.NFT_REG_1) * 16
	case r >= unix.NFT_REG32_00 && r <= unix.NFT_REG32_15:
		off = int(r-unix.NFT_REG32_00) * 4
	default:
		return nil, fmt.Errorf("register %d", r)
	}
	if off+n > len(rs) {
		return nil, fmt.Errorf("register %d: %d bytes overflow", r, n)
	}
	return rs[off : off+n], nil
}

// rule evaluates one rule: done reports that it issued a verdict that ends
// the chain (accept, drop, return, or a goto's outcome).
func (tr *tracer) rule(r *ruleModel, p *packet, depth int) (v verdict, done bool, err error) {
	exprs, err := tr.decode(r)
	if err != nil {
		return 0, false, err
	}
	var rs regs
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Counter:
		case *expr.Meta:
			dst, err := regSlice(&rs, e.Register, 1)
			if err != nil {
				return 0, false, err
			}
			switch e.Key {
			case expr.MetaKeyNFPROTO:
				dst[0] = unix.NFPROTO_IPV4
				if p.fam == ir.IPv6 {
					dst[0] = unix.NFPROTO_IPV6
				}
			case expr.MetaKeyL4PROTO:
				dst[0] = byte(p.proto)
			default:
				return 0, false, fmt.Errorf("meta key %d", e.Key)
			}
		case *expr.Payload:
			src, err := p.header(e)
			if err != nil {
				return 0, false, err
			}
			dst, err := regSlice(&rs, e.DestRegister, len(src))
			if err != nil {
				return 0, false, err
			}
			copy(dst, src)
		case *expr.Ct:
			if e.Key != expr.CtKeySTATE {
				return 0, false, fmt.Errorf("ct key %d", e.Key)
			}
			dst, err := regSlice(&rs, e.Register, 4)
			if err != nil {
				return 0, false, err
			}
			binary.NativeEndian.PutUint32(dst, p.ctState)
		case *expr.Bitwise:
			src, err := regSlice(&rs, e.SourceRegister, int(e.Len))
			if err != nil {
				return 0, false, err
			}
			out := make([]byte, e.Len)
			for i := range out {
				out[i] = src[i]&e.Mask[i] ^ e.Xor[i]
			}
			dst, err := regSlice(&rs, e.DestRegister, int(e.Len))
			if err != nil {
				return 0, false, err
			}
			copy(dst, out)
		case *expr.Cmp:
			got, err := regSlice(&rs, e.Register, len(e.Data))
			if err != nil {
				return 0, false, err
			}
			eq := bytes.Equal(got, e.Data)
			switch e.Op {
			case expr.CmpOpEq:
				if !eq {
					return 0, false, nil
				}
			case expr.CmpOpNeq:
				if eq {
					return 0, false, nil
				}
			default:
				return 0, false, fmt.Errorf("cmp op %d", e.Op)
			}
		case *expr.Range:
			got, err := regSlice(&rs, e.Register, len(e.FromData))
			if err != nil {
				return 0, false, err
			}
			in := bytes.Compare(got, e.FromData) >= 0 && bytes.Compare(got, e.ToData) <= 0
			if e.Op != expr.CmpOpEq {
				return 0, false, fmt.Errorf("range op %d", e.Op)
			}
			if !in {
				return 0, false, nil
			}
		case *expr.Lookup:
			if e.Invert {
				return 0, false, fmt.Errorf("inverted lookup")
			}
			target, found, err := tr.lookup(e, &rs)
			if err != nil {
				return 0, false, err
			}
			if !found {
				return 0, false, nil
			}
			if target != "" {
				v, err := tr.chain(target, p, depth+1)
				if err != nil || v != vContinue {
					return v, true, err
				}
				return 0, false, nil // the verdict map's jump returned
			}
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept:
				return vAccept, true, nil
			case expr.VerdictDrop:
				return vDrop, true, nil
			case expr.VerdictReturn:
				return vContinue, true, nil
			case expr.VerdictJump:
				v, err := tr.chain(e.Chain, p, depth+1)
				if err != nil || v != vContinue {
					return v, true, err
				}
			case expr.VerdictGoto:
				v, err := tr.chain(e.Chain, p, depth+1)
				return v, true, err
			default:
				return 0, false, fmt.Errorf("verdict %d", e.Kind)
			}
		default:
			return 0, false, fmt.Errorf("expression %T", e)
		}
	}
	return 0, false, nil
}

// header returns the bytes a payload expression loads.
func (p *packet) header(e *expr.Payload) ([]byte, error) {
	var h []byte
	switch e.Base {
	case expr.PayloadBaseNetworkHeader:
		if p.fam == ir.IPv4 {
			h = make([]byte, 20)
			s, d := p.src.As4(), p.dst.As4()
			copy(h[12:], s[:])
			copy(h[16:], d[:])
		} else {
			h = make([]byte, 40)
			s, d := p.src.As16(), p.dst.As16()
			copy(h[8:], s[:])
			copy(h[24:], d[:])
		}
	case expr.PayloadBaseTransportHeader:
		h = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 40000), p.dport)
	default:
		return nil, fmt.Errorf("payload base %d", e.Base)
	}
	if int(e.Offset+e.Len) > len(h) {
		return nil, fmt.Errorf("payload %d+%d beyond the header", e.Offset, e.Len)
	}
	return h[e.Offset : e.Offset+e.Len], nil
}

// lookup looks the source register up in a set. For a map it writes the
// value to the destination register; for a verdict map it returns the
// chain to jump to.
func (tr *tracer) lookup(e *expr.Lookup, rs *regs) (jumpTo string, found bool, err error) {
	s := tr.m.sets[e.SetName]
	if s == nil {
		return "", false, fmt.Errorf("lookup in missing set %s", e.SetName)
	}
	alen := int(addrLen(s.fam))
	addr := func() (netip.Addr, error) {
		b, err := regSlice(rs, e.SourceRegister, alen)
		if err != nil {
			return netip.Addr{}, err
		}
		a, _ := netip.AddrFromSlice(b)
		return a, nil
	}
	switch s.kind {
	case addrKind:
		a, err := addr()
		if err != nil {
			return "", false, err
		}
		for iv := range s.ivals {
			if iv.lo.BitLen() == a.BitLen() && iv.lo.Compare(a) <= 0 && (iv.open || a.Less(iv.hi)) {
				return "", true, nil
			}
		}
		return "", false, nil
	case hostKind:
		a, err := addr()
		if err != nil {
			return "", false, err
		}
		_, ok := s.hosts[a]
		return "", ok, nil
	case portKind:
		b, err := regSlice(rs, e.SourceRegister, alen+2)
		if err != nil {
			return "", false, err
		}
		a, _ := netip.AddrFromSlice(b[:alen])
		_, ok := s.ports[netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[alen:]))]
		return "", ok, nil
	case vmapKind:
		a, err := addr()
		if err != nil {
			return "", false, err
		}
		chain, ok := s.jumps[a]
		if !ok {
			return "", false, nil
		}
		if !e.IsDestRegSet || e.DestRegister != unix.NFT_REG_VERDICT {
			return "", false, fmt.Errorf("verdict map %s without the verdict register", s.name)
		}
		return chain, true, nil
	}
	return "", false, fmt.Errorf("set %s of kind %d", s.name, s.kind)
}

// decode turns a rule's netlink expressions back into values, as the
// kernel receives them.
func (tr *tracer) decode(r *ruleModel) ([]expr.Any, error) {
	if d, ok := tr.decoded[r]; ok {
		return d, nil
	}
	var out []expr.Any
	for _, b := range r.exprs {
		e, err := decodeExpr(b)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	tr.decoded[r] = out
	return out, nil
}
