package policy

import (
	"math"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/selector"
)

// Cluster-wide policies: AdminNetworkPolicy and BaselineAdminNetworkPolicy
// (policy.networking.k8s.io/v1alpha1) and ClusterNetworkPolicy (v1beta1).
//
// Each object becomes one rule list per direction it has rules for, in the
// Admin tier (ANP, CNP with tier Admin) or the Baseline tier (CNP with tier
// Baseline, BANP). Within a tier, lists are evaluated by priority (lower
// first); at equal priority an AdminNetworkPolicy comes before a
// ClusterNetworkPolicy, and objects of one kind go by name (see
// comparePolicies). The BaselineAdminNetworkPolicy comes after every
// Baseline-tier ClusterNetworkPolicy.
//
// Bad input never opens traffic. Following the API's own guidance for rules
// it cannot understand:
//   - an invalid rule whose action is Allow/Accept matches nothing (the rule
//     stays in its list, with no peer, so that it is still traceable);
//   - an invalid rule whose action is Deny or Pass, or whose action is
//     unknown, denies everything at its position (all peers, all ports);
//     the rules after it are never reached.
//
// An error at the level of the object (its subject, priority, tier, or a
// BaselineAdminNetworkPolicy not named "default") leaves no rule to trust
// with allowing: the policy then only denies. Its subject reads every
// invalid selector as selecting everything (both or neither of namespaces
// and pods: every pod), its Allow/Accept rules match nothing, its Pass rules
// deny what they match, and an invalid priority puts it first in its tier
// (an unknown tier is read as Admin). A denial can only narrow access; it
// never lets a later Allow, NetworkPolicy or default allow through what the
// policy meant to deny or hand on.
//
// A `domainNames` peer is valid but not supported: it is reported and
// matches nothing. It is only valid in Allow/Accept rules; in a Deny or Pass
// rule it makes the rule invalid (deny everything).

// Kinds of the cluster-wide policies, as in their IR origins.
const (
	kindAdminNetworkPolicy         = "AdminNetworkPolicy"
	kindBaselineAdminNetworkPolicy = "BaselineAdminNetworkPolicy"
	kindClusterNetworkPolicy       = "ClusterNetworkPolicy"
)

// Limits of the API's schemas.
const (
	maxPriority  = 1000
	maxANPRules  = 100 // rules per direction, peers per rule, ports per rule
	maxCNPRules  = 25  // rules per direction, peers per rule, protocols per rule
	maxNetworks  = 25  // CIDRs per networks peer, names per domainNames peer
	maxRuleName  = 100
	banpName     = "default"
	banpPriority = math.MaxInt32 // after every Baseline-tier CNP
	// invalidPriority puts a policy with an invalid priority (or tier)
	// before every valid one of its tier.
	invalidPriority = math.MinInt32
)

// clusterPolicy is the kind-neutral form of a cluster-wide policy, with the
// errors its conversion found.
type clusterPolicy struct {
	key      policyKey
	tier     ir.TierKind
	priority int32
	subject  clusterSubject
	ingress  []clusterRule
	egress   []clusterRule
	// maxRules bounds the rules per direction, peers per rule and ports per
	// rule.
	maxRules int
	// errs are errors of the object as a whole (priority, tier, name).
	errs field.ErrorList
}

type clusterSubject struct {
	namespaces *metav1.LabelSelector
	pods       *namespacedPod
}

type namespacedPod struct {
	namespaces, pods metav1.LabelSelector
}

type clusterRule struct {
	path   *field.Path
	name   string
	action string
	// pass says Pass is a valid action; allowName is the kind's name for
	// Allow ("Allow" or "Accept").
	pass      bool
	allowName string
	peers     []clusterPeer
	peersPath *field.Path
	// ports are the compiled ports (nil with allPorts); portErrs their
	// errors; named says some port is a named port.
	allPorts bool
	ports    []planPort
	portErrs field.ErrorList
	named    bool
}

type clusterPeer struct {
	namespaces  *metav1.LabelSelector
	pods        *namespacedPod
	nodes       *metav1.LabelSelector
	networks    []string
	domainNames []string
}

func (e *engine) upsertAdminNetworkPolicy(anp *v1alpha1.AdminNetworkPolicy) error {
	if anp == nil {
		return nil
	}
	p := compileClusterPolicy(fromANP(anp))
	p.logAllowed = logAllowed(anp.Annotations)
	return e.upsertClusterPlan(p)
}

func (e *engine) upsertBaselineAdminNetworkPolicy(banp *v1alpha1.BaselineAdminNetworkPolicy) error {
	if banp == nil {
		return nil
	}
	p := compileClusterPolicy(fromBANP(banp))
	p.logAllowed = logAllowed(banp.Annotations)
	return e.upsertClusterPlan(p)
}

func (e *engine) upsertClusterNetworkPolicy(cnp *v1beta1.ClusterNetworkPolicy) error {
	if cnp == nil {
		return nil
	}
	p := compileClusterPolicy(fromCNP(cnp))
	p.logAllowed = logAllowed(cnp.Annotations)
	return e.upsertClusterPlan(p)
}

func (e *engine) upsertClusterPlan(p plan) error {
	e.upsertPlan(p)
	if p.err != nil {
		return p.err
	}
	return nil
}

func fromANP(anp *v1alpha1.AdminNetworkPolicy) clusterPolicy {
	spec := field.NewPath("spec")
	c := clusterPolicy{
		key:      policyKey{kind: kindAdminNetworkPolicy, name: anp.Name},
		tier:     ir.TierAdmin,
		priority: anp.Spec.Priority,
		subject:  anpSubject(anp.Spec.Subject),
		maxRules: maxANPRules,
	}
	c.errs = append(c.errs, checkPriority(anp.Spec.Priority, spec.Child("priority"))...)
	for i, r := range anp.Spec.Ingress {
		c.ingress = append(c.ingress, anpRule(spec.Child("ingress").Index(i), "from", r.Name, string(r.Action), true, anpIngressPeers(r.From), r.Ports))
	}
	for i, r := range anp.Spec.Egress {
		var peers []clusterPeer
		for _, pe := range r.To {
			peers = append(peers, clusterPeer{namespaces: pe.Namespaces, pods: anpPods(pe.Pods), nodes: pe.Nodes,
				networks: cidrStrings(pe.Networks), domainNames: cidrStrings(pe.DomainNames)})
		}
		c.egress = append(c.egress, anpRule(spec.Child("egress").Index(i), "to", r.Name, string(r.Action), true, peers, r.Ports))
	}
	return c
}

func fromBANP(banp *v1alpha1.BaselineAdminNetworkPolicy) clusterPolicy {
	spec := field.NewPath("spec")
	c := clusterPolicy{
		key:      policyKey{kind: kindBaselineAdminNetworkPolicy, name: banp.Name},
		tier:     ir.TierBaseline,
		priority: banpPriority,
		subject:  anpSubject(banp.Spec.Subject),
		maxRules: maxANPRules,
	}
	if banp.Name != banpName {
		c.errs = append(c.errs, field.Invalid(field.NewPath("metadata", "name"), banp.Name, `must be "default": a cluster has one BaselineAdminNetworkPolicy`))
	}
	for i, r := range banp.Spec.Ingress {
		c.ingress = append(c.ingress, anpRule(spec.Child("ingress").Index(i), "from", r.Name, string(r.Action), false, anpIngressPeers(r.From), r.Ports))
	}
	for i, r := range banp.Spec.Egress {
		var peers []clusterPeer
		for _, pe := range r.To {
			peers = append(peers, clusterPeer{namespaces: pe.Namespaces, pods: anpPods(pe.Pods), nodes: pe.Nodes, networks: cidrStrings(pe.Networks)})
		}
		c.egress = append(c.egress, anpRule(spec.Child("egress").Index(i), "to", r.Name, string(r.Action), false, peers, r.Ports))
	}
	return c
}

// anpRule is a rule of an AdminNetworkPolicy or BaselineAdminNetworkPolicy
// (pass says whether Pass is a valid action) at path, its peers under
// peersField.
func anpRule(path *field.Path, peersField, name, action string, pass bool, peers []clusterPeer, ports *[]v1alpha1.AdminNetworkPolicyPort) clusterRule {
	cr := clusterRule{path: path, name: name, action: action, pass: pass, allowName: "Allow", peersPath: path.Child(peersField), peers: peers}
	cr.allPorts, cr.ports, cr.named, cr.portErrs = compileANPPorts(ports, maxANPRules, path.Child("ports"))
	return cr
}

func anpIngressPeers(in []v1alpha1.AdminNetworkPolicyIngressPeer) []clusterPeer {
	var out []clusterPeer
	for _, pe := range in {
		out = append(out, clusterPeer{namespaces: pe.Namespaces, pods: anpPods(pe.Pods)})
	}
	return out
}

func fromCNP(cnp *v1beta1.ClusterNetworkPolicy) clusterPolicy {
	spec := field.NewPath("spec")
	c := clusterPolicy{
		key:      policyKey{kind: kindClusterNetworkPolicy, name: cnp.Name},
		priority: cnp.Spec.Priority,
		maxRules: maxCNPRules,
	}
	switch cnp.Spec.Tier {
	case v1beta1.AdminTier:
		c.tier = ir.TierAdmin
	case v1beta1.BaselineTier:
		c.tier = ir.TierBaseline
	default:
		c.tier = ir.TierAdmin
		c.errs = append(c.errs, field.NotSupported(spec.Child("tier"), cnp.Spec.Tier, []string{string(v1beta1.AdminTier), string(v1beta1.BaselineTier)}))
	}
	c.errs = append(c.errs, checkPriority(cnp.Spec.Priority, spec.Child("priority"))...)
	c.subject = clusterSubject{namespaces: cnp.Spec.Subject.Namespaces, pods: cnpPods(cnp.Spec.Subject.Pods)}
	for i, r := range cnp.Spec.Ingress {
		path := spec.Child("ingress").Index(i)
		cr := clusterRule{path: path, name: r.Name, action: string(r.Action), pass: true, allowName: "Accept", peersPath: path.Child("from")}
		for _, pe := range r.From {
			cr.peers = append(cr.peers, clusterPeer{namespaces: pe.Namespaces, pods: cnpPods(pe.Pods)})
		}
		cr.allPorts, cr.ports, cr.named, cr.portErrs = compileCNPProtocols(r.Protocols, path.Child("protocols"))
		c.ingress = append(c.ingress, cr)
	}
	for i, r := range cnp.Spec.Egress {
		path := spec.Child("egress").Index(i)
		cr := clusterRule{path: path, name: r.Name, action: string(r.Action), pass: true, allowName: "Accept", peersPath: path.Child("to")}
		for _, pe := range r.To {
			cr.peers = append(cr.peers, clusterPeer{namespaces: pe.Namespaces, pods: cnpPods(pe.Pods), nodes: pe.Nodes,
				networks: cidrStrings(pe.Networks), domainNames: cidrStrings(pe.DomainNames)})
		}
		cr.allPorts, cr.ports, cr.named, cr.portErrs = compileCNPProtocols(r.Protocols, path.Child("protocols"))
		c.egress = append(c.egress, cr)
	}
	return c
}

func anpSubject(s v1alpha1.AdminNetworkPolicySubject) clusterSubject {
	return clusterSubject{namespaces: s.Namespaces, pods: anpPods(s.Pods)}
}

func anpPods(p *v1alpha1.NamespacedPod) *namespacedPod {
	if p == nil {
		return nil
	}
	return &namespacedPod{namespaces: p.NamespaceSelector, pods: p.PodSelector}
}

func cnpPods(p *v1beta1.NamespacedPod) *namespacedPod {
	if p == nil {
		return nil
	}
	return &namespacedPod{namespaces: p.NamespaceSelector, pods: p.PodSelector}
}

// cidrStrings converts CIDRs or domain names to strings; nil stays nil (a
// field absent), empty stays empty (a field present without items).
func cidrStrings[S ~string](in []S) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

func checkPriority(p int32, path *field.Path) field.ErrorList {
	if p < 0 || p > maxPriority {
		return field.ErrorList{field.Invalid(path, p, "must be between 0 and 1000, inclusive")}
	}
	return nil
}

// compileClusterPolicy validates a cluster policy and compiles it into a plan
// that fails closed (see the top of this file).
func compileClusterPolicy(c clusterPolicy) plan {
	p := plan{key: c.key, tier: c.tier, priority: c.priority, dirs: map[ir.Direction][]planRule{}}
	spec := field.NewPath("spec")
	errs := c.errs
	var notes field.ErrorList // unsupported, but not invalid

	subject, serrs := compileSubject(c.subject, spec.Child("subject"))
	errs = append(errs, serrs...)
	p.subject = subject

	for _, d := range []struct {
		dir   ir.Direction
		rules []clusterRule
		field string
	}{{ir.Ingress, c.ingress, "ingress"}, {ir.Egress, c.egress, "egress"}} {
		if len(d.rules) == 0 {
			continue
		}
		if len(d.rules) > c.maxRules {
			// Every rule past the limit is invalid (compileClusterRule).
			errs = append(errs, field.TooMany(spec.Child(d.field), len(d.rules), c.maxRules))
		}
		var out []planRule
		for i, r := range d.rules {
			pr, rerrs, rnotes := compileClusterRule(i, r, c.maxRules)
			errs = append(errs, rerrs...)
			notes = append(notes, rnotes...)
			out = append(out, pr)
			if pr.action == ir.Deny && pr.allPeers && pr.allPorts {
				break // nothing after a deny-all is reached
			}
		}
		p.dirs[d.dir] = out
	}

	objectInvalid := len(c.errs)+len(serrs) > 0
	if objectInvalid {
		if hasFieldError(c.errs, "spec.priority") || hasFieldError(c.errs, "spec.tier") {
			p.priority = invalidPriority
		}
		for dir, rules := range p.dirs {
			p.dirs[dir] = denyOnly(rules)
		}
	}
	if all := append(errs, notes...); len(all) > 0 {
		p.err = &ValidationError{Kind: c.key.kind, Name: c.key.name, Errs: all}
	}
	return p
}

func hasFieldError(errs field.ErrorList, path string) bool {
	for _, e := range errs {
		if e.Field == path {
			return true
		}
	}
	return false
}

// denyOnly keeps what rules deny: Allow rules match nothing, Pass rules deny
// what they match.
func denyOnly(rules []planRule) []planRule {
	out := make([]planRule, len(rules))
	for i, r := range rules {
		switch r.action {
		case ir.Allow:
			r = matchNothing(r)
		case ir.Pass:
			r.action = ir.Deny
		}
		out[i] = r
	}
	return out
}

func matchNothing(r planRule) planRule {
	return planRule{index: r.index, name: r.name, action: r.action}
}

func denyAll(r planRule) planRule {
	return planRule{index: r.index, name: r.name, action: ir.Deny, allPeers: true, allPorts: true}
}

// compileSubject compiles a subject. An invalid subject reads every invalid
// selector as Everything (and a subject with both or neither of namespaces
// and pods as every pod): the caller then keeps only the policy's denials.
func compileSubject(s clusterSubject, path *field.Path) (selector.Selector, field.ErrorList) {
	switch {
	case s.namespaces != nil && s.pods != nil:
		return selector.Everything(), field.ErrorList{field.Forbidden(path, "must specify exactly one of namespaces and pods")}
	case s.namespaces == nil && s.pods == nil:
		return selector.Everything(), field.ErrorList{field.Required(path, "must specify one of namespaces and pods")}
	case s.namespaces != nil:
		sel, errs := selector.Compile(s.namespaces, path.Child("namespaces"))
		if len(errs) > 0 {
			return selector.Everything(), errs
		}
		return sel.WithKeyPrefix(nsLabelPrefix), nil
	}
	nsSel, errs := selector.Compile(&s.pods.namespaces, path.Child("pods", "namespaceSelector"))
	if len(errs) > 0 {
		nsSel = selector.Everything()
	}
	podSel, perrs := selector.Compile(&s.pods.pods, path.Child("pods", "podSelector"))
	if len(perrs) > 0 {
		podSel = selector.Everything()
	}
	return nsSel.WithKeyPrefix(nsLabelPrefix).And(podSel), append(errs, perrs...)
}

// compileClusterRule compiles the rule at index i. An invalid rule fails
// closed: Allow matches nothing, anything else denies everything. notes are
// unsupported fields that do not make the rule invalid.
func compileClusterRule(i int, r clusterRule, maxRules int) (pr planRule, errs, notes field.ErrorList) {
	pr = planRule{index: i, name: r.name, allPorts: r.allPorts, ports: r.ports}
	switch r.action {
	case r.allowName:
		pr.action = ir.Allow
	case "Deny":
		pr.action = ir.Deny
	case "Pass":
		pr.action = ir.Pass
	}
	valid := []string{r.allowName, "Deny"}
	if r.pass {
		valid = append(valid, "Pass")
	}
	if pr.action == "" || pr.action == ir.Pass && !r.pass {
		errs = append(errs, field.NotSupported(r.path.Child("action"), r.action, valid))
	}
	if i >= maxRules {
		errs = append(errs, field.Forbidden(r.path, "beyond the maximum number of rules"))
	}
	if len(r.name) > maxRuleName {
		errs = append(errs, field.TooLong(r.path.Child("name"), r.name, maxRuleName))
	}
	switch {
	case len(r.peers) == 0:
		errs = append(errs, field.Required(r.peersPath, "must have at least one peer"))
	case len(r.peers) > maxRules:
		errs = append(errs, field.TooMany(r.peersPath, len(r.peers), maxRules))
	}
	errs = append(errs, r.portErrs...)
	outside := false // a peer that is no pod: named ports cannot apply
	for j, pe := range r.peers {
		path := r.peersPath.Index(j)
		peers, perrs, pnotes := compileClusterPeer(pe, path)
		errs = append(errs, perrs...)
		notes = append(notes, pnotes...)
		if pe.nodes != nil || pe.networks != nil || pe.domainNames != nil {
			outside = true
		}
		if pe.domainNames != nil && pr.action != ir.Allow {
			errs = append(errs, field.Forbidden(path.Child("domainNames"), "is only allowed in rules whose action is "+r.allowName))
		}
		pr.peers = append(pr.peers, peers...)
	}
	if outside && r.named {
		errs = append(errs, field.Forbidden(r.path, "named ports cannot be used with networks, nodes or domainNames peers"))
	}
	switch {
	case len(errs) == 0:
		return pr, nil, notes
	case pr.action == ir.Allow:
		return matchNothing(pr), errs, notes
	default:
		return denyAll(pr), errs, notes
	}
}

// compileClusterPeer compiles one peer into the address sets it stands for
// (none for domainNames, which are not supported).
func compileClusterPeer(pe clusterPeer, path *field.Path) (out []peer, errs, notes field.ErrorList) {
	set := 0
	for _, present := range []bool{pe.namespaces != nil, pe.pods != nil, pe.nodes != nil, pe.networks != nil, pe.domainNames != nil} {
		if present {
			set++
		}
	}
	if set != 1 {
		return nil, field.ErrorList{field.Invalid(path, set, "must specify exactly one of namespaces, pods, nodes, networks, domainNames")}, nil
	}
	switch {
	case pe.namespaces != nil:
		sel, errs := selector.Compile(pe.namespaces, path.Child("namespaces"))
		return []peer{podPeer(sel.WithKeyPrefix(nsLabelPrefix))}, errs, nil
	case pe.pods != nil:
		nsSel, errs := selector.Compile(&pe.pods.namespaces, path.Child("pods", "namespaceSelector"))
		podSel, perrs := selector.Compile(&pe.pods.pods, path.Child("pods", "podSelector"))
		return []peer{podPeer(nsSel.WithKeyPrefix(nsLabelPrefix).And(podSel))}, append(errs, perrs...), nil
	case pe.nodes != nil:
		sel, errs := selector.Compile(pe.nodes, path.Child("nodes"))
		return []peer{nodePeer(sel)}, errs, nil
	case pe.networks != nil:
		npath := path.Child("networks")
		switch {
		case len(pe.networks) == 0:
			errs = append(errs, field.Required(npath, "must have at least one CIDR"))
		case len(pe.networks) > maxNetworks:
			errs = append(errs, field.TooMany(npath, len(pe.networks), maxNetworks))
		}
		for k, s := range pe.networks {
			pfx, err := parseCIDR(s)
			switch {
			case err != nil:
				errs = append(errs, field.Invalid(npath.Index(k), s, err.Error()))
			case !isMaskedCIDR(s, pfx):
				errs = append(errs, field.Invalid(npath.Index(k), s, "must have no bits set past the prefix length (e.g. "+pfx.String()+")"))
			default:
				out = append(out, blockPeer(pfx, nil))
			}
		}
		return out, errs, nil
	}
	dpath := path.Child("domainNames")
	switch {
	case len(pe.domainNames) == 0:
		errs = append(errs, field.Required(dpath, "must have at least one domain name"))
	case len(pe.domainNames) > maxNetworks:
		errs = append(errs, field.TooMany(dpath, len(pe.domainNames), maxNetworks))
	}
	notes = append(notes, &field.Error{Type: field.ErrorTypeNotSupported, Field: dpath.String(), BadValue: pe.domainNames,
		Detail: "domainNames peers are not supported: they match nothing"})
	return nil, errs, notes
}

// isMaskedCIDR reports whether s, which parsed as pfx, has no host bits set,
// as the API requires of networks.
func isMaskedCIDR(s string, pfx netip.Prefix) bool {
	raw, err := netip.ParsePrefix(s)
	if err != nil {
		return false
	}
	return raw.Masked() == raw && pfx.IsValid()
}

// compileANPPorts compiles the ports of an AdminNetworkPolicy or
// BaselineAdminNetworkPolicy rule. nil ports match every port.
func compileANPPorts(ports *[]v1alpha1.AdminNetworkPolicyPort, max int, path *field.Path) (all bool, out []planPort, named bool, errs field.ErrorList) {
	if ports == nil {
		return true, nil, false, nil
	}
	switch {
	case len(*ports) == 0:
		errs = append(errs, field.Required(path, "must have at least one port when present"))
	case len(*ports) > max:
		errs = append(errs, field.TooMany(path, len(*ports), max))
	}
	for i, po := range *ports {
		ppath := path.Index(i)
		n := 0
		for _, present := range []bool{po.PortNumber != nil, po.NamedPort != nil, po.PortRange != nil} {
			if present {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, field.Invalid(ppath, n, "must specify exactly one of portNumber, namedPort, portRange"))
			continue
		}
		switch {
		case po.PortNumber != nil:
			proto, perrs := protocolOf(po.PortNumber.Protocol, ppath.Child("portNumber", "protocol"))
			errs = append(errs, perrs...)
			errs = append(errs, checkPort(po.PortNumber.Port, ppath.Child("portNumber", "port"))...)
			if len(perrs) == 0 {
				out = append(out, portRange(proto, po.PortNumber.Port, po.PortNumber.Port))
			}
		case po.PortRange != nil:
			proto, perrs := protocolOf(po.PortRange.Protocol, ppath.Child("portRange", "protocol"))
			rerrs := checkRange(po.PortRange.Start, po.PortRange.End, ppath.Child("portRange"))
			errs = append(errs, append(perrs, rerrs...)...)
			if len(perrs)+len(rerrs) == 0 {
				out = append(out, portRange(proto, po.PortRange.Start, po.PortRange.End))
			}
		default:
			named = true
			nerrs := checkPortName(*po.NamedPort, ppath.Child("namedPort"))
			errs = append(errs, nerrs...)
			if len(nerrs) == 0 {
				out = append(out, namedPorts(*po.NamedPort)...)
			}
		}
	}
	return false, out, named, errs
}

// compileCNPProtocols compiles the protocols of a ClusterNetworkPolicy rule.
// nil protocols match every protocol and port.
func compileCNPProtocols(protos []v1beta1.ClusterNetworkPolicyProtocol, path *field.Path) (all bool, out []planPort, named bool, errs field.ErrorList) {
	if protos == nil {
		return true, nil, false, nil
	}
	switch {
	case len(protos) == 0:
		errs = append(errs, field.Required(path, "must have at least one protocol when present"))
	case len(protos) > maxCNPRules:
		errs = append(errs, field.TooMany(path, len(protos), maxCNPRules))
	}
	for i, pr := range protos {
		ppath := path.Index(i)
		type one struct {
			proto ir.Protocol
			name  string
			port  *v1beta1.Port
			set   bool
		}
		cands := []one{
			{ir.TCP, "tcp", portOf(pr.TCP), pr.TCP != nil},
			{ir.UDP, "udp", portOfUDP(pr.UDP), pr.UDP != nil},
			{ir.SCTP, "sctp", portOfSCTP(pr.SCTP), pr.SCTP != nil},
		}
		n := 0
		for _, c := range cands {
			if c.set {
				n++
			}
		}
		if pr.DestinationNamedPort != "" {
			n++
		}
		if n != 1 {
			errs = append(errs, field.Invalid(ppath, n, "must specify exactly one of tcp, udp, sctp, destinationNamedPort"))
			continue
		}
		if pr.DestinationNamedPort != "" {
			named = true
			nerrs := checkPortName(pr.DestinationNamedPort, ppath.Child("destinationNamedPort"))
			errs = append(errs, nerrs...)
			if len(nerrs) == 0 {
				out = append(out, namedPorts(pr.DestinationNamedPort)...)
			}
			continue
		}
		for _, c := range cands {
			if !c.set {
				continue
			}
			dpath := ppath.Child(c.name, "destinationPort")
			switch {
			case c.port == nil:
				errs = append(errs, field.Required(dpath, "must be specified"))
			case c.port.Number != 0 && c.port.Range != nil, c.port.Number == 0 && c.port.Range == nil:
				errs = append(errs, field.Invalid(dpath, "", "must specify exactly one of number and range"))
			case c.port.Range != nil:
				rerrs := checkRange(c.port.Range.Start, c.port.Range.End, dpath.Child("range"))
				errs = append(errs, rerrs...)
				if len(rerrs) == 0 {
					out = append(out, portRange(c.proto, c.port.Range.Start, c.port.Range.End))
				}
			default:
				perrs := checkPort(c.port.Number, dpath.Child("number"))
				errs = append(errs, perrs...)
				if len(perrs) == 0 {
					out = append(out, portRange(c.proto, c.port.Number, c.port.Number))
				}
			}
		}
	}
	return false, out, named, errs
}

func portOf(p *v1beta1.ClusterNetworkPolicyProtocolTCP) *v1beta1.Port {
	if p == nil {
		return nil
	}
	return p.DestinationPort
}

func portOfUDP(p *v1beta1.ClusterNetworkPolicyProtocolUDP) *v1beta1.Port {
	if p == nil {
		return nil
	}
	return p.DestinationPort
}

func portOfSCTP(p *v1beta1.ClusterNetworkPolicyProtocolSCTP) *v1beta1.Port {
	if p == nil {
		return nil
	}
	return p.DestinationPort
}

// protocolOf parses an ANP port protocol; empty is TCP, the schema's default.
func protocolOf(p corev1.Protocol, path *field.Path) (ir.Protocol, field.ErrorList) {
	if p == "" {
		return ir.TCP, nil
	}
	proto, ok := ir.ParseProtocol(string(p))
	if !ok {
		return 0, field.ErrorList{field.NotSupported(path, p, protocols)}
	}
	return proto, nil
}

func checkPort(port int32, path *field.Path) field.ErrorList {
	if port < 1 || port > 65535 {
		return field.ErrorList{field.Invalid(path, port, "must be between 1 and 65535, inclusive")}
	}
	return nil
}

func checkRange(start, end int32, path *field.Path) field.ErrorList {
	errs := append(checkPort(start, path.Child("start")), checkPort(end, path.Child("end"))...)
	if len(errs) == 0 && start >= end {
		errs = append(errs, field.Invalid(path.Child("end"), end, "must be greater than start"))
	}
	return errs
}

func checkPortName(name string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortName(name) {
		errs = append(errs, field.Invalid(path, name, msg))
	}
	return errs
}

func portRange(proto ir.Protocol, start, end int32) planPort {
	return planPort{match: ir.PortMatch{Protocol: proto, Port: uint16(start), EndPort: uint16(end)}}
}

// namedPorts matches a container port name of any protocol: the cluster
// policies name ports without a protocol.
func namedPorts(name string) []planPort {
	out := make([]planPort, 0, len(ir.Protocols))
	for _, proto := range ir.Protocols {
		out = append(out, planPort{match: ir.PortMatch{Protocol: proto}, named: name})
	}
	return out
}
