package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/selector"
)

const kindNetworkPolicy = "NetworkPolicy"

// policyKey identifies a policy object of any kind.
type policyKey struct {
	kind, namespace, name string
}

func (k policyKey) String() string {
	if k.namespace == "" {
		return k.kind + "/" + k.name
	}
	return k.kind + "/" + k.namespace + "/" + k.name
}

// plan is a compiled policy object: what it selects and its rule lists, with
// the sets its rules need, before any of it is registered.
type plan struct {
	key     policyKey
	subject selector.Selector
	// tier is the tier the object's rule lists belong to.
	tier     ir.TierKind
	priority int32
	// dirs holds a rule list for each direction the object isolates.
	dirs map[ir.Direction][]planRule
	err  *ValidationError
	// logAllowed is the object's LogAllowedAnnotation.
	logAllowed bool
}

type planRule struct {
	index    int
	name     string
	action   ir.Action
	allPeers bool
	peers    []peer
	allPorts bool
	ports    []planPort
}

// planPort is an ir.PortMatch whose named port is not yet a set.
type planPort struct {
	match ir.PortMatch
	named string
}

// policyState is a registered policy object.
type policyState struct {
	plan
	subjectID selector.ID
	lists     map[ir.Direction]string
	addrSets  []*addrSet
	portSets  []*portSet
}

func listID(k policyKey, dir ir.Direction) string {
	prefix := "np"
	switch k.kind {
	case kindNetworkPolicy:
	default:
		prefix = strings.ToLower(k.kind)
	}
	if k.namespace == "" {
		return fmt.Sprintf("%s:%s:%s", prefix, k.name, strings.ToLower(string(dir)))
	}
	return fmt.Sprintf("%s:%s/%s:%s", prefix, k.namespace, k.name, strings.ToLower(string(dir)))
}

// nsScope selects the pods of one namespace.
func nsScope(namespace string) selector.Selector {
	return selector.Equal(nsNameKey, namespace)
}

// compileNetworkPolicy validates np and compiles it. When np is invalid, the
// plan keeps its isolation and drops every rule.
func compileNetworkPolicy(np *networkingv1.NetworkPolicy) plan {
	key := policyKey{kind: kindNetworkPolicy, namespace: np.Namespace, name: np.Name}
	p := plan{key: key, tier: ir.TierNetworkPolicy, dirs: map[ir.Direction][]planRule{}}
	spec := field.NewPath("spec")
	var errs field.ErrorList

	podSel, serrs := selector.Compile(&np.Spec.PodSelector, spec.Child("podSelector"))
	errs = append(errs, serrs...)
	if len(serrs) > 0 {
		// An invalid pod selector selects every pod of the namespace: the
		// safe reading isolates more, never less.
		podSel = selector.Everything()
	}
	p.subject = nsScope(np.Namespace).And(podSel)

	ingress, egress, terrs := policyTypes(np, spec.Child("policyTypes"))
	errs = append(errs, terrs...)

	rules := map[ir.Direction][]planRule{}
	for i, r := range np.Spec.Ingress {
		path := spec.Child("ingress").Index(i)
		pr, rerrs := compileRule(np.Namespace, i, r.From, r.Ports, path.Child("from"), path.Child("ports"))
		errs = append(errs, rerrs...)
		rules[ir.Ingress] = append(rules[ir.Ingress], pr)
	}
	for i, r := range np.Spec.Egress {
		path := spec.Child("egress").Index(i)
		pr, rerrs := compileRule(np.Namespace, i, r.To, r.Ports, path.Child("to"), path.Child("ports"))
		errs = append(errs, rerrs...)
		rules[ir.Egress] = append(rules[ir.Egress], pr)
	}
	if len(errs) > 0 {
		p.err = &ValidationError{Kind: kindNetworkPolicy, Namespace: np.Namespace, Name: np.Name, Errs: errs}
		rules = nil // isolate, allow nothing
	}
	if ingress {
		p.dirs[ir.Ingress] = rules[ir.Ingress]
	}
	if egress {
		p.dirs[ir.Egress] = rules[ir.Egress]
	}
	return p
}

// policyTypes returns the directions np isolates. Unknown types are errors
// and make the policy isolate both directions.
func policyTypes(np *networkingv1.NetworkPolicy, path *field.Path) (ingress, egress bool, errs field.ErrorList) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0, nil
	}
	if len(np.Spec.PolicyTypes) > 2 {
		return true, true, field.ErrorList{field.Invalid(path, np.Spec.PolicyTypes, "may not specify more than two policyTypes")}
	}
	for i, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		default:
			errs = append(errs, field.NotSupported(path.Index(i), t, []string{string(networkingv1.PolicyTypeIngress), string(networkingv1.PolicyTypeEgress)}))
		}
	}
	if len(errs) > 0 {
		return true, true, errs
	}
	return ingress, egress, nil
}

func compileRule(namespace string, index int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, peersPath, portsPath *field.Path) (planRule, field.ErrorList) {
	r := planRule{index: index, action: ir.Allow, allPeers: len(peers) == 0, allPorts: len(ports) == 0}
	var errs field.ErrorList
	for i, pe := range peers {
		p, perrs := compilePeer(namespace, pe, peersPath.Index(i))
		errs = append(errs, perrs...)
		if len(perrs) == 0 {
			r.peers = append(r.peers, p)
		}
	}
	for i, po := range ports {
		pp, perrs := compilePort(po, portsPath.Index(i))
		errs = append(errs, perrs...)
		if len(perrs) == 0 {
			r.ports = append(r.ports, pp)
		}
	}
	return r, errs
}

func compilePeer(namespace string, pe networkingv1.NetworkPolicyPeer, path *field.Path) (peer, field.ErrorList) {
	var errs field.ErrorList
	selectors := pe.PodSelector != nil || pe.NamespaceSelector != nil
	switch {
	case pe.IPBlock != nil && selectors:
		errs = append(errs, field.Forbidden(path, "may not specify both ipBlock and another peer"))
	case pe.IPBlock == nil && !selectors:
		errs = append(errs, field.Required(path, "must specify a peer"))
	}
	if len(errs) > 0 {
		return peer{}, errs
	}
	if pe.IPBlock != nil {
		return compileIPBlock(pe.IPBlock, path.Child("ipBlock"))
	}
	podSel := selector.Everything()
	if pe.PodSelector != nil {
		var perrs field.ErrorList
		podSel, perrs = selector.Compile(pe.PodSelector, path.Child("podSelector"))
		errs = append(errs, perrs...)
	}
	scope := nsScope(namespace)
	if pe.NamespaceSelector != nil {
		nsSel, nerrs := selector.Compile(pe.NamespaceSelector, path.Child("namespaceSelector"))
		errs = append(errs, nerrs...)
		scope = nsSel.WithKeyPrefix(nsLabelPrefix)
	}
	if len(errs) > 0 {
		return peer{}, errs
	}
	return podPeer(scope.And(podSel)), nil
}

func compileIPBlock(b *networkingv1.IPBlock, path *field.Path) (peer, field.ErrorList) {
	var errs field.ErrorList
	cidr, err := parseCIDR(b.CIDR)
	if err != nil {
		return peer{}, field.ErrorList{field.Invalid(path.Child("cidr"), b.CIDR, err.Error())}
	}
	excepts := make([]netip.Prefix, 0, len(b.Except))
	for i, s := range b.Except {
		ex, err := parseCIDR(s)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(path.Child("except").Index(i), s, err.Error()))
		case ex.Addr().Is4() != cidr.Addr().Is4() || !cidr.Contains(ex.Addr()) || ex.Bits() <= cidr.Bits():
			errs = append(errs, field.Invalid(path.Child("except").Index(i), s, "must be a strict subset of `cidr`"))
		default:
			excepts = append(excepts, ex)
		}
	}
	if len(errs) > 0 {
		return peer{}, errs
	}
	return blockPeer(cidr, excepts), nil
}

// parseCIDR parses an IPv4 or IPv6 CIDR and masks it. It accepts what the
// API server accepts in ipBlock (validation.IsValidCIDRForLegacyField
// without strict validation, as for objects stored before it was strict):
// leading zeros in the address or the length are read as decimal.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if errs := validation.IsValidCIDRForLegacyField(nil, s, false, nil); len(errs) > 0 {
			return netip.Prefix{}, fmt.Errorf("%s", errs[0].Detail)
		}
		_, ipnet, err := netutils.ParseCIDRSloppy(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("must be a valid CIDR (e.g. 10.0.0.0/8 or fd00::/8)")
		}
		a, _ := netip.AddrFromSlice(ipnet.IP)
		ones, _ := ipnet.Mask.Size()
		p = netip.PrefixFrom(a.Unmap(), ones)
		if !p.IsValid() {
			return netip.Prefix{}, fmt.Errorf("must be a valid CIDR (e.g. 10.0.0.0/8 or fd00::/8)")
		}
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("must not have a zone")
	}
	if p.Addr().Is4In6() {
		// An IPv4-mapped prefix would never match an IPv4 packet; read it
		// as the IPv4 prefix it names.
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("an IPv4-mapped prefix must be at least /96")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	return p.Masked(), nil
}

var protocols = []string{"TCP", "UDP", "SCTP"}

func compilePort(po networkingv1.NetworkPolicyPort, path *field.Path) (planPort, field.ErrorList) {
	var errs field.ErrorList
	proto := ir.TCP
	if po.Protocol != nil {
		var ok bool
		if proto, ok = ir.ParseProtocol(string(*po.Protocol)); !ok {
			errs = append(errs, field.NotSupported(path.Child("protocol"), *po.Protocol, protocols))
		}
	}
	pp := planPort{match: ir.PortMatch{Protocol: proto}}
	switch {
	case po.Port == nil:
		if po.EndPort != nil {
			errs = append(errs, field.Invalid(path.Child("endPort"), *po.EndPort, "may not be specified when `port` is not specified"))
		}
	case po.Port.Type == intstr.Int:
		port := po.Port.IntVal
		if port < 1 || port > 65535 {
			errs = append(errs, field.Invalid(path.Child("port"), port, "must be between 1 and 65535, inclusive"))
			break
		}
		end := port
		if po.EndPort != nil {
			end = *po.EndPort
			switch {
			case end < 1 || end > 65535:
				errs = append(errs, field.Invalid(path.Child("endPort"), end, "must be between 1 and 65535, inclusive"))
			case end < port:
				errs = append(errs, field.Invalid(path.Child("endPort"), end, "must be greater than or equal to `port`"))
			}
		}
		pp.match.Port, pp.match.EndPort = uint16(port), uint16(end)
	default:
		name := po.Port.StrVal
		for _, msg := range validation.IsValidPortName(name) {
			errs = append(errs, field.Invalid(path.Child("port"), name, msg))
		}
		if po.EndPort != nil {
			errs = append(errs, field.Invalid(path.Child("endPort"), *po.EndPort, "may not be specified when `port` is non-numeric"))
		}
		pp.named = name
	}
	return pp, errs
}

func (e *engine) upsertNetworkPolicy(np *networkingv1.NetworkPolicy) error {
	if np == nil {
		return nil
	}
	p := compileNetworkPolicy(np)
	p.logAllowed = logAllowed(np.Annotations)
	e.upsertPlan(p)
	if p.err != nil {
		return p.err
	}
	return nil
}

// upsertPlan registers a compiled policy, replacing the one with its key.
// New resources are taken before the old ones are released, so sets shared
// by both stay in place.
func (e *engine) upsertPlan(p plan) {
	old := e.policies[p.key]
	st := &policyState{plan: p, lists: make(map[ir.Direction]string)}

	id, _ := e.idx.Add(p.subject)
	st.subjectID = id
	e.usersOf(id).policies[st] = struct{}{}

	for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
		rules, ok := p.dirs[dir]
		if !ok {
			continue
		}
		rl := &ir.RuleList{
			ID:         listID(p.key, dir),
			Origin:     ir.Origin{Kind: p.key.kind, Namespace: p.key.namespace, Name: p.key.name},
			Direction:  dir,
			Priority:   p.priority,
			LogAllowed: e.listLogsAllowed(p.key, p.logAllowed),
		}
		for _, r := range rules {
			rl.Rules = append(rl.Rules, e.acquireRule(st, r))
		}
		st.lists[dir] = rl.ID
		e.setList(rl)
	}
	e.policies[p.key] = st

	if old != nil {
		for dir, id := range old.lists {
			if _, ok := st.lists[dir]; !ok {
				e.removeList(id)
			}
		}
		if old.subjectID != st.subjectID || !maps2Equal(old.lists, st.lists) || old.tier != st.tier || old.priority != st.priority {
			e.dirtySubject(old.subjectID)
			e.dirtySubject(st.subjectID)
		}
		e.releasePolicy(old)
	} else {
		e.dirtySubject(st.subjectID)
	}
}

func maps2Equal(a, b map[ir.Direction]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// acquireRule turns a planned rule into an IR rule, taking references on the
// sets it uses.
func (e *engine) acquireRule(st *policyState, r planRule) ir.Rule {
	out := ir.Rule{Index: r.index, Name: r.name, Action: r.action, AllPeers: r.allPeers, AllPorts: r.allPorts}
	for _, pe := range r.peers {
		set := e.acquireAddrSet(pe)
		st.addrSets = append(st.addrSets, set)
		out.Peers = append(out.Peers, set.id)
	}
	slices.Sort(out.Peers)
	out.Peers = slices.Compact(out.Peers)
	for _, pp := range r.ports {
		m := pp.match
		if pp.named != "" {
			set := e.acquirePortSet(namedPort{proto: m.Protocol, name: pp.named})
			st.portSets = append(st.portSets, set)
			m.NamedSet = set.id
		}
		if !slices.Contains(out.Ports, m) {
			out.Ports = append(out.Ports, m)
		}
	}
	return out
}

// releasePolicy drops everything a registered policy holds. Its rule lists
// are left to the caller.
func (e *engine) releasePolicy(st *policyState) {
	for _, s := range st.addrSets {
		e.releaseAddrSet(s)
	}
	for _, s := range st.portSets {
		e.releasePortSet(s)
	}
	delete(e.usersOf(st.subjectID).policies, st)
	e.releaseSelector(st.subjectID)
}

func (e *engine) deletePolicy(key policyKey) {
	st := e.policies[key]
	if st == nil {
		return
	}
	delete(e.policies, key)
	for _, id := range st.lists {
		e.removeList(id)
	}
	e.dirtySubject(st.subjectID)
	e.releasePolicy(st)
}

// setList records the current form of a rule list.
func (e *engine) setList(rl *ir.RuleList) {
	e.lists[rl.ID] = rl
	e.changedLists[rl.ID] = struct{}{}
}

func (e *engine) removeList(id string) {
	delete(e.lists, id)
	e.changedLists[id] = struct{}{}
}

// dirtySubject marks every local pod a subject selector matches.
func (e *engine) dirtySubject(id selector.ID) {
	for key := range e.idx.Matches(id) {
		if p := e.pods[key]; p != nil && p.local {
			e.dirtyPods[key] = struct{}{}
		}
	}
}
