package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
)

// tracer runs the first packet of a flow through a model: the rules the
// compiler would restore (in iptables-save syntax) over the ipsets'
// members, from the built-in chain's jump into ours. It knows the matches
// and targets our rules use; anything else is an error, never a silent
// match.
type tracer struct {
	s       *state
	nodeIPs []netip.Addr
	parsed  map[string][]string
}

func newTracer(s *state, nodeIPs []netip.Addr) *tracer {
	return &tracer{s: s, nodeIPs: nodeIPs, parsed: map[string][]string{}}
}

type verdict uint8

const (
	vContinue verdict = iota // end of chain or RETURN
	vAccept
	vDrop
)

type packet struct {
	fam   ir.Family
	src   netip.Addr
	dst   netip.Addr
	proto ir.Protocol
	dport uint16
	mark  uint32
}

// allowed reports whether the flow's first packet passes FORWARD (traffic
// between other addresses) or INPUT (traffic to a node address); traffic
// from the node (OUTPUT) meets no rule of ours. The built-in chains accept.
func (tr *tracer) allowed(f memory.Flow) (bool, error) {
	if slices.Contains(tr.nodeIPs, f.Src) {
		return true, nil
	}
	entry := tr.s.n.fwd()
	if slices.Contains(tr.nodeIPs, f.Dst) {
		entry = tr.s.n.input()
	}
	p := &packet{fam: ir.FamilyOf(f.Src), src: f.Src, dst: f.Dst, proto: f.Protocol, dport: f.Port}
	v, err := tr.chain(entry, p, 0)
	return v != vDrop, err
}

func (tr *tracer) chain(name string, p *packet, depth int) (verdict, error) {
	if depth > 16 {
		return 0, fmt.Errorf("chain %s: jumps nest deeper than 16", name)
	}
	c := tr.s.m.chains[name]
	if c == nil {
		return 0, fmt.Errorf("jump to missing chain %s", name)
	}
	for _, r := range c[fi(p.fam)] {
		v, done, err := tr.rule(r, p, depth)
		if err != nil {
			return 0, fmt.Errorf("chain %s rule %q: %w", name, r, err)
		}
		if done {
			return v, nil
		}
	}
	return vContinue, nil
}

// tokens splits a rule as iptables-save prints it; quoted words keep their
// spaces.
func (tr *tracer) tokens(rule string) ([]string, error) {
	if t, ok := tr.parsed[rule]; ok {
		return t, nil
	}
	var out []string
	for rest := strings.TrimSpace(rule); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			out = append(out, rest[1:end+1])
			rest = rest[end+2:]
			continue
		}
		word, after, _ := strings.Cut(rest, " ")
		out = append(out, word)
		rest = after
	}
	tr.parsed[rule] = out
	return out, nil
}

// rule evaluates one rule; done reports that its target ended the chain.
func (tr *tracer) rule(rule string, p *packet, depth int) (v verdict, done bool, err error) {
	tok, err := tr.tokens(rule)
	if err != nil {
		return 0, false, err
	}
	arg := func(i int) (string, error) {
		if i >= len(tok) {
			return "", fmt.Errorf("%s without its argument", tok[i-1])
		}
		return tok[i], nil
	}
	negate := false
	for i := 0; i < len(tok); i++ {
		switch tok[i] {
		case "!":
			negate = true
			continue
		case "-m":
			// The match's options follow; the module name alone decides nothing.
			i++
		case "--comment":
			i++
		case "-p":
			a, err := arg(i + 1)
			if err != nil {
				return 0, false, err
			}
			i++
			if a != protoWord(p.proto) {
				return 0, false, nil
			}
		case "--ctstate":
			a, err := arg(i + 1)
			if err != nil {
				return 0, false, err
			}
			i++
			// A first packet is NEW: it is neither ESTABLISHED, RELATED
			// nor INVALID.
			if slices.Contains(strings.Split(a, ","), "NEW") != !negate {
				return 0, false, nil
			}
		case "--mark":
			a, err := arg(i + 1)
			if err != nil {
				return 0, false, err
			}
			i++
			val, mask, err := markArg(a)
			if err != nil {
				return 0, false, err
			}
			if (p.mark&mask == val) == negate {
				return 0, false, nil
			}
		case "--match-set":
			if i+2 >= len(tok) {
				return 0, false, fmt.Errorf("--match-set without set and directions")
			}
			in, err := tr.inSet(tok[i+1], tok[i+2], p)
			if err != nil {
				return 0, false, err
			}
			i += 2
			if in == negate {
				return 0, false, nil
			}
		case "--dport":
			a, err := arg(i + 1)
			if err != nil {
				return 0, false, err
			}
			i++
			lo, hi, err := portRange(a)
			if err != nil {
				return 0, false, err
			}
			if (p.dport >= lo && p.dport <= hi) == negate {
				return 0, false, nil
			}
		case "--icmpv6-type":
			i++
			return 0, false, nil // our flows are TCP, UDP or SCTP
		case "-j", "-g":
			target, err := arg(i + 1)
			if err != nil {
				return 0, false, err
			}
			switch target {
			case "RETURN":
				return vContinue, true, nil
			case "DROP":
				return vDrop, true, nil
			case "ACCEPT":
				return vAccept, true, nil
			case "MARK":
				if i+3 >= len(tok) || tok[i+2] != "--set-xmark" {
					return 0, false, fmt.Errorf("MARK without --set-xmark")
				}
				val, mask, err := markArg(tok[i+3])
				if err != nil {
					return 0, false, err
				}
				p.mark = p.mark&^mask ^ val
				return 0, false, nil // MARK does not end the chain
			}
			v, err := tr.chain(target, p, depth+1)
			if err != nil || v != vContinue {
				return v, true, err
			}
			// A goto's chain returns to our caller; a jump's to us.
			return vContinue, tok[i] == "-g", nil
		default:
			return 0, false, fmt.Errorf("unknown token %q", tok[i])
		}
		negate = false
	}
	return 0, false, nil
}

func markArg(s string) (val, mask uint32, err error) {
	v, m, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("mark %q without a mask", s)
	}
	a, err1 := strconv.ParseUint(v, 0, 32)
	b, err2 := strconv.ParseUint(m, 0, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("mark %q", s)
	}
	return uint32(a), uint32(b), nil
}

func portRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, ":")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(b, 10, 16); err != nil {
			return 0, 0, err
		}
	}
	return uint16(l), uint16(h), nil
}

// inSet matches the packet against an ipset by its type and the
// directions ("src", "dst", "dst,dst").
func (tr *tracer) inSet(name, dirs string, p *packet) (bool, error) {
	set := tr.s.m.sets[name]
	if set == nil {
		return false, fmt.Errorf("match on missing set %s", name)
	}
	if set.fam != p.fam {
		return false, fmt.Errorf("set %s of family %d matched by a packet of family %d", name, set.fam, p.fam)
	}
	pick := func(dir string) (netip.Addr, error) {
		switch dir {
		case "src":
			return p.src, nil
		case "dst":
			return p.dst, nil
		}
		return netip.Addr{}, fmt.Errorf("direction %q", dir)
	}
	switch set.typ {
	case "hash:net":
		a, err := pick(dirs)
		if err != nil {
			return false, err
		}
		for m := range set.members {
			pf, err := netip.ParsePrefix(m)
			if err != nil {
				addr, aerr := netip.ParseAddr(m)
				if aerr != nil {
					return false, fmt.Errorf("set %s: member %q", name, m)
				}
				pf = netip.PrefixFrom(addr, addr.BitLen())
			}
			if pf.Contains(a) {
				return true, nil
			}
		}
		return false, nil
	case "hash:ip":
		a, err := pick(dirs)
		if err != nil {
			return false, err
		}
		_, ok := set.members[a.String()]
		return ok, nil
	case "hash:ip,port":
		if dirs != "dst,dst" {
			return false, fmt.Errorf("set %s: directions %q", name, dirs)
		}
		_, ok := set.members[portMember(p.proto, netip.AddrPortFrom(p.dst, p.dport))]
		return ok, nil
	}
	return false, fmt.Errorf("set %s of type %s", name, set.typ)
}
