package nftables

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

// state is the compiler: the IR as last programmed (kept in maps so that a
// delta costs what it touches) and the model derived from it. apply turns a
// delta into model changes and records the matching kernel operations in a
// tx; building a whole snapshot is apply of a delta that adds everything.
type state struct {
	gen uint64
	m   *model

	addr  map[string]map[netip.Prefix]struct{}
	hosts map[string]struct{} // address sets kept as hash sets of addresses (IR Hosts)
	ports map[string]*portIR
	lists map[string]*ir.RuleList
	eps   map[string]*epIR

	profiles  map[string]*sharedChain        // chain name → profile chain
	tiers     map[string]*sharedChain        // chain name → tier chain
	listTiers map[string]map[string]struct{} // rule list ID → tier chains using it
	owners    map[vmapKey]string             // map entry → endpoint ID
	addrOwner map[netip.Addr]string          // endpoint address → endpoint ID
	ifOwner   map[string]string              // endpoint interface → endpoint ID
	// bm is our bridge table (source validation of bridge ports), nil
	// while no endpoint has an interface (see guard.go).
	bm          *model
	chainKey    map[string]string // hashed chain name → what it was derived from
	hashMemo    map[string]uint64 // derivation key → hash
	profileMemo map[string]*profileNames

	// Scratch of one apply.
	pending map[vmapKey]pendingJump // map entries to write
	gc      map[string]struct{}

	log verdictlog.Logging // what the verdict log records (vlog.go)
}

type portIR struct {
	proto   ir.Protocol
	name    string
	members map[netip.AddrPort]struct{}
}

type epIR struct {
	ep   ir.Endpoint
	refs []epRef
}

type epRef struct {
	key   vmapKey
	chain string
}

// pendingJump is a dispatch entry to write: the profile chain, or a delete.
type pendingJump struct {
	chain string
	del   bool
}

type vmapKey struct {
	set  string
	addr netip.Addr
}

// sharedChain is a profile or tier chain, shared by every user with the
// same key and deleted when the last one goes.
type sharedChain struct {
	refs  int
	fam   ir.Family
	kind  ir.TierKind // tier chains
	lists []string    // tier chains
	tiers []string    // profiles: the tier chains they jump to
}

var families = []ir.Family{ir.IPv4, ir.IPv6}

// newState returns an empty compiler holding the fixed objects: base chains
// at priority prio (egress) and prio+1 (ingress), and the dispatch maps.
func newState(prio int32) *state {
	s := &state{
		m:           newModel(),
		addr:        map[string]map[netip.Prefix]struct{}{},
		hosts:       map[string]struct{}{},
		ports:       map[string]*portIR{},
		lists:       map[string]*ir.RuleList{},
		eps:         map[string]*epIR{},
		profiles:    map[string]*sharedChain{},
		tiers:       map[string]*sharedChain{},
		listTiers:   map[string]map[string]struct{}{},
		owners:      map[vmapKey]string{},
		addrOwner:   map[netip.Addr]string{},
		ifOwner:     map[string]string{},
		chainKey:    map[string]string{},
		hashMemo:    map[string]uint64{},
		profileMemo: map[string]*profileNames{},
	}
	for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		for _, fam := range families {
			name := vmapName(dir, fam)
			s.m.sets[name] = newSet(name, vmapKind, fam, fmt.Sprintf("%s dispatch: endpoint address → profile chain", strings.ToLower(string(dir))))
		}
	}
	for _, c := range baseChains(prio) {
		s.m.chains[c.name] = c
	}
	return s
}

// baseChains are the hooks: forwarded traffic is checked twice (egress of
// the source endpoint, ingress of the destination endpoint, in two base
// chains so that an accept of one check never stands for the other); traffic
// from a pod to its node gets the egress check. Node → pod traffic (output)
// is not filtered.
func baseChains(prio int32) []*chainModel {
	est := func() *ruleModel {
		return mustRule(join(matchCtState(2|4, "established,related"), counter(), accept()), "established and related connections")
	}
	dispatch := func(dir ir.Direction, f addrField) []*ruleModel {
		var out []*ruleModel
		for _, fam := range families {
			out = append(out, mustRule(join(matchNFProto(fam), counter(), dispatch(fam, f, vmapName(dir, fam))),
				fmt.Sprintf("%s check of local endpoints (%s)", strings.ToLower(string(dir)), famKeyword(fam))))
		}
		return out
	}
	egressFwd := &chainModel{name: chainEgressForward, base: &baseHook{hook: unix.NF_INET_FORWARD, prio: prio},
		comment: "palisade: egress policy of the source endpoint, forwarded traffic"}
	// Neighbour discovery between pods on a bridge reaches the forward
	// hook through br_netfilter, from and to pod addresses: it must not be
	// judged as pod traffic (an isolated pod could no longer resolve its
	// neighbours on the bridge).
	nd := func() *ruleModel {
		return mustRule(join(matchBridgedND(), counter(), accept()), "IPv6 neighbour discovery between bridged pods")
	}
	egressFwd.rules = append([]*ruleModel{est(), nd()}, dispatch(ir.Egress, srcAddr)...)
	ingressFwd := &chainModel{name: chainIngressForward, base: &baseHook{hook: unix.NF_INET_FORWARD, prio: prio + 1},
		comment: "palisade: ingress policy of the destination endpoint, forwarded traffic"}
	ingressFwd.rules = append([]*ruleModel{est(), nd()}, dispatch(ir.Ingress, dstAddr)...)
	egressIn := &chainModel{name: chainEgressInput, base: &baseHook{hook: unix.NF_INET_LOCAL_IN, prio: prio},
		comment: "palisade: egress policy of the source endpoint, traffic to this node"}
	egressIn.rules = append([]*ruleModel{est(),
		mustRule(join(matchICMPv6ND(), counter(), accept()), "IPv6 neighbour discovery to the node")},
		dispatch(ir.Egress, srcAddr)...)
	return []*chainModel{egressFwd, ingressFwd, egressIn}
}

func mustRule(f frag, c string) *ruleModel {
	r, err := newRule(f, c)
	if err != nil {
		panic(fmt.Sprintf("nftables: fixed rule %q does not marshal: %v", f.text, err)) // a bug in exprs.go
	}
	return r
}

// build returns the compiler state of a whole snapshot, without a kernel.
func build(snap *ir.Snapshot, prio int32) (*state, error) {
	return buildLogging(snap, prio, verdictlog.Logging{})
}

// buildLogging is build with the verdict log lg.
func buildLogging(snap *ir.Snapshot, prio int32, lg verdictlog.Logging) (*state, error) {
	s := newState(prio)
	s.log = lg
	if lg.Enabled {
		s.m.limits[logLimitName(lg.RateOrDefault())] = lg.RateOrDefault()
	}
	d := snap.FromNothing()
	if err := s.check(d); err != nil {
		return nil, err
	}
	if err := s.apply(d, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// check verifies that d fits the state (ir.CheckDelta). It changes
// nothing.
func (s *state) check(d *ir.Delta) error { return ir.CheckDelta(held{s}, d) }

// held shows the state to ir.CheckDelta.
type held struct{ s *state }

func (h held) AddressSet(id string) (exists, hosts bool) {
	_, ok := h.s.addr[id]
	return ok, ok && h.s.hostsOf(id)
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

// apply applies a checked delta. On error the state is inconsistent and
// must be dropped (nothing has been sent to the kernel yet).
func (s *state) apply(d *ir.Delta, t *tx) error {
	s.pending = make(map[vmapKey]pendingJump, 2*(len(d.Endpoints)+len(d.RemovedEndpoints)))
	s.gc = map[string]struct{}{}
	defer func() { s.pending, s.gc = nil, nil }()

	for i := range d.AddedAddressSets {
		s.addAddrSet(&d.AddedAddressSets[i], t)
	}
	for i := range d.AddressSetChanges {
		s.changeAddrSet(&d.AddressSetChanges[i], t)
	}
	for i := range d.AddedPortSets {
		s.addPortSet(&d.AddedPortSets[i], t)
	}
	for i := range d.PortSetChanges {
		s.changePortSet(&d.PortSetChanges[i], t)
	}
	for i := range d.RuleLists {
		if err := s.upsertList(&d.RuleLists[i], t); err != nil {
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
		if err := s.upsertEndpoint(&d.Endpoints[i], t); err != nil {
			return err
		}
	}
	s.guardApply(&guard, t)
	s.writePending(t)
	s.collect(t)
	for _, id := range d.RemovedRuleLists {
		s.removeList(id, t)
	}
	for _, id := range d.RemovedPortSets {
		s.removeSets(portSetName, id, t)
		delete(s.ports, id)
	}
	for _, id := range d.RemovedAddressSets {
		s.removeSets(addrSetName, id, t)
		delete(s.addr, id)
		delete(s.hosts, id)
	}
	s.gen = d.Generation
	return nil
}

// --- address and port sets ---

func famOf(a netip.Addr) ir.Family { return ir.FamilyOf(a) }

func famIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// addrSetKind is the kind of the sets of an IR address set: a hash set of
// addresses when it holds hosts only, else an interval set of prefixes.
func addrSetKind(hosts bool) setKind {
	if hosts {
		return hostKind
	}
	return addrKind
}

// hostsOf reports whether the address set id is kept as hash sets of
// addresses.
func (s *state) hostsOf(id string) bool {
	_, ok := s.hosts[id]
	return ok
}

func (s *state) addAddrSet(as *ir.AddressSet, t *tx) {
	members := make(map[netip.Prefix]struct{}, len(as.Members))
	for _, fam := range families {
		set := newSet(addrSetName(fam, as.ID), addrSetKind(as.Hosts), fam, "address set "+as.ID+": "+as.Description)
		s.m.sets[set.name] = set
		t.createSet(set)
	}
	s.addr[as.ID] = members
	if as.Hosts {
		s.hosts[as.ID] = struct{}{}
	}
	s.changeAddrSet(&ir.AddressSetChange{ID: as.ID, Added: as.Members}, t)
}

func (s *state) changeAddrSet(ch *ir.AddressSetChange, t *tx) {
	members := s.addr[ch.ID]
	sets := [2]*setModel{s.m.sets[addrSetName(ir.IPv4, ch.ID)], s.m.sets[addrSetName(ir.IPv6, ch.ID)]}
	for _, p := range ch.Removed {
		p = unmapPrefix(p)
		if _, ok := members[p]; !ok {
			continue
		}
		delete(members, p)
		set := sets[famIndex(p.Addr())]
		if set.kind == hostKind {
			delete(set.hosts, p.Addr())
			t.delHost(set, p.Addr())
			continue
		}
		iv := prefixInterval(p)
		delete(set.ivals, iv)
		t.delInterval(set, iv)
	}
	for _, p := range ch.Added {
		p = unmapPrefix(p)
		if _, ok := members[p]; ok {
			continue
		}
		members[p] = struct{}{}
		set := sets[famIndex(p.Addr())]
		if set.kind == hostKind {
			set.hosts[p.Addr()] = struct{}{}
			t.addHost(set, p.Addr())
			continue
		}
		iv := prefixInterval(p)
		set.ivals[iv] = struct{}{}
		t.addInterval(set, iv)
	}
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() {
		return netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked()
	}
	return p.Masked()
}

func (s *state) addPortSet(ps *ir.PortSet, t *tx) {
	for _, fam := range families {
		set := newSet(portSetName(fam, ps.ID), portKind, fam,
			fmt.Sprintf("port set %s: named port %s/%s", ps.ID, ps.PortName, ps.Protocol))
		s.m.sets[set.name] = set
		t.createSet(set)
	}
	s.ports[ps.ID] = &portIR{proto: ps.Protocol, name: ps.PortName, members: make(map[netip.AddrPort]struct{}, len(ps.Members))}
	s.changePortSet(&ir.PortSetChange{ID: ps.ID, Added: ps.Members}, t)
}

func (s *state) changePortSet(ch *ir.PortSetChange, t *tx) {
	members := s.ports[ch.ID].members
	sets := [2]*setModel{s.m.sets[portSetName(ir.IPv4, ch.ID)], s.m.sets[portSetName(ir.IPv6, ch.ID)]}
	for _, ap := range ch.Removed {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if _, ok := members[ap]; !ok {
			continue
		}
		delete(members, ap)
		set := sets[famIndex(ap.Addr())]
		delete(set.ports, ap)
		t.delPort(set, ap)
	}
	for _, ap := range ch.Added {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if _, ok := members[ap]; ok {
			continue
		}
		members[ap] = struct{}{}
		set := sets[famIndex(ap.Addr())]
		set.ports[ap] = struct{}{}
		t.addPort(set, ap)
	}
}

func (s *state) removeSets(name func(ir.Family, string) string, id string, t *tx) {
	for _, fam := range families {
		n := name(fam, id)
		delete(s.m.sets, n)
		t.deleteSet(n)
	}
}

// --- rule lists ---

func (s *state) upsertList(in *ir.RuleList, t *tx) error {
	rl := in.Clone()
	s.lists[rl.ID] = &rl
	for _, fam := range families {
		name := listChainName(fam, rl.ID)
		if err := s.claim(name, "list "+rl.ID); err != nil {
			return err
		}
		rules, err := s.listRules(&rl, fam, false)
		if err != nil {
			return err
		}
		s.setChainRules(name, fmt.Sprintf("rule list %s (%s %s)", rl.ID, rl.Origin, strings.ToLower(string(rl.Direction))), rules, t)
	}
	for name := range s.listTiers[rl.ID] {
		tc := s.tiers[name]
		rules, err := s.tierRules(tc.fam, tc.kind, tc.lists)
		if err != nil {
			return err
		}
		s.setChainRules(name, "", rules, t)
	}
	return nil
}

// setChainRules creates the chain or rewrites its rules when they differ.
func (s *state) setChainRules(name, comment string, rules []*ruleModel, t *tx) {
	c := s.m.chains[name]
	if c == nil {
		c = &chainModel{name: name, comment: comment, rules: rules}
		s.m.chains[name] = c
		t.createChain(c)
		t.writeRules(c, false, 0)
		return
	}
	if sameRules(c.rules, rules) {
		return
	}
	old := len(c.rules)
	c.rules = rules
	t.writeRules(c, true, old)
}

// claim records what a hashed chain name was derived from and reports a
// collision (two different things with one name).
func (s *state) claim(name, key string) error {
	if k, ok := s.chainKey[name]; ok && k != key {
		return fmt.Errorf("nftables: chain name %s derived from both %q and %q", name, k, key)
	}
	s.chainKey[name] = key
	return nil
}

func (s *state) removeList(id string, t *tx) {
	for _, fam := range families {
		name := listChainName(fam, id)
		if c := s.m.chains[name]; c != nil {
			t.deleteChain(name, len(c.rules))
			delete(s.m.chains, name)
		}
		delete(s.chainKey, name)
	}
	delete(s.lists, id)
	delete(s.listTiers, id)
}

// listRules compiles a rule list for one family. Each IR rule becomes one
// nft rule per (port alternative, peer set), in order, so the first
// matching nft rule is the first matching IR rule. With passOnly, only Pass
// rules are compiled (the copies a tier chain re-checks).
func (s *state) listRules(rl *ir.RuleList, fam ir.Family, passOnly bool) ([]*ruleModel, error) {
	var out []*ruleModel
	for i := range rl.Rules {
		r := &rl.Rules[i]
		if passOnly && r.Action != ir.Pass {
			continue
		}
		var peers, ports []frag
		if r.AllPeers {
			peers = []frag{{}}
		}
		for _, id := range r.Peers {
			if !r.AllPeers {
				peers = append(peers, matchAddrSet(fam, peerField(rl.Direction), addrSetName(fam, id)))
			}
		}
		if r.AllPorts {
			ports = []frag{{}}
		}
		for _, pm := range r.Ports {
			if r.AllPorts {
				break
			}
			if pm.NamedSet != "" {
				ports = append(ports, matchNamedPorts(fam, pm.Protocol, portSetName(fam, pm.NamedSet)))
			} else {
				ports = append(ports, matchPorts(pm.Protocol, pm.Port, pm.EndPort))
			}
		}
		c := ruleComment(rl, r, passOnly)
		for _, port := range ports {
			for _, peer := range peers {
				if !passOnly {
					lr, err := s.logRule(join(port, peer), rl, r, c)
					if err != nil {
						return nil, fmt.Errorf("rule list %q rule %d: %w", rl.ID, r.Index, err)
					}
					if lr != nil {
						out = append(out, lr)
					}
				}
				rm, err := newRule(join(port, peer, counter(), actionVerdict(r.Action)), c)
				if err != nil {
					return nil, fmt.Errorf("rule list %q rule %d: %w", rl.ID, r.Index, err)
				}
				out = append(out, rm)
			}
		}
	}
	return out, nil
}

func ruleComment(rl *ir.RuleList, r *ir.Rule, passCopy bool) string {
	var b strings.Builder
	b.WriteString(rl.Origin.String())
	b.WriteString(" ")
	b.WriteString(strings.ToLower(string(rl.Direction)))
	b.WriteString(" rule ")
	b.WriteString(strconv.Itoa(r.Index))
	if r.Name != "" {
		b.WriteString(" " + strconv.Quote(r.Name))
	}
	b.WriteString(": ")
	b.WriteString(strings.ToLower(string(r.Action)))
	if passCopy {
		b.WriteString(", skip the rest of the tier")
	}
	return b.String()
}

// --- tiers and profiles ---

// hash is 64 bits of SHA-256 of key, memoised.
func (s *state) hash(key string) uint64 {
	if h, ok := s.hashMemo[key]; ok {
		return h
	}
	if len(s.hashMemo) > 4*(len(s.profiles)+len(s.tiers))+1024 {
		clear(s.hashMemo)
	}
	sum := sha256.Sum256([]byte(key))
	h := binary.BigEndian.Uint64(sum[:8])
	s.hashMemo[key] = h
	return h
}

func hexID(h uint64) string { return fmt.Sprintf("%016x", h) }

// profileNames are the chain names of one profile key, per family.
type profileNames struct {
	name [2]string
}

func (s *state) profileNames(key string) *profileNames {
	if pn, ok := s.profileMemo[key]; ok {
		return pn
	}
	if len(s.profileMemo) > 4*len(s.profiles)+1024 {
		clear(s.profileMemo)
	}
	pn := &profileNames{}
	for i, fam := range families {
		pn.name[i] = "p" + famDigit(fam) + "-" + hexID(s.hash(famDigit(fam)+" "+key))
	}
	s.profileMemo[key] = pn
	return pn
}

// refProfile returns the profile chain of (fam, dir, tiers), creating it on
// first use. Its name is a hash of key, so the same profile gets the same
// chain whatever the history. key is ir.ProfileKey(dir, tiers).
func (s *state) refProfile(fam ir.Family, dir ir.Direction, tiers []ir.Tier, key string, t *tx) (string, error) {
	pn := s.profileNames(key)
	fi := 0
	if fam == ir.IPv6 {
		fi = 1
	}
	name := pn.name[fi]
	if p := s.profiles[name]; p != nil {
		p.refs++
		return name, nil
	}
	if err := s.claim(name, key); err != nil {
		return "", err
	}
	p := &sharedChain{refs: 1, fam: fam}
	var rules []*ruleModel
	rules = append(rules, mustRule(join(matchCtState(1, "invalid"), counter(), drop()), "invalid packets"))
	for _, tier := range tiers {
		kind := strings.ToLower(string(tier.Kind))
		switch {
		case tier.Kind == ir.TierNetworkPolicy:
			for _, id := range tier.RuleLists {
				rules = append(rules, mustRule(join(counter(), jump(listChainName(fam, id))), "NetworkPolicy tier: list "+id))
			}
			if lr := s.isolatedLogRule(dir); lr != nil {
				rules = append(rules, lr)
			}
			rules = append(rules, mustRule(join(counter(), drop()), "NetworkPolicy tier: no rule matched, isolated"))
		case len(tier.RuleLists) == 1:
			id := tier.RuleLists[0]
			rules = append(rules, mustRule(join(counter(), jump(listChainName(fam, id))), string(tier.Kind)+" tier: list "+id))
		case len(tier.RuleLists) > 1:
			tn, err := s.refTier(fam, tier.Kind, tier.RuleLists, t)
			if err != nil {
				return "", err
			}
			p.tiers = append(p.tiers, tn)
			rules = append(rules, mustRule(join(counter(), jump(tn)), fmt.Sprintf("%s tier: %d lists", kind, len(tier.RuleLists))))
		}
	}
	s.profiles[name] = p
	s.setChainRules(name, fmt.Sprintf("profile: %s %s", famKeyword(fam), key), rules, t)
	return name, nil
}

// refTier returns the chain of a first-match tier of several lists, creating
// it on first use. It jumps to each list in order; after a list returns, the
// list's Pass rules are checked again and a match returns from the tier
// chain: a Pass skips the rest of the tier without a packet mark.
func (s *state) refTier(fam ir.Family, kind ir.TierKind, lists []string, t *tx) (string, error) {
	key := ir.TierKey(kind, lists)
	name := "t" + famDigit(fam) + "-" + hexID(s.hash(famDigit(fam)+" "+key))
	if tc := s.tiers[name]; tc != nil {
		tc.refs++
		return name, nil
	}
	if err := s.claim(name, key); err != nil {
		return "", err
	}
	rules, err := s.tierRules(fam, kind, lists)
	if err != nil {
		return "", err
	}
	s.tiers[name] = &sharedChain{refs: 1, fam: fam, kind: kind, lists: slices.Clone(lists)}
	for _, id := range lists {
		if s.listTiers[id] == nil {
			s.listTiers[id] = map[string]struct{}{}
		}
		s.listTiers[id][name] = struct{}{}
	}
	s.setChainRules(name, fmt.Sprintf("tier: %s %s", famKeyword(fam), key), rules, t)
	return name, nil
}

func (s *state) tierRules(fam ir.Family, kind ir.TierKind, lists []string) ([]*ruleModel, error) {
	var rules []*ruleModel
	for i, id := range lists {
		rules = append(rules, mustRule(join(counter(), jump(listChainName(fam, id))), string(kind)+" tier: list "+id))
		if i == len(lists)-1 {
			break
		}
		rl := s.lists[id]
		if rl == nil {
			return nil, fmt.Errorf("tier %s: unknown rule list %q", kind, id)
		}
		pass, err := s.listRules(rl, fam, true)
		if err != nil {
			return nil, err
		}
		rules = append(rules, pass...)
	}
	return rules, nil
}

func (s *state) unref(name string) {
	if p := s.profiles[name]; p != nil {
		p.refs--
		if p.refs == 0 {
			s.gc[name] = struct{}{}
		}
	}
}

// collect deletes the profile and tier chains nothing uses any more.
func (s *state) collect(t *tx) {
	for _, name := range sortedKeys(s.gc) {
		p := s.profiles[name]
		if p == nil || p.refs > 0 {
			continue
		}
		s.dropChain(name, t)
		delete(s.profiles, name)
		for _, tn := range p.tiers {
			tc := s.tiers[tn]
			tc.refs--
			if tc.refs > 0 {
				continue
			}
			s.dropChain(tn, t)
			delete(s.tiers, tn)
			for _, id := range tc.lists {
				delete(s.listTiers[id], tn)
				if len(s.listTiers[id]) == 0 {
					delete(s.listTiers, id)
				}
			}
		}
	}
}

func (s *state) dropChain(name string, t *tx) {
	if c := s.m.chains[name]; c != nil {
		t.deleteChain(name, len(c.rules))
		delete(s.m.chains, name)
	}
	delete(s.chainKey, name)
}

// --- endpoints ---

func (s *state) upsertEndpoint(in *ir.Endpoint, t *tx) error {
	ep := in.Clone()
	var refs []epRef
	for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		tiers := ep.Tiers(dir)
		if len(tiers) == 0 {
			continue // unrestricted: no map entry, the base chain accepts
		}
		key := ir.ProfileKey(dir, tiers)
		for _, ip := range ep.IPs {
			ip = ip.Unmap()
			fam := famOf(ip)
			chain, err := s.refProfile(fam, dir, tiers, key, t)
			if err != nil {
				return err
			}
			key := vmapKey{vmapName(dir, fam), ip}
			if owner, ok := s.owners[key]; ok && owner != ep.ID {
				return fmt.Errorf("endpoint %q: address %s is also endpoint %q's", ep.ID, ip, owner)
			}
			s.owners[key] = ep.ID
			s.pending[key] = pendingJump{chain: chain}
			refs = append(refs, epRef{key, chain})
		}
	}
	if old := s.eps[ep.ID]; old != nil {
		for _, r := range old.refs {
			if !slices.ContainsFunc(refs, func(n epRef) bool { return n.key == r.key }) {
				delete(s.owners, r.key)
				s.pending[r.key] = pendingJump{del: true}
			}
			s.unref(r.chain)
		}
	}
	if old := s.eps[ep.ID]; old != nil {
		s.disown(old.ep)
	}
	for _, ip := range ep.IPs {
		s.addrOwner[ip] = ep.ID
	}
	s.eps[ep.ID] = &epIR{ep: ep, refs: refs}
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
	for _, r := range old.refs {
		delete(s.owners, r.key)
		s.pending[r.key] = pendingJump{del: true}
		s.unref(r.chain)
	}
	s.disown(old.ep)
	delete(s.eps, id)
}

// writePending turns the dispatch entries touched by this apply into
// element changes (a changed target is a delete and an add in one batch).
func (s *state) writePending(t *tx) {
	for key, p := range s.pending {
		set := s.m.sets[key.set]
		cur, has := set.jumps[key.addr]
		switch {
		case p.del && has:
			delete(set.jumps, key.addr)
			t.delDispatch(set, key.addr)
		case p.del || (has && cur == p.chain):
		default:
			if has {
				t.delDispatch(set, key.addr)
			}
			set.jumps[key.addr] = p.chain
			t.addDispatch(set, key.addr, p.chain)
		}
	}
}
