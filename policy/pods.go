package policy

import (
	"cmp"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/selector"
)

const (
	// nsLabelPrefix marks namespace labels copied into a pod's indexed
	// labels. It holds a character no label key may contain, so it never
	// collides with a pod label.
	nsLabelPrefix = "\x00ns/"
	// NamespaceNameLabel is the label every namespace carries with its name.
	NamespaceNameLabel = "kubernetes.io/metadata.name"
	nsNameKey          = nsLabelPrefix + NamespaceNameLabel
)

// namespaceState is a namespace's labels (NamespaceNameLabel included) and its
// pods.
type namespaceState struct {
	name   string
	labels map[string]string
	// indexed are labels under nsLabelPrefix, as every pod of the
	// namespace carries them in the index (built once per label change).
	indexed map[string]string
	// object says whether a Namespace object exists (else labels hold only
	// the name label).
	object bool
	pods   map[string]*podState
	// logAllowed is the Namespace's LogAllowedAnnotation.
	logAllowed bool
}

// namedPort is a container port name and protocol.
type namedPort struct {
	proto ir.Protocol
	name  string
}

// podPorts are a pod's named container ports: one entry per (protocol,
// name, number), sorted and unique. A pod has a few, so a flat slice (one
// allocation per pod) serves better than a map.
type podPorts []podPort

type podPort struct {
	k   namedPort
	num uint16
}

func comparePodPort(a, b podPort) int {
	return cmp.Or(cmp.Compare(a.k.proto, b.k.proto), strings.Compare(a.k.name, b.k.name), cmp.Compare(a.num, b.num))
}

// keys yields each named port once.
func (pp podPorts) keys() iter.Seq[namedPort] {
	return func(yield func(namedPort) bool) {
		for i, e := range pp {
			if i > 0 && pp[i-1].k == e.k {
				continue
			}
			if !yield(e.k) {
				return
			}
		}
	}
}

// nums yields the port numbers named k.
func (pp podPorts) nums(k namedPort) iter.Seq[uint16] {
	return func(yield func(uint16) bool) {
		for _, e := range pp {
			if e.k == k && !yield(e.num) {
				return
			}
		}
	}
}

type podState struct {
	key       string // namespace/name
	namespace string
	labels    map[string]string // the pod's own labels
	// claimed are the addresses the pod reports; ips those of them it owns
	// (an address reported by several pods is one's, see claims.go).
	claimed []netip.Addr
	ips     []netip.Addr
	ports   podPorts
	// candidate pods claim their addresses: they report one, are not
	// hostNetwork and have not finished. deleting and created rank the
	// claims of pods that report the same address.
	candidate bool
	deleting  bool
	created   int64 // Unix nanoseconds
	// onNode: the local-node filter accepts the pod.
	onNode bool
	// active pods are in the index: candidates that own an address.
	active bool
	local  bool
}

func (e *engine) namespace(name string) *namespaceState {
	ns := e.namespaces[name]
	if ns == nil {
		ns = &namespaceState{
			name:   name,
			labels: map[string]string{NamespaceNameLabel: name},
			pods:   make(map[string]*podState),
		}
		e.namespaces[name] = ns
	}
	return ns
}

func (e *engine) upsertNamespace(obj *corev1.Namespace) {
	if obj == nil {
		return
	}
	ns := e.namespace(obj.Name)
	labels := make(map[string]string, len(obj.Labels)+1)
	maps.Copy(labels, obj.Labels)
	labels[NamespaceNameLabel] = obj.Name
	ns.object = true
	e.setNamespaceLabels(ns, labels)
	e.setNamespaceLogAllowed(ns, logAllowed(obj.Annotations))
}

func (e *engine) deleteNamespace(name string) {
	ns := e.namespaces[name]
	if ns == nil || !ns.object {
		return
	}
	ns.object = false
	e.setNamespaceLabels(ns, map[string]string{NamespaceNameLabel: name})
	e.setNamespaceLogAllowed(ns, false)
	e.dropNamespaceIfUnused(ns)
}

func (e *engine) dropNamespaceIfUnused(ns *namespaceState) {
	if !ns.object && len(ns.pods) == 0 {
		delete(e.namespaces, ns.name)
	}
}

func (e *engine) setNamespaceLabels(ns *namespaceState, labels map[string]string) {
	if maps.Equal(ns.labels, labels) {
		return
	}
	ns.labels, ns.indexed = labels, nil
	for _, p := range ns.pods {
		if p.active {
			e.handleChanges(p, e.idx.Upsert(p.key, e.indexLabels(p)))
		}
	}
}

// indexLabels returns the labels the index holds for p: its own and its
// namespace's under nsLabelPrefix.
func (e *engine) indexLabels(p *podState) map[string]string {
	ns := e.namespace(p.namespace)
	if ns.indexed == nil {
		ns.indexed = make(map[string]string, len(ns.labels))
		for k, v := range ns.labels {
			ns.indexed[nsLabelPrefix+k] = v
		}
	}
	out := make(map[string]string, len(p.labels)+len(ns.indexed))
	maps.Copy(out, p.labels)
	maps.Copy(out, ns.indexed)
	return out
}

func (e *engine) isLocal(pod *corev1.Pod) bool {
	switch {
	case e.cfg.IsLocal != nil:
		return e.cfg.IsLocal(pod)
	case e.cfg.NodeName != "":
		return pod.Spec.NodeName == e.cfg.NodeName
	}
	return true
}

// podFromObject extracts what the engine needs from a pod, and the problems
// with its fields.
func (e *engine) podFromObject(pod *corev1.Pod) (*podState, field.ErrorList) {
	p := &podState{
		key:       pod.Namespace + "/" + pod.Name,
		namespace: pod.Namespace,
		labels:    maps.Clone(pod.Labels),
	}
	if p.labels == nil {
		p.labels = map[string]string{}
	}
	var errs field.ErrorList
	addIP := func(s string, path func() *field.Path) {
		if s == "" {
			return
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			errs = append(errs, field.Invalid(path(), s, "must be an IPv4 or IPv6 address"))
			return
		}
		a = a.Unmap()
		if !slices.Contains(p.ips, a) { // a pod has one or two addresses
			p.ips = append(p.ips, a)
		}
	}
	addIP(pod.Status.PodIP, func() *field.Path { return field.NewPath("status", "podIP") })
	for i, pip := range pod.Status.PodIPs {
		addIP(pip.IP, func() *field.Path { return field.NewPath("status", "podIPs").Index(i).Child("ip") })
	}
	slices.SortFunc(p.ips, netip.Addr.Compare)

	named := 0
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name != "" {
				named++
			}
		}
	}
	if named > 0 {
		p.ports = make(podPorts, 0, named)
	}
	for ci, c := range pod.Spec.Containers {
		for pi, cp := range c.Ports {
			if cp.Name == "" {
				continue
			}
			proto := ir.TCP
			if cp.Protocol != "" {
				var ok bool
				if proto, ok = ir.ParseProtocol(string(cp.Protocol)); !ok {
					errs = append(errs, field.NotSupported(field.NewPath("spec", "containers").Index(ci).Child("ports").Index(pi).Child("protocol"), cp.Protocol, []string{"TCP", "UDP", "SCTP"}))
					continue
				}
			}
			if cp.ContainerPort < 1 || cp.ContainerPort > 65535 {
				errs = append(errs, field.Invalid(field.NewPath("spec", "containers").Index(ci).Child("ports").Index(pi).Child("containerPort"), cp.ContainerPort, "must be between 1 and 65535"))
				continue
			}
			pp := podPort{namedPort{proto, cp.Name}, uint16(cp.ContainerPort)}
			if !slices.Contains(p.ports, pp) {
				p.ports = append(p.ports, pp)
			}
		}
	}
	slices.SortFunc(p.ports, comparePodPort)
	finished := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	p.claimed = p.ips
	p.candidate = len(p.ips) > 0 && !pod.Spec.HostNetwork && !finished
	p.deleting = pod.DeletionTimestamp != nil
	p.created = pod.CreationTimestamp.UnixNano()
	p.onNode = e.isLocal(pod)
	return p, errs
}

func (e *engine) upsertPod(pod *corev1.Pod) error {
	if pod == nil {
		return nil
	}
	p, errs := e.podFromObject(pod)
	others := e.reclaim(e.pods[p.key], p)
	e.own(p)
	e.applyPod(p)
	for _, k := range others {
		e.reown(k)
	}
	if len(errs) > 0 {
		return &ValidationError{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, Errs: errs}
	}
	return nil
}

// applyPod makes p (whose ips, active and local are settled) the pod's
// state: the index, the sets and the endpoint follow.
func (e *engine) applyPod(p *podState) {
	old := e.pods[p.key]
	ns := e.namespace(p.namespace)

	if old != nil && old.active && (!p.active || !slices.Equal(old.ips, p.ips)) {
		// Leaving the index (or changing address): withdraw the old IPs
		// from every set, then enter again below as a new pod.
		e.deactivate(old)
	}
	if old != nil && old.active && p.active && slices.Equal(old.ips, p.ips) {
		// Same addresses: labels, ports and the claim's rank can have
		// changed. Keep the old state object (the index and port sets refer
		// to it).
		e.updatePorts(old, p.ports)
		old.labels = p.labels
		old.claimed, old.candidate, old.deleting, old.created = p.claimed, p.candidate, p.deleting, p.created
		old.onNode, old.local = p.onNode, p.local
		e.handleChanges(old, e.idx.Upsert(old.key, e.indexLabels(old)))
		e.dirtyPods[old.key] = struct{}{}
	} else {
		e.pods[p.key] = p
		ns.pods[p.key] = p
		if p.active {
			e.activate(p)
		}
		e.dirtyPods[p.key] = struct{}{}
	}
}

func (e *engine) deletePod(namespace, name string) {
	key := namespace + "/" + name
	p := e.pods[key]
	if p == nil {
		return
	}
	if p.active {
		e.deactivate(p)
	}
	delete(e.pods, key)
	ns := e.namespace(namespace)
	delete(ns.pods, key)
	e.dropNamespaceIfUnused(ns)
	e.dirtyPods[key] = struct{}{}
	for _, k := range e.reclaim(p, nil) {
		e.reown(k)
	}
}

// activate enters an active pod into the index and the port sets.
func (e *engine) activate(p *podState) {
	e.handleChanges(p, e.idx.Upsert(p.key, e.indexLabels(p)))
	for k := range p.ports.keys() {
		e.addPodPort(p, k)
	}
}

// deactivate removes a pod from the index and every set.
func (e *engine) deactivate(p *podState) {
	e.handleChanges(p, e.idx.Delete(p.key))
	for k := range p.ports.keys() {
		e.removePodPort(p, k)
	}
	p.active = false
}

// handleChanges applies the match-set changes of one pod to the address sets
// and marks endpoints whose policies changed.
func (e *engine) handleChanges(p *podState, changes []selector.Change[string]) {
	for _, ch := range changes {
		u := e.users[ch.Selector]
		if u == nil {
			continue
		}
		if u.set != nil {
			for _, ip := range p.ips {
				if ch.Matched {
					e.addMember(u.set, ir.HostPrefix(ip))
				} else {
					e.removeMember(u.set, ir.HostPrefix(ip))
				}
			}
		}
		if len(u.policies) > 0 && p.local {
			e.dirtyPods[p.key] = struct{}{}
		}
	}
}

// updatePorts moves an active pod's named ports from p.ports to ports.
func (e *engine) updatePorts(p *podState, ports podPorts) {
	if slices.Equal(p.ports, ports) {
		return
	}
	for k := range p.ports.keys() {
		e.removePodPort(p, k)
	}
	p.ports = ports
	for k := range p.ports.keys() {
		e.addPodPort(p, k)
	}
}

func (e *engine) addPodPort(p *podState, k namedPort) {
	m := e.podsByPort[k]
	if m == nil {
		m = make(map[*podState]struct{})
		e.podsByPort[k] = m
	}
	m[p] = struct{}{}
	if set := e.portSetsByPort[k]; set != nil && set.refs > 0 {
		for m := range podPortMembers(p, k) {
			e.addPortMember(set, m)
		}
	}
}

func (e *engine) removePodPort(p *podState, k namedPort) {
	if m := e.podsByPort[k]; m != nil {
		delete(m, p)
		if len(m) == 0 {
			delete(e.podsByPort, k)
		}
	}
	if set := e.portSetsByPort[k]; set != nil && set.refs > 0 {
		for m := range podPortMembers(p, k) {
			e.removePortMember(set, m)
		}
	}
}

// podPortMembers yields the members p gives the port set of k: each of its
// addresses with each port its containers name k.
func podPortMembers(p *podState, k namedPort) iter.Seq[netip.AddrPort] {
	return func(yield func(netip.AddrPort) bool) {
		for _, ip := range p.ips {
			for port := range p.ports.nums(k) {
				if !yield(netip.AddrPortFrom(ip, port)) {
					return
				}
			}
		}
	}
}
