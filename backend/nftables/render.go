package nftables

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
)

// Render returns the ruleset Sync would program for snap, as `nft list
// table` style text with comments (table inet palisade, priority 0). The
// output is sorted and deterministic; no kernel is needed. An invalid
// snapshot returns an error and no text.
func Render(snap *ir.Snapshot) (string, error) {
	return RenderConfig(snap, Config{})
}

// RenderConfig is Render with cfg's table name and priority.
func RenderConfig(snap *ir.Snapshot, cfg Config) (string, error) {
	if cfg.TableName == "" {
		cfg.TableName = DefaultTableName
	}
	s, err := buildLogging(snap, cfg.Priority, cfg.Log)
	if err != nil {
		return "", err
	}
	out := renderModel("inet", cfg.TableName, s.m)
	if s.bm != nil {
		out += "\n" + renderModel("bridge", cfg.TableName, s.bm)
	}
	return out, nil
}

func renderModel(family, table string, m *model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s {\n", family, table)
	for _, name := range sortedKeys(m.limits) {
		fmt.Fprintf(&b, "\tlimit %s {\n\t\trate %d/second burst %d packets\n\t}\n", name, m.limits[name], m.limits[name])
	}
	for _, name := range sortedKeys(m.sets) {
		renderSet(&b, m.sets[name])
	}
	chains := make([]*chainModel, 0, len(m.chains))
	for _, c := range m.chains {
		chains = append(chains, c)
	}
	slices.SortFunc(chains, func(a, b *chainModel) int {
		if (a.base == nil) != (b.base == nil) {
			if a.base != nil {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.name, b.name)
	})
	for _, c := range chains {
		renderChain(&b, c)
	}
	b.WriteString("}\n")
	return b.String()
}

func addrTypeName(fam ir.Family) string {
	if fam == ir.IPv6 {
		return "ipv6_addr"
	}
	return "ipv4_addr"
}

func renderSet(b *strings.Builder, s *setModel) {
	var elems []string
	switch s.kind {
	case addrKind:
		fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n", s.name, addrTypeName(s.fam))
		ivs := make([]interval, 0, len(s.ivals))
		for iv := range s.ivals {
			ivs = append(ivs, iv)
		}
		slices.SortFunc(ivs, func(a, b interval) int { return a.lo.Compare(b.lo) })
		for _, iv := range ivs {
			elems = append(elems, iv.String())
		}
	case hostKind:
		fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n", s.name, addrTypeName(s.fam))
		addrs := make([]netip.Addr, 0, len(s.hosts))
		for a := range s.hosts {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		for _, a := range addrs {
			elems = append(elems, a.String())
		}
	case portKind:
		fmt.Fprintf(b, "\tset %s {\n\t\ttype %s . inet_service\n", s.name, addrTypeName(s.fam))
		aps := make([]netip.AddrPort, 0, len(s.ports))
		for ap := range s.ports {
			aps = append(aps, ap)
		}
		slices.SortFunc(aps, netip.AddrPort.Compare)
		for _, ap := range aps {
			elems = append(elems, ap.Addr().String()+" . "+strconv.Itoa(int(ap.Port())))
		}
	case ifaceKind:
		fmt.Fprintf(b, "\tset %s {\n\t\ttype ifname\n", s.name)
		for _, name := range sortedKeys(s.ifaces) {
			elems = append(elems, strconv.Quote(name))
		}
	case guardKind:
		fmt.Fprintf(b, "\tset %s {\n\t\ttype ifname . %s\n", s.name, addrTypeName(s.fam))
		pairs := slices.SortedFunc(maps.Keys(s.pairs), func(x, y ifAddr) int {
			return cmp.Or(cmp.Compare(x.Interface, y.Interface), x.Addr.Compare(y.Addr))
		})
		for _, p := range pairs {
			elems = append(elems, strconv.Quote(p.Interface)+" . "+p.Addr.String())
		}
	case vmapKind:
		fmt.Fprintf(b, "\tmap %s {\n\t\ttype %s : verdict\n", s.name, addrTypeName(s.fam))
		addrs := make([]netip.Addr, 0, len(s.jumps))
		for a := range s.jumps {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		for _, a := range addrs {
			elems = append(elems, fmt.Sprintf("%s : jump %s", a, s.jumps[a]))
		}
	}
	if s.comment != "" {
		fmt.Fprintf(b, "\t\tcomment %s\n", nftQuote(s.comment))
	}
	if len(elems) > 0 {
		fmt.Fprintf(b, "\t\telements = { %s }\n", strings.Join(elems, ",\n\t\t\t     "))
	}
	b.WriteString("\t}\n")
}

func hookName(h uint32) string {
	switch h {
	case unix.NF_INET_FORWARD:
		return "forward"
	case unix.NF_INET_LOCAL_IN:
		return "input"
	case unix.NF_INET_LOCAL_OUT:
		return "output"
	case unix.NF_INET_PRE_ROUTING:
		return "prerouting"
	}
	return strconv.Itoa(int(h))
}

func renderChain(b *strings.Builder, c *chainModel) {
	fmt.Fprintf(b, "\n\tchain %s {\n", c.name)
	if c.base != nil {
		fmt.Fprintf(b, "\t\ttype filter hook %s priority %d; policy accept;\n", hookName(c.base.hook), c.base.prio)
	}
	if c.comment != "" {
		fmt.Fprintf(b, "\t\tcomment %s\n", nftQuote(c.comment))
	}
	for _, r := range c.rules {
		fmt.Fprintf(b, "\t\t%s comment %s\n", r.text, nftQuote(commentText(udataRuleComment, r.udata)))
	}
	b.WriteString("\t}\n")
}
