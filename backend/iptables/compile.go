package iptables

import (
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

var families = []ir.Family{ir.IPv4, ir.IPv6}

func fi(f ir.Family) int {
	if f == ir.IPv6 {
		return 1
	}
	return 0
}

// model is what we program: our chains (the same names in the IPv4 and
// IPv6 filter tables, with per-family rules) and our ipsets. Rules are kept
// exactly as iptables-save prints them, after "-A CHAIN ".
type model struct {
	chains map[string]*[2][]string
	sets   map[string]*setModel
}

type setModel struct {
	typ     string // hash:net, hash:ip,port, hash:ip
	fam     ir.Family
	members map[string]struct{} // as ipset save prints them
}

func newModel() *model {
	return &model{chains: map[string]*[2][]string{}, sets: map[string]*setModel{}}
}

// state is the compiler: the IR as last programmed, kept in maps so that a
// delta costs what it touches, and the model derived from it. Every change
// to the model is recorded in ops (nil while build compiles a whole
// snapshot, which Sync diffs against the kernel instead), which the caller
// turns into restore input.
type state struct {
	n   *names
	gen uint64
	m   *model

	addr  map[string]map[netip.Prefix]struct{}
	hosts map[string]bool // address sets that hold hosts only (IR Hosts)
	ports map[string]*portIR
	lists map[string]*ir.RuleList
	eps   map[string]*epIR

	profiles map[string]*profile // profile chain name → profile
	byKey    map[string]string   // profile key → profile chain name
	tiers    map[string]int      // tier chain name → references
	owners   map[ownerKey]string // (direction, address) → endpoint ID
	// addrOwner maps every endpoint address to its endpoint's ID.
	addrOwner map[netip.Addr]string
	// ifOwner maps every endpoint interface to its endpoint's ID (source
	// validation, guard.go).
	ifOwner  map[string]string
	chainKey map[string]string // hashed name → what it was derived from
	// dispatchDirty: a direction's dispatch chain must be rendered again
	// (profiles came or went during this apply).
	dispatchDirty [2]bool
	gc            map[string]struct{} // profiles whose last reference went

	ops *ops

	log verdictlog.Logging // what the verdict log records (vlog.go)
}

type portIR struct {
	proto   ir.Protocol
	name    string
	members map[netip.AddrPort]struct{}
}

type epIR struct {
	ep       ir.Endpoint
	profiles [2]string // per direction (0 ingress, 1 egress): profile chain, or ""
}

type ownerKey struct {
	dir  ir.Direction
	addr netip.Addr
}

// profile is a chain per (direction, tiers), shared by every endpoint with
// the same tiers, and its two dispatch sets (endpoint addresses).
type profile struct {
	refs  int
	dir   ir.Direction
	key   string
	sets  [2]string // dispatch set per family
	tiers []string  // tier chains it references
}

// ops records what changed, for rendering: chains to rewrite or delete,
// set elements to add or delete, sets to create or destroy.
type ops struct {
	chains  map[string]struct{}
	hooks   []hookOp
	create  []string
	adds    []string
	dels    []string
	destroy []string
	n       int
}

func newOps() *ops { return &ops{chains: map[string]struct{}{}} }

func newState(n *names) *state {
	s := &state{
		n:         n,
		m:         newModel(),
		addr:      map[string]map[netip.Prefix]struct{}{},
		hosts:     map[string]bool{},
		ports:     map[string]*portIR{},
		lists:     map[string]*ir.RuleList{},
		eps:       map[string]*epIR{},
		profiles:  map[string]*profile{},
		byKey:     map[string]string{},
		tiers:     map[string]int{},
		owners:    map[ownerKey]string{},
		addrOwner: map[netip.Addr]string{},
		ifOwner:   map[string]string{},
		chainKey:  map[string]string{},
		gc:        map[string]struct{}{},
		ops:       newOps(),
	}
	for _, c := range s.fixedChains() {
		s.setChain(c.name, c.rules)
	}
	return s
}

type chainRules struct {
	name  string
	rules [2][]string
}

func both(rules ...string) [2][]string { return [2][]string{rules, slices.Clone(rules)} }

// fixedChains are the chains every state holds: the two entry chains, the
// (initially empty) dispatch chains and the two mark-setting chains.
func (s *state) fixedChains() []chainRules {
	n := s.n
	mask := fmt.Sprintf("0x0/0x%x", n.allow|n.pass)
	est := "-m conntrack --ctstate RELATED,ESTABLISHED " + comment("palisade: established and related connections") + " -j RETURN"
	clear := "-m mark ! --mark " + mask + " " + comment("palisade: clear the check marks") + " -j MARK --set-xmark " + mask
	egress := comment("palisade: egress policy of the source endpoint") + " -j " + n.dirChain(ir.Egress)
	ingress := comment("palisade: ingress policy of the destination endpoint") + " -j " + n.dirChain(ir.Ingress)
	fwd := both(est, egress, ingress, clear)
	input := both(est, egress, clear)
	for i, typ := range []string{"133", "134", "135", "136", "137"} {
		input[1] = slices.Insert(input[1], len(input[1])-2,
			"-p ipv6-icmp -m icmp6 --icmpv6-type "+typ+" "+comment("palisade: IPv6 neighbour discovery to the node")+" -j RETURN")
		// Between pods on a bridge, neighbour discovery reaches FORWARD
		// through br_netfilter from and to pod addresses; hop limit 255
		// holds for bridged packets only (a routed one is decremented
		// before FORWARD).
		fwd[1] = slices.Insert(fwd[1], 1+i,
			"-p ipv6-icmp -m icmp6 --icmpv6-type "+typ+" -m hl --hl-eq 255 "+comment("palisade: IPv6 neighbour discovery between bridged pods")+" -j RETURN")
	}
	allow := fmt.Sprintf("%s -j MARK --set-xmark 0x%x/0x%x", comment("palisade: allowed for this direction"), n.allow, n.allow)
	pass := fmt.Sprintf("%s -j MARK --set-xmark 0x%x/0x%x", comment("palisade: pass to the next tier"), n.pass, n.pass)
	return []chainRules{
		{n.fwd(), fwd},
		{n.input(), input},
		{n.dirChain(ir.Egress), [2][]string{}},
		{n.dirChain(ir.Ingress), [2][]string{}},
		{n.allowC(), both(allow)},
		{n.passC(), both(pass)},
	}
}

// hookRules are the rules in the built-in chains that enter ours, for a
// model m: the raw table's PREROUTING enters the guard chain when m has it.
func (n *names) hookRules(m *model) map[string]string {
	hooks := map[string]string{
		"FORWARD": comment("palisade: network policy of local endpoints") + " -j " + n.fwd(),
		"INPUT":   comment("palisade: egress policy of local endpoints to this node") + " -j " + n.input(),
	}
	if m.chains[rawPrefix+n.guardChain()] != nil {
		hooks[rawPrefix+"PREROUTING"] = n.guardHook()
	}
	return hooks
}

func (s *state) setChain(name string, rules [2][]string) {
	if c := s.m.chains[name]; c != nil && slices.Equal(c[0], rules[0]) && slices.Equal(c[1], rules[1]) {
		return
	}
	s.m.chains[name] = &rules
	if s.ops != nil {
		s.ops.chains[name] = struct{}{}
		s.ops.n++
	}
}

func (s *state) deleteChain(name string) {
	if _, ok := s.m.chains[name]; !ok {
		return
	}
	delete(s.m.chains, name)
	delete(s.chainKey, name)
	if s.ops != nil {
		s.ops.chains[name] = struct{}{}
		s.ops.n++
	}
}

// claim records what a hashed chain name was derived from and reports a
// collision.
func (s *state) claim(name, key string) error {
	if k, ok := s.chainKey[name]; ok && k != key {
		return fmt.Errorf("chain name %s derived from both %q and %q", name, k, key)
	}
	s.chainKey[name] = key
	return nil
}

// build returns the state of a whole snapshot, without a kernel.
func build(n *names, snap *ir.Snapshot) (*state, error) {
	return buildLogging(n, snap, verdictlog.Logging{})
}

// buildLogging is build with the verdict log lg.
func buildLogging(n *names, snap *ir.Snapshot, lg verdictlog.Logging) (*state, error) {
	s := newState(n)
	s.log = lg
	d := snap.FromNothing()
	if err := s.check(d); err != nil {
		return nil, err
	}
	s.ops = nil // Sync diffs the model against the kernel instead
	if err := s.apply(d); err != nil {
		return nil, err
	}
	s.ops = newOps()
	return s, nil
}

// check verifies that d fits the state (ir.CheckDelta). It changes
// nothing.
func (s *state) check(d *ir.Delta) error { return ir.CheckDelta(held{s}, d) }

// held shows the state to ir.CheckDelta.
type held struct{ s *state }

// AddressSet reports the IR's Hosts flag, although every address set is a
// hash:net (which holds prefixes and single addresses alike): the contract
// is the same for every backend.
func (h held) AddressSet(id string) (exists, hosts bool) {
	_, ok := h.s.addr[id]
	return ok, h.s.hosts[id]
}

func (h held) HasAddress(id string, p netip.Prefix) bool {
	_, ok := h.s.addr[id][p]
	return ok
}

func (h held) AddressMembers(id string) iter.Seq[netip.Prefix] { return maps.Keys(h.s.addr[id]) }

func (h held) HasAddrPort(id string, ap netip.AddrPort) bool {
	p := h.s.ports[id]
	if p == nil {
		return false
	}
	_, ok := p.members[ap]
	return ok
}

func (h held) RuleLists() iter.Seq[*ir.RuleList] { return maps.Values(h.s.lists) }

func (h held) Owner(a netip.Addr) (string, bool) {
	id, ok := h.s.addrOwner[a]
	return id, ok
}

func (h held) InterfaceOwner(name string) (string, bool) {
	id, ok := h.s.ifOwner[name]
	return id, ok
}

func (h held) Endpoints() iter.Seq[*ir.Endpoint] {
	return func(yield func(*ir.Endpoint) bool) {
		for _, e := range h.s.eps {
			if !yield(&e.ep) {
				return
			}
		}
	}
}

func (h held) PortSet(id string) (ir.Protocol, bool) {
	if p := h.s.ports[id]; p != nil {
		return p.proto, true
	}
	return 0, false
}

func (h held) RuleList(id string) *ir.RuleList { return h.s.lists[id] }

func (h held) Endpoint(id string) bool {
	_, ok := h.s.eps[id]
	return ok
}

// apply applies a checked delta, in the order that keeps references
// resolved. On error the state is inconsistent and must be dropped (nothing
// has reached the kernel yet).
func (s *state) apply(d *ir.Delta) error {
	for i := range d.AddedAddressSets {
		s.addAddrSet(&d.AddedAddressSets[i])
	}
	for i := range d.AddressSetChanges {
		s.changeAddrSet(&d.AddressSetChanges[i])
	}
	for i := range d.AddedPortSets {
		s.addPortSet(&d.AddedPortSets[i])
	}
	for i := range d.PortSetChanges {
		s.changePortSet(&d.PortSetChanges[i])
	}
	for i := range d.RuleLists {
		if err := s.upsertList(&d.RuleLists[i]); err != nil {
			return err
		}
	}
	held := func(id string) *ir.Endpoint {
		if e := s.eps[id]; e != nil {
			return &e.ep
		}
		return nil
	}
	guard := ir.SourceChanges(held, d)
	ir.TrackInterfaces(s.ifOwner, held, d)
	// Removals first, so that an address a removed endpoint leaves can be
	// taken by another one in the same delta.
	for _, id := range d.RemovedEndpoints {
		s.removeEndpoint(id)
	}
	for i := range d.Endpoints {
		if err := s.upsertEndpoint(&d.Endpoints[i]); err != nil {
			return err
		}
	}
	s.guardApply(&guard)
	s.collect()
	for _, id := range d.RemovedRuleLists {
		s.deleteChain(s.n.listChain(id))
		delete(s.lists, id)
	}
	for _, id := range d.RemovedPortSets {
		for _, fam := range families {
			s.destroySet(s.n.portSet(fam, id))
		}
		delete(s.ports, id)
	}
	for _, id := range d.RemovedAddressSets {
		for _, fam := range families {
			s.destroySet(s.n.addrSet(fam, id))
		}
		delete(s.addr, id)
		delete(s.hosts, id)
	}
	s.gen = d.Generation
	return nil
}

// --- sets ---

func famWord(f ir.Family) string {
	if f == ir.IPv6 {
		return "inet6"
	}
	return "inet"
}

func (s *state) createSet(name, typ string, fam ir.Family) {
	if _, ok := s.m.sets[name]; ok {
		return
	}
	s.m.sets[name] = &setModel{typ: typ, fam: fam, members: map[string]struct{}{}}
	if s.ops != nil {
		s.ops.create = append(s.ops.create, createLine(name, typ, fam))
		s.ops.n++
	}
}

func createLine(name, typ string, fam ir.Family) string {
	return fmt.Sprintf("create %s %s family %s", name, typ, famWord(fam)) + setOptions
}

func (s *state) destroySet(name string) {
	if _, ok := s.m.sets[name]; !ok {
		return
	}
	delete(s.m.sets, name)
	if s.ops != nil {
		s.ops.destroy = append(s.ops.destroy, "destroy "+name)
		s.ops.n++
	}
}

func (s *state) addMember(set, member string) {
	sm := s.m.sets[set]
	if _, ok := sm.members[member]; ok {
		return
	}
	sm.members[member] = struct{}{}
	if s.ops != nil {
		s.ops.adds = append(s.ops.adds, "add "+set+" "+member)
		s.ops.n++
	}
}

func (s *state) delMember(set, member string) {
	sm := s.m.sets[set]
	if sm == nil {
		return
	}
	if _, ok := sm.members[member]; !ok {
		return
	}
	delete(sm.members, member)
	if s.ops != nil {
		s.ops.dels = append(s.ops.dels, "del "+set+" "+member)
		s.ops.n++
	}
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() {
		return netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked()
	}
	return p.Masked()
}

// netMembers renders a prefix as hash:net members, as ipset save prints
// them: a host prefix without its length; /0 (which hash:net cannot hold)
// as its two halves.
func netMembers(p netip.Prefix) []string {
	if p.Bits() == 0 {
		lo := netip.PrefixFrom(p.Addr(), 1)
		b := p.Addr().AsSlice()
		b[0] |= 0x80
		a, _ := netip.AddrFromSlice(b)
		return []string{lo.String(), netip.PrefixFrom(a, 1).String()}
	}
	if p.IsSingleIP() {
		return []string{p.Addr().String()}
	}
	return []string{p.String()}
}

func (s *state) addAddrSet(as *ir.AddressSet) {
	for _, fam := range families {
		s.createSet(s.n.addrSet(fam, as.ID), "hash:net", fam)
	}
	s.addr[as.ID] = make(map[netip.Prefix]struct{}, len(as.Members))
	if as.Hosts {
		s.hosts[as.ID] = true
	}
	s.changeAddrSet(&ir.AddressSetChange{ID: as.ID, Added: as.Members})
}

func (s *state) changeAddrSet(ch *ir.AddressSetChange) {
	members := s.addr[ch.ID]
	for _, p := range ch.Removed {
		p = unmapPrefix(p)
		if _, ok := members[p]; !ok {
			continue
		}
		delete(members, p)
		set := s.n.addrSet(ir.FamilyOf(p.Addr()), ch.ID)
		for _, m := range netMembers(p) {
			s.delMember(set, m)
		}
	}
	for _, p := range ch.Added {
		p = unmapPrefix(p)
		if _, ok := members[p]; ok {
			continue
		}
		members[p] = struct{}{}
		set := s.n.addrSet(ir.FamilyOf(p.Addr()), ch.ID)
		for _, m := range netMembers(p) {
			s.addMember(set, m)
		}
	}
}

func protoWord(p ir.Protocol) string { return strings.ToLower(p.String()) }

func portMember(proto ir.Protocol, ap netip.AddrPort) string {
	return ap.Addr().String() + "," + protoWord(proto) + ":" + strconv.Itoa(int(ap.Port()))
}

func (s *state) addPortSet(ps *ir.PortSet) {
	for _, fam := range families {
		s.createSet(s.n.portSet(fam, ps.ID), "hash:ip,port", fam)
	}
	s.ports[ps.ID] = &portIR{proto: ps.Protocol, name: ps.PortName, members: make(map[netip.AddrPort]struct{}, len(ps.Members))}
	s.changePortSet(&ir.PortSetChange{ID: ps.ID, Added: ps.Members})
}

func (s *state) changePortSet(ch *ir.PortSetChange) {
	p := s.ports[ch.ID]
	for _, ap := range ch.Removed {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if _, ok := p.members[ap]; !ok {
			continue
		}
		delete(p.members, ap)
		s.delMember(s.n.portSet(ir.FamilyOf(ap.Addr()), ch.ID), portMember(p.proto, ap))
	}
	for _, ap := range ch.Added {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if _, ok := p.members[ap]; ok {
			continue
		}
		p.members[ap] = struct{}{}
		s.addMember(s.n.portSet(ir.FamilyOf(ap.Addr()), ch.ID), portMember(p.proto, ap))
	}
}

// --- rule lists ---

func (s *state) upsertList(in *ir.RuleList) error {
	rl := in.Clone()
	name := s.n.listChain(rl.ID)
	if err := s.claim(name, "list "+rl.ID); err != nil {
		return err
	}
	s.lists[rl.ID] = &rl
	var rules [2][]string
	for _, fam := range families {
		rules[fi(fam)] = s.listRules(&rl, fam)
	}
	s.setChain(name, rules)
	return nil
}

// listRules compiles a rule list for one family: each IR rule becomes one
// iptables rule per (port alternative, peer set), in order, so the first
// matching iptables rule is the first matching IR rule. Allow and Pass go
// to the chains that set the direction's mark bits and then return to the
// chain that jumped to the list; Deny drops.
func (s *state) listRules(rl *ir.RuleList, fam ir.Family) []string {
	var out []string
	peerDir := "src"
	if rl.Direction == ir.Egress {
		peerDir = "dst"
	}
	var target string
	for i := range rl.Rules {
		r := &rl.Rules[i]
		switch r.Action {
		case ir.Allow:
			target = "-g " + s.n.allowC()
		case ir.Pass:
			target = "-g " + s.n.passC()
		default:
			target = "-j DROP"
		}
		var peers []string
		if r.AllPeers {
			peers = []string{""}
		} else {
			for _, id := range r.Peers {
				peers = append(peers, "-m set --match-set "+s.n.addrSet(fam, id)+" "+peerDir+" ")
			}
		}
		type portM struct{ proto, match string }
		var ports []portM
		if r.AllPorts {
			ports = []portM{{}}
		} else {
			for _, pm := range r.Ports {
				p := protoWord(pm.Protocol)
				switch {
				case pm.NamedSet != "":
					ports = append(ports, portM{"-p " + p + " ", "-m set --match-set " + s.n.portSet(fam, pm.NamedSet) + " dst,dst "})
				case pm.Port == 0:
					ports = append(ports, portM{"-p " + p + " ", ""})
				case pm.EndPort > pm.Port:
					ports = append(ports, portM{"-p " + p + " ", fmt.Sprintf("-m %s --dport %d:%d ", p, pm.Port, pm.EndPort)})
				default:
					ports = append(ports, portM{"-p " + p + " ", fmt.Sprintf("-m %s --dport %d ", p, pm.Port)})
				}
			}
		}
		c := comment(ruleComment(rl, r))
		for _, pt := range ports {
			for _, peer := range peers {
				if lr := s.logRule(pt.proto+peer+pt.match, rl, r, ruleComment(rl, r)); lr != "" {
					out = append(out, lr)
				}
				out = append(out, pt.proto+peer+pt.match+c+" "+target)
			}
		}
	}
	return out
}

func ruleComment(rl *ir.RuleList, r *ir.Rule) string {
	var b strings.Builder
	b.WriteString(rl.Origin.Kind)
	b.WriteString(" ")
	if rl.Origin.Namespace != "" {
		b.WriteString(rl.Origin.Namespace + "/")
	}
	b.WriteString(rl.Origin.Name)
	b.WriteString(" ")
	b.WriteString(strings.ToLower(string(rl.Direction)))
	b.WriteString(" rule ")
	b.WriteString(strconv.Itoa(r.Index))
	if r.Name != "" {
		b.WriteString(" " + r.Name)
	}
	b.WriteString(": ")
	b.WriteString(strings.ToLower(string(r.Action)))
	return b.String()
}

// --- profiles and tiers ---

func (s *state) markRule(bit uint32, c string) string {
	return fmt.Sprintf("-m mark --mark 0x%x/0x%x %s -j RETURN", bit, bit, comment(c))
}

// refProfile returns the profile chain of (dir, tiers), creating it, its
// tier chains and its dispatch sets on first use.
func (s *state) refProfile(dir ir.Direction, tiers []ir.Tier) (*profile, string, error) {
	key := ir.ProfileKey(dir, tiers)
	if name, ok := s.byKey[key]; ok {
		p := s.profiles[name]
		p.refs++
		return p, name, nil
	}
	name := s.n.profileChain(key)
	if err := s.claim(name, key); err != nil {
		return nil, "", err
	}
	p := &profile{refs: 1, dir: dir, key: key}
	for _, fam := range families {
		p.sets[fi(fam)] = s.n.dispatchSet(fam, key)
		s.createSet(p.sets[fi(fam)], "hash:ip", fam)
	}
	n := s.n
	clearAll := fmt.Sprintf("0x0/0x%x", n.allow|n.pass)
	clearPass := fmt.Sprintf("0x0/0x%x", n.pass)
	rules := []string{
		"-m conntrack --ctstate INVALID " + comment("invalid packets") + " -j DROP",
		comment("start of the "+strings.ToLower(string(dir))+" check") + " -j MARK --set-xmark " + clearAll,
	}
	allowed := s.markRule(n.allow, "allowed")
	for _, tier := range tiers {
		switch {
		case tier.Kind == ir.TierNetworkPolicy:
			for _, id := range tier.RuleLists {
				rules = append(rules, comment("NetworkPolicy tier: list "+id)+" -j "+n.listChain(id), allowed)
			}
			if lr := s.isolatedLogRule(dir); lr != "" {
				rules = append(rules, lr)
			}
			rules = append(rules, comment("NetworkPolicy tier: no rule matched, isolated")+" -j DROP")
		case len(tier.RuleLists) == 0:
		default:
			target := n.listChain(tier.RuleLists[0])
			what := string(tier.Kind) + " tier: list " + tier.RuleLists[0]
			if len(tier.RuleLists) > 1 {
				tn, err := s.refTier(tier.Kind, tier.RuleLists)
				if err != nil {
					return nil, "", err
				}
				p.tiers = append(p.tiers, tn)
				target = tn
				what = fmt.Sprintf("%s tier: %d lists", tier.Kind, len(tier.RuleLists))
			}
			rules = append(rules, comment(what)+" -j "+target, allowed,
				comment(string(tier.Kind)+" tier: passed or no match, next tier")+" -j MARK --set-xmark "+clearPass)
		}
	}
	s.profiles[name] = p
	s.byKey[key] = name
	s.setChain(name, both(rules...))
	s.dispatchDirty[dirIndex(dir)] = true
	return p, name, nil
}

// refTier returns the chain of a first-match tier of several lists: it
// jumps to each list in order and returns as soon as one set the allow or
// the pass bit.
func (s *state) refTier(kind ir.TierKind, lists []string) (string, error) {
	key := ir.TierKey(kind, lists)
	name := s.n.tierChain(key)
	if s.tiers[name] > 0 {
		s.tiers[name]++
		return name, nil
	}
	if err := s.claim(name, key); err != nil {
		return "", err
	}
	var rules []string
	for i, id := range lists {
		rules = append(rules, comment(string(kind)+" tier: list "+id)+" -j "+s.n.listChain(id))
		if i < len(lists)-1 {
			rules = append(rules, s.markRule(s.n.allow, "allowed"), s.markRule(s.n.pass, "passed: skip the rest of the tier"))
		}
	}
	s.tiers[name] = 1
	s.setChain(name, both(rules...))
	return name, nil
}

// renderDispatch rewrites a direction's dispatch chain: one rule per
// profile, matching its set of endpoint addresses.
func (s *state) renderDispatch(dir ir.Direction) {
	names := make([]string, 0, len(s.profiles))
	for name, p := range s.profiles {
		if p.dir == dir {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	side := "dst"
	if dir == ir.Egress {
		side = "src"
	}
	var rules [2][]string
	for _, name := range names {
		p := s.profiles[name]
		for _, fam := range families {
			rules[fi(fam)] = append(rules[fi(fam)],
				"-m set --match-set "+p.sets[fi(fam)]+" "+side+" "+comment("endpoints of profile "+name)+" -g "+name)
		}
	}
	s.setChain(s.n.dirChain(dir), rules)
}

// collect deletes the profiles no endpoint uses any more, their tier
// chains and dispatch sets.
func (s *state) collect() {
	for _, name := range slices.Sorted(maps.Keys(s.gc)) {
		p := s.profiles[name]
		if p == nil || p.refs > 0 {
			continue
		}
		delete(s.profiles, name)
		delete(s.byKey, p.key)
		s.deleteChain(name)
		for _, set := range p.sets {
			s.destroySet(set)
		}
		for _, tn := range p.tiers {
			s.tiers[tn]--
			if s.tiers[tn] == 0 {
				delete(s.tiers, tn)
				s.deleteChain(tn)
			}
		}
		s.dispatchDirty[dirIndex(p.dir)] = true
	}
	for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		if s.dispatchDirty[dirIndex(dir)] {
			s.renderDispatch(dir)
		}
	}
	s.dispatchDirty = [2]bool{}
	clear(s.gc)
}

// unref drops an endpoint's reference to a profile; collect deletes the
// profiles left unused.
func (s *state) unref(name string) {
	p := s.profiles[name]
	p.refs--
	if p.refs == 0 {
		s.gc[name] = struct{}{}
	}
}

// --- endpoints ---

func dirIndex(dir ir.Direction) int {
	if dir == ir.Ingress {
		return 0
	}
	return 1
}

func (s *state) upsertEndpoint(in *ir.Endpoint) error {
	ep := in.Clone()
	for i := range ep.IPs {
		ep.IPs[i] = ep.IPs[i].Unmap()
	}
	e := &epIR{ep: ep}
	old := s.eps[ep.ID]
	for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		tiers := ep.Tiers(dir)
		if len(tiers) == 0 {
			continue // unrestricted: in no dispatch set
		}
		p, name, err := s.refProfile(dir, tiers)
		if err != nil {
			return err
		}
		e.profiles[dirIndex(dir)] = name
		for _, ip := range ep.IPs {
			key := ownerKey{dir, ip}
			if owner, ok := s.owners[key]; ok && owner != ep.ID {
				return fmt.Errorf("endpoint %q: address %s is also endpoint %q's", ep.ID, ip, owner)
			}
			s.owners[key] = ep.ID
			s.addMember(p.sets[fi(ir.FamilyOf(ip))], ip.String())
		}
	}
	if old != nil {
		// New memberships are in place; now drop the old ones.
		for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
			oldName := old.profiles[dirIndex(dir)]
			if oldName == "" {
				continue
			}
			p := s.profiles[oldName]
			newName := e.profiles[dirIndex(dir)]
			for _, ip := range old.ep.IPs {
				if newName == oldName && slices.Contains(ep.IPs, ip) {
					continue
				}
				s.delMember(p.sets[fi(ir.FamilyOf(ip))], ip.String())
				if newName == "" || !slices.Contains(ep.IPs, ip) {
					delete(s.owners, ownerKey{dir, ip})
				}
			}
			s.unref(oldName)
		}
	}
	if old != nil {
		s.disown(old.ep)
	}
	for _, ip := range ep.IPs {
		s.addrOwner[ip] = ep.ID
	}
	s.eps[ep.ID] = e
	return nil
}

// disown forgets the addresses ep holds, unless another endpoint took
// them in the same delta.
func (s *state) disown(ep ir.Endpoint) {
	for _, ip := range ep.IPs {
		if s.addrOwner[ip] == ep.ID {
			delete(s.addrOwner, ip)
		}
	}
}

func (s *state) removeEndpoint(id string) {
	old := s.eps[id]
	if old == nil {
		return
	}
	for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		name := old.profiles[dirIndex(dir)]
		if name == "" {
			continue
		}
		p := s.profiles[name]
		for _, ip := range old.ep.IPs {
			s.delMember(p.sets[fi(ir.FamilyOf(ip))], ip.String())
			delete(s.owners, ownerKey{dir, ip})
		}
		s.unref(name)
	}
	s.disown(old.ep)
	delete(s.eps, id)
}

// setOptions are appended to every create: room for a large cluster.
const setOptions = " maxelem 1048576"
