package iptables

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
)

// Source validation (ir.Endpoint.Interface): a packet arriving on an
// endpoint's interface must carry one of the endpoint's addresses as its
// source. It is checked in the raw table, before connection tracking, so a
// forged packet neither creates nor updates a tracking entry (a forged RST
// on another pod's connection would otherwise close its entry):
//
//	raw PREROUTING  -j PALISADE-GUARD                 (inserted first)
//	PALISADE-GUARD
//	  -m set --match-set pal-g4 src,src     -j RETURN   the endpoint's own source
//	  -m physdev --physdev-is-in            -g PALISADE-GUARDBR  bridged: by port
//	  -m set ! --match-set pal-gi4 src,src  -j RETURN   not an endpoint interface
//	  (IPv6) -s fe80::/10                   -j RETURN   neighbour discovery
//	  (IPv6) -s ::/128                      -j RETURN   duplicate address detection
//	                                        -j DROP     forged (counted)
//	PALISADE-GUARDBR  (a bridged packet: the input interface is the bridge)
//	  (IPv6) -s fe80::/10 -j RETURN;  -s ::/128 -j RETURN
//	  per endpoint port, sorted:
//	    -s <address> -m physdev --physdev-in <port> -j RETURN   (each address)
//	    -m physdev --physdev-in <port>              -j DROP     (counted)
//
//	ipsets  pal-g4/pal-g6    hash:net,iface  address,interface pairs
//	        pal-gi4/pal-gi6  hash:net,iface  0.0.0.0/1 and 128.0.0.0/1 (::/1,
//	                                         8000::/1) with each interface
//
// A routed veth is the packet's input interface: one set lookup for a
// packet from its endpoint's address, two from a non-endpoint interface. A bridge port
// is not: br_netfilter records it (the physdev match reads it), but an
// ipset lookup from iptables always keys hash:net,iface by the input
// interface (the kernel's physdev lookup needs a flag the set match does
// not expose), so bridged packets are checked by rules per port, linear in
// the node's bridged endpoints (the nftables backend does it in one lookup
// in a bridge-family table). Every interface is in both places, so the
// backend need not know the topology. Bridged packets reach the raw table
// only through br_netfilter (net.bridge.bridge-nf-call-iptables). The
// objects exist only while some endpoint has an Interface.

// rawPrefix marks, in the model and the kernel state, a chain of the raw
// table (the others are in the filter table).
const rawPrefix = "raw/"

func (n *names) guardChain() string { return n.chain + "-GUARD" }

func (n *names) guardBrChain() string { return n.chain + "-GUARDBR" }

func (n *names) guardSet(fam ir.Family) string { return n.set + "-g" + strconv.Itoa(int(fam)) }

func (n *names) guardIfSet(fam ir.Family) string { return n.set + "-gi" + strconv.Itoa(int(fam)) }

// guardHook is the rule of raw PREROUTING that enters the guard chain.
func (n *names) guardHook() string {
	return comment("palisade: source validation of local endpoints") + " -j " + n.guardChain()
}

// splitTable returns the table and the chain of a model or kernel chain
// name.
func splitTable(name string) (table, chain string) {
	if c, ok := strings.CutPrefix(name, rawPrefix); ok {
		return "raw", c
	}
	return "filter", name
}

func (s *state) guardRules() [2][]string {
	var out [2][]string
	for f, fam := range families {
		r := []string{
			fmt.Sprintf("-m set --match-set %s src,src %s -j RETURN", s.n.guardSet(fam), comment("palisade: a source of the interface's endpoint")),
			"-m physdev --physdev-is-in " + comment("palisade: bridged, checked by port") + " -g " + s.n.guardBrChain(),
			fmt.Sprintf("-m set ! --match-set %s src,src %s -j RETURN", s.n.guardIfSet(fam), comment("palisade: not an endpoint interface")),
		}
		if fam == ir.IPv6 {
			r = append(r,
				"-s fe80::/10 "+comment("palisade: IPv6 link-local source (neighbour discovery)")+" -j RETURN",
				"-s ::/128 "+comment("palisade: IPv6 unspecified source (duplicate address detection)")+" -j RETURN")
		}
		out[f] = append(r, comment("palisade: source validation: forged source address")+" -j DROP")
	}
	return out
}

func guardMembers(p ir.SourcePair) []string {
	return []string{p.Addr.String() + "," + p.Interface}
}

func guardIfMembers(fam ir.Family, iface string) []string {
	halves := []string{"0.0.0.0/1", "128.0.0.0/1"}
	if fam == ir.IPv6 {
		halves = []string{"::/1", "8000::/1"}
	}
	var out []string
	for _, h := range halves {
		out = append(out, h+","+iface)
	}
	return out
}

// guardApply turns ch, the source validation change of a delta, into
// member changes once the delta's endpoints are applied (s.ifOwner
// updated), creating the guard chains, sets and hook with the first
// interface and removing them with the last.
func (s *state) guardApply(ch *ir.SourceChange) {
	guarded := s.m.chains[rawPrefix+s.n.guardChain()] != nil
	if len(s.ifOwner) > 0 && !guarded {
		for _, fam := range families {
			s.createSet(s.n.guardSet(fam), "hash:net,iface", fam)
			s.createSet(s.n.guardIfSet(fam), "hash:net,iface", fam)
		}
		s.setChain(rawPrefix+s.n.guardBrChain(), [2][]string{})
		s.setChain(rawPrefix+s.n.guardChain(), s.guardRules())
		s.hook(true)
		guarded = true
	}
	if !guarded {
		return
	}
	for _, name := range ch.RemovedInterfaces {
		for _, fam := range families {
			for _, m := range guardIfMembers(fam, name) {
				s.delMember(s.n.guardIfSet(fam), m)
			}
		}
	}
	for _, p := range ch.RemovedPairs {
		for _, m := range guardMembers(p) {
			s.delMember(s.n.guardSet(ir.FamilyOf(p.Addr)), m)
		}
	}
	for _, name := range ch.AddedInterfaces {
		for _, fam := range families {
			for _, m := range guardIfMembers(fam, name) {
				s.addMember(s.n.guardIfSet(fam), m)
			}
		}
	}
	for _, p := range ch.AddedPairs {
		for _, m := range guardMembers(p) {
			s.addMember(s.n.guardSet(ir.FamilyOf(p.Addr)), m)
		}
	}
	if len(s.ifOwner) > 0 {
		if !ch.Empty() {
			s.setChain(rawPrefix+s.n.guardBrChain(), s.guardBrRules())
		}
	} else {
		s.hook(false)
		s.deleteChain(rawPrefix + s.n.guardChain())
		s.deleteChain(rawPrefix + s.n.guardBrChain())
		for _, fam := range families {
			s.destroySet(s.n.guardSet(fam))
			s.destroySet(s.n.guardIfSet(fam))
		}
	}
}

// guardBrRules are the per-port rules of bridged packets, from every
// endpoint with an interface.
func (s *state) guardBrRules() [2][]string {
	var out [2][]string
	out[1] = append(out[1],
		"-s fe80::/10 "+comment("palisade: IPv6 link-local source (neighbour discovery)")+" -j RETURN",
		"-s ::/128 "+comment("palisade: IPv6 unspecified source (duplicate address detection)")+" -j RETURN")
	for _, iface := range slices.Sorted(maps.Keys(s.ifOwner)) {
		e := s.eps[s.ifOwner[iface]]
		if e == nil {
			continue
		}
		port := "-m physdev --physdev-in " + iface + " "
		for _, ip := range e.ep.IPs {
			f := fi(ir.FamilyOf(ip))
			out[f] = append(out[f], "-s "+netip.PrefixFrom(ip, ip.BitLen()).String()+" "+port+comment("palisade: a source of "+e.ep.ID)+" -j RETURN")
		}
		for f := range out {
			out[f] = append(out[f], port+comment("palisade: source validation of "+e.ep.ID+": forged source address")+" -j DROP")
		}
	}
	return out
}

// hook records the insertion (or deletion) of the rule entering the guard
// chain, for an Apply; Sync derives hooks from the model (hookRules).
func (s *state) hook(insert bool) {
	if s.ops == nil {
		return
	}
	s.ops.hooks = append(s.ops.hooks, hookOp{builtin: rawPrefix + "PREROUTING", rule: s.n.guardHook(), insert: insert})
	s.ops.n++
}

type hookOp struct {
	builtin, rule string
	insert        bool
}

// ForgedDrops returns the number of packets the source validation dropped
// (forged sources on endpoints' interfaces), IPv4 and IPv6, from the
// counter of the guard chain's DROP rule. It is 0 while no endpoint has an
// interface, and an error before the first Sync.
func (b *Backend) ForgedDrops(ctx context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.st == nil:
		return 0, fmt.Errorf("iptables: ForgedDrops before the first Sync: %w", backend.ErrNotSynced)
	case b.st.m.chains[rawPrefix+b.n.guardChain()] == nil:
		return 0, nil
	}
	if err := b.resolve(ctx); err != nil {
		return 0, err
	}
	var total uint64
	for f := range families {
		out, err := b.run.Run(ctx, b.bins.save[f], []string{"-t", "raw", "-c"}, nil)
		if err != nil {
			return 0, fmt.Errorf("iptables: reading the %s raw table's counters: %w", familyName(families[f]), err)
		}
		for _, chain := range []string{b.n.guardChain(), b.n.guardBrChain()} {
			n, err := dropCounter(out, chain)
			if err != nil {
				return 0, err
			}
			total += n
		}
	}
	return total, nil
}

// dropCounter reads the packet count of chain's DROP rules from
// iptables-save -c output ("[packets:bytes] -A CHAIN ... -j DROP").
func dropCounter(out []byte, chain string) (uint64, error) {
	var total uint64
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "[") || !strings.HasSuffix(line, " -j DROP") {
			continue
		}
		counts, rule, ok := strings.Cut(line[1:], "] ")
		if !ok || !strings.HasPrefix(rule, "-A "+chain+" ") {
			continue
		}
		packets, _, _ := strings.Cut(counts, ":")
		n, err := strconv.ParseUint(packets, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("iptables: counter of %q: %w", line, err)
		}
		total += n
	}
	return total, nil
}
