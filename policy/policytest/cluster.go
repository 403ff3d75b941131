package policytest

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// Cluster is a set of plain Kubernetes objects: namespaces, pods,
// NetworkPolicies, the cluster-wide policies (AdminNetworkPolicy,
// BaselineAdminNetworkPolicy, ClusterNetworkPolicy) and nodes. It stores deep copies and hands out deep copies, so
// neither a caller's later edits nor a clone's mutations leak into it. The
// zero value is not usable; call NewCluster.
type Cluster struct {
	namespaces map[string]*corev1.Namespace
	pods       map[string]*corev1.Pod                 // by namespace/name
	policies   map[string]*networkingv1.NetworkPolicy // by namespace/name
	anps       map[string]*v1alpha1.AdminNetworkPolicy
	banps      map[string]*v1alpha1.BaselineAdminNetworkPolicy
	cnps       map[string]*v1beta1.ClusterNetworkPolicy
	nodes      map[string]*corev1.Node
}

// NewCluster returns an empty cluster.
func NewCluster() *Cluster {
	return &Cluster{
		namespaces: map[string]*corev1.Namespace{},
		pods:       map[string]*corev1.Pod{},
		policies:   map[string]*networkingv1.NetworkPolicy{},
		anps:       map[string]*v1alpha1.AdminNetworkPolicy{},
		banps:      map[string]*v1alpha1.BaselineAdminNetworkPolicy{},
		cnps:       map[string]*v1beta1.ClusterNetworkPolicy{},
		nodes:      map[string]*corev1.Node{},
	}
}

// Clone returns a deep copy of c.
func (c *Cluster) Clone() *Cluster {
	out := NewCluster()
	for k, v := range c.namespaces {
		out.namespaces[k] = v.DeepCopy()
	}
	for k, v := range c.pods {
		out.pods[k] = v.DeepCopy()
	}
	for k, v := range c.policies {
		out.policies[k] = v.DeepCopy()
	}
	for k, v := range c.anps {
		out.anps[k] = v.DeepCopy()
	}
	for k, v := range c.banps {
		out.banps[k] = v.DeepCopy()
	}
	for k, v := range c.cnps {
		out.cnps[k] = v.DeepCopy()
	}
	for k, v := range c.nodes {
		out.nodes[k] = v.DeepCopy()
	}
	return out
}

func key(namespace, name string) string { return namespace + "/" + name }

// SetNamespace adds ns, or replaces the namespace of the same name. A nil ns
// is ignored.
func (c *Cluster) SetNamespace(ns *corev1.Namespace) {
	if ns != nil {
		c.namespaces[ns.Name] = ns.DeepCopy()
	}
}

// SetPod adds p, or replaces the pod of the same namespace and name. A nil
// pod is ignored.
func (c *Cluster) SetPod(p *corev1.Pod) {
	if p != nil {
		c.pods[key(p.Namespace, p.Name)] = p.DeepCopy()
	}
}

// SetPolicy adds np, or replaces the policy of the same namespace and name.
// A nil policy is ignored.
func (c *Cluster) SetPolicy(np *networkingv1.NetworkPolicy) {
	if np != nil {
		c.policies[key(np.Namespace, np.Name)] = np.DeepCopy()
	}
}

// SetAdminNetworkPolicy adds anp, or replaces the one of the same name. A
// nil policy is ignored.
func (c *Cluster) SetAdminNetworkPolicy(anp *v1alpha1.AdminNetworkPolicy) {
	if anp != nil {
		c.anps[anp.Name] = anp.DeepCopy()
	}
}

// SetBaselineAdminNetworkPolicy adds banp, or replaces the one of the same
// name. A nil policy is ignored.
func (c *Cluster) SetBaselineAdminNetworkPolicy(banp *v1alpha1.BaselineAdminNetworkPolicy) {
	if banp != nil {
		c.banps[banp.Name] = banp.DeepCopy()
	}
}

// SetClusterNetworkPolicy adds cnp, or replaces the one of the same name. A
// nil policy is ignored.
func (c *Cluster) SetClusterNetworkPolicy(cnp *v1beta1.ClusterNetworkPolicy) {
	if cnp != nil {
		c.cnps[cnp.Name] = cnp.DeepCopy()
	}
}

// SetNode adds n, or replaces the node of the same name. A nil node is
// ignored.
func (c *Cluster) SetNode(n *corev1.Node) {
	if n != nil {
		c.nodes[n.Name] = n.DeepCopy()
	}
}

// ClusterNetworkPolicy returns a copy of the named ClusterNetworkPolicy, or
// nil.
func (c *Cluster) ClusterNetworkPolicy(name string) *v1beta1.ClusterNetworkPolicy {
	return c.cnps[name].DeepCopy()
}

// DeleteAdminNetworkPolicy removes an AdminNetworkPolicy. Unknown names are
// ignored.
func (c *Cluster) DeleteAdminNetworkPolicy(name string) { delete(c.anps, name) }

// DeleteBaselineAdminNetworkPolicy removes a BaselineAdminNetworkPolicy.
// Unknown names are ignored.
func (c *Cluster) DeleteBaselineAdminNetworkPolicy(name string) { delete(c.banps, name) }

// DeleteClusterNetworkPolicy removes a ClusterNetworkPolicy. Unknown names
// are ignored.
func (c *Cluster) DeleteClusterNetworkPolicy(name string) { delete(c.cnps, name) }

// DeleteNode removes a node. Unknown names are ignored.
func (c *Cluster) DeleteNode(name string) { delete(c.nodes, name) }

// HasClusterObjects reports whether the cluster holds a cluster-wide policy
// or a node: what only a ClusterLoader can load.
func (c *Cluster) HasClusterObjects() bool {
	return len(c.anps)+len(c.banps)+len(c.cnps)+len(c.nodes) > 0
}

// DeleteNamespace removes the namespace object only: its pods and policies
// stay (unlike in a real cluster), so a test can see how an engine treats
// pods of a namespace it has no object for. Unknown names are ignored.
func (c *Cluster) DeleteNamespace(name string) { delete(c.namespaces, name) }

// DeletePod removes a pod. Unknown pods are ignored.
func (c *Cluster) DeletePod(namespace, name string) { delete(c.pods, key(namespace, name)) }

// DeletePolicy removes a policy. Unknown policies are ignored.
func (c *Cluster) DeletePolicy(namespace, name string) { delete(c.policies, key(namespace, name)) }

// DeletePolicies removes every policy of the given namespaces, or of every
// namespace when none is given.
func (c *Cluster) DeletePolicies(namespaces ...string) {
	for k, np := range c.policies {
		if len(namespaces) == 0 || slices.Contains(namespaces, np.Namespace) {
			delete(c.policies, k)
		}
	}
}

// Namespace returns a copy of the named namespace, or nil.
func (c *Cluster) Namespace(name string) *corev1.Namespace {
	return c.namespaces[name].DeepCopy()
}

// Pod returns a copy of the pod, or nil.
func (c *Cluster) Pod(namespace, name string) *corev1.Pod {
	return c.pods[key(namespace, name)].DeepCopy()
}

// Policy returns a copy of the policy, or nil.
func (c *Cluster) Policy(namespace, name string) *networkingv1.NetworkPolicy {
	return c.policies[key(namespace, name)].DeepCopy()
}

// Namespaces returns copies of every namespace, sorted by name.
func (c *Cluster) Namespaces() []*corev1.Namespace {
	var out []*corev1.Namespace
	for _, k := range slices.Sorted(maps.Keys(c.namespaces)) {
		out = append(out, c.namespaces[k].DeepCopy())
	}
	return out
}

// Pods returns copies of every pod, sorted by namespace/name.
func (c *Cluster) Pods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, k := range slices.Sorted(maps.Keys(c.pods)) {
		out = append(out, c.pods[k].DeepCopy())
	}
	return out
}

// Policies returns copies of every policy, sorted by namespace/name.
func (c *Cluster) Policies() []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, k := range slices.Sorted(maps.Keys(c.policies)) {
		out = append(out, c.policies[k].DeepCopy())
	}
	return out
}

// LabelNamespace adds labels to a namespace, replacing values of existing
// keys. It reports whether the namespace exists.
func (c *Cluster) LabelNamespace(name string, labels map[string]string) bool {
	ns := c.namespaces[name]
	if ns == nil {
		return false
	}
	ns = ns.DeepCopy()
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	maps.Copy(ns.Labels, labels)
	c.namespaces[name] = ns
	return true
}

// LabelPod adds labels to a pod, replacing values of existing keys. It
// reports whether the pod exists.
func (c *Cluster) LabelPod(namespace, name string, labels map[string]string) bool {
	p := c.pods[key(namespace, name)]
	if p == nil {
		return false
	}
	p = p.DeepCopy()
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	maps.Copy(p.Labels, labels)
	c.pods[key(namespace, name)] = p
	return true
}

// PodIPs returns a pod's addresses: status.podIP first, then the rest of
// status.podIPs, without duplicates or unparsable entries. Empty for an
// unknown pod.
func (c *Cluster) PodIPs(namespace, name string) []netip.Addr {
	p := c.pods[key(namespace, name)]
	if p == nil {
		return nil
	}
	var out []netip.Addr
	add := func(s string) {
		a, err := netip.ParseAddr(s)
		if err == nil && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	add(p.Status.PodIP)
	for _, ip := range p.Status.PodIPs {
		add(ip.IP)
	}
	return out
}

// PodIP returns the pod's address in fam.
func (c *Cluster) PodIP(namespace, name string, fam Family) (netip.Addr, bool) {
	for _, a := range c.PodIPs(namespace, name) {
		if FamilyOf(a) == fam {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// Loader receives cluster objects: the part of an engine that Load feeds.
// Palisade's policy.Engine satisfies it.
type Loader interface {
	UpsertNamespace(ns *corev1.Namespace)
	DeleteNamespace(name string)
	UpsertPod(pod *corev1.Pod) error
	DeletePod(namespace, name string)
	UpsertNetworkPolicy(np *networkingv1.NetworkPolicy) error
	DeleteNetworkPolicy(namespace, name string)
}

// ClusterLoader receives cluster-wide policies and nodes. Palisade's
// policy.Engine satisfies it. Applying a change of those kinds to a Loader
// that is not a ClusterLoader is an error.
type ClusterLoader interface {
	UpsertAdminNetworkPolicy(anp *v1alpha1.AdminNetworkPolicy) error
	DeleteAdminNetworkPolicy(name string)
	UpsertBaselineAdminNetworkPolicy(banp *v1alpha1.BaselineAdminNetworkPolicy) error
	DeleteBaselineAdminNetworkPolicy(name string)
	UpsertClusterNetworkPolicy(cnp *v1beta1.ClusterNetworkPolicy) error
	DeleteClusterNetworkPolicy(name string)
	UpsertNode(node *corev1.Node)
	DeleteNode(name string)
}

// Op is what a Change does.
type Op string

const (
	// Upsert adds or replaces an object.
	Upsert Op = "upsert"
	// Delete removes an object.
	Delete Op = "delete"
)

// Change is one event that turns a cluster state into the next.
type Change struct {
	Op Op
	// Kind is "Namespace", "Pod", "NetworkPolicy", "Node",
	// "AdminNetworkPolicy", "BaselineAdminNetworkPolicy" or
	// "ClusterNetworkPolicy".
	Kind      string
	Namespace string
	Name      string
	// Object is the new object of an Upsert (a pointer to the kind's API
	// type); nil for a Delete.
	Object any
}

// String renders the change as "upsert Pod x/a".
func (ch Change) String() string {
	if ch.Namespace == "" {
		return fmt.Sprintf("%s %s %s", ch.Op, ch.Kind, ch.Name)
	}
	return fmt.Sprintf("%s %s %s/%s", ch.Op, ch.Kind, ch.Namespace, ch.Name)
}

// Apply sends the change to l. A change of a cluster-wide policy or a node
// needs l to be a ClusterLoader too.
func (ch Change) Apply(l Loader) error {
	switch ch.Kind {
	case "Node", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterNetworkPolicy":
		cl, ok := l.(ClusterLoader)
		if !ok {
			return fmt.Errorf("%s: the loader takes no cluster-wide policies or nodes", ch)
		}
		return ch.applyCluster(cl)
	}
	switch {
	case ch.Op == Upsert && ch.Kind == "Namespace":
		l.UpsertNamespace(ch.Object.(*corev1.Namespace))
	case ch.Op == Upsert && ch.Kind == "Pod":
		return l.UpsertPod(ch.Object.(*corev1.Pod))
	case ch.Op == Upsert && ch.Kind == "NetworkPolicy":
		return l.UpsertNetworkPolicy(ch.Object.(*networkingv1.NetworkPolicy))
	case ch.Op == Delete && ch.Kind == "Namespace":
		l.DeleteNamespace(ch.Name)
	case ch.Op == Delete && ch.Kind == "Pod":
		l.DeletePod(ch.Namespace, ch.Name)
	case ch.Op == Delete && ch.Kind == "NetworkPolicy":
		l.DeleteNetworkPolicy(ch.Namespace, ch.Name)
	default:
		return fmt.Errorf("%s: unknown change", ch)
	}
	return nil
}

func (ch Change) applyCluster(l ClusterLoader) error {
	switch {
	case ch.Op == Upsert && ch.Kind == "Node":
		l.UpsertNode(ch.Object.(*corev1.Node))
	case ch.Op == Upsert && ch.Kind == "AdminNetworkPolicy":
		return l.UpsertAdminNetworkPolicy(ch.Object.(*v1alpha1.AdminNetworkPolicy))
	case ch.Op == Upsert && ch.Kind == "BaselineAdminNetworkPolicy":
		return l.UpsertBaselineAdminNetworkPolicy(ch.Object.(*v1alpha1.BaselineAdminNetworkPolicy))
	case ch.Op == Upsert && ch.Kind == "ClusterNetworkPolicy":
		return l.UpsertClusterNetworkPolicy(ch.Object.(*v1beta1.ClusterNetworkPolicy))
	case ch.Op == Delete && ch.Kind == "Node":
		l.DeleteNode(ch.Name)
	case ch.Op == Delete && ch.Kind == "AdminNetworkPolicy":
		l.DeleteAdminNetworkPolicy(ch.Name)
	case ch.Op == Delete && ch.Kind == "BaselineAdminNetworkPolicy":
		l.DeleteBaselineAdminNetworkPolicy(ch.Name)
	case ch.Op == Delete && ch.Kind == "ClusterNetworkPolicy":
		l.DeleteClusterNetworkPolicy(ch.Name)
	default:
		return fmt.Errorf("%s: unknown change", ch)
	}
	return nil
}

// Changes returns the events that turn prev into next: upserts of the
// objects that are new or differ (namespaces, pods, NetworkPolicies, nodes,
// AdminNetworkPolicies, BaselineAdminNetworkPolicies, then
// ClusterNetworkPolicies), then deletes of the objects next no longer has
// (in the reverse order of kinds), each group sorted by name. A nil prev or next is the empty
// cluster. Upserted objects are copies.
func Changes(prev, next *Cluster) []Change {
	if prev == nil {
		prev = NewCluster()
	}
	if next == nil {
		next = NewCluster()
	}
	var out []Change
	out = append(out, upserts("Namespace", prev.namespaces, next.namespaces, func(ns *corev1.Namespace) (string, string, any) {
		return "", ns.Name, ns.DeepCopy()
	})...)
	out = append(out, upserts("Pod", prev.pods, next.pods, func(p *corev1.Pod) (string, string, any) {
		return p.Namespace, p.Name, p.DeepCopy()
	})...)
	out = append(out, upserts("NetworkPolicy", prev.policies, next.policies, func(np *networkingv1.NetworkPolicy) (string, string, any) {
		return np.Namespace, np.Name, np.DeepCopy()
	})...)
	out = append(out, upserts("Node", prev.nodes, next.nodes, func(n *corev1.Node) (string, string, any) {
		return "", n.Name, n.DeepCopy()
	})...)
	out = append(out, upserts("AdminNetworkPolicy", prev.anps, next.anps, func(p *v1alpha1.AdminNetworkPolicy) (string, string, any) {
		return "", p.Name, p.DeepCopy()
	})...)
	out = append(out, upserts("BaselineAdminNetworkPolicy", prev.banps, next.banps, func(p *v1alpha1.BaselineAdminNetworkPolicy) (string, string, any) {
		return "", p.Name, p.DeepCopy()
	})...)
	out = append(out, upserts("ClusterNetworkPolicy", prev.cnps, next.cnps, func(p *v1beta1.ClusterNetworkPolicy) (string, string, any) {
		return "", p.Name, p.DeepCopy()
	})...)
	out = append(out, deletes("ClusterNetworkPolicy", prev.cnps, next.cnps)...)
	out = append(out, deletes("BaselineAdminNetworkPolicy", prev.banps, next.banps)...)
	out = append(out, deletes("AdminNetworkPolicy", prev.anps, next.anps)...)
	out = append(out, deletes("Node", prev.nodes, next.nodes)...)
	out = append(out, deletes("NetworkPolicy", prev.policies, next.policies)...)
	out = append(out, deletes("Pod", prev.pods, next.pods)...)
	out = append(out, deletes("Namespace", prev.namespaces, next.namespaces)...)
	return out
}

func upserts[T any](kind string, prev, next map[string]T, describe func(T) (ns, name string, obj any)) []Change {
	var out []Change
	for _, k := range slices.Sorted(maps.Keys(next)) {
		if old, ok := prev[k]; ok && equality.Semantic.DeepEqual(old, next[k]) {
			continue
		}
		ns, name, obj := describe(next[k])
		out = append(out, Change{Op: Upsert, Kind: kind, Namespace: ns, Name: name, Object: obj})
	}
	return out
}

func deletes[T any](kind string, prev, next map[string]T) []Change {
	var out []Change
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := next[k]; ok {
			continue
		}
		ns, name := "", k
		if i := strings.IndexByte(k, '/'); i >= 0 {
			ns, name = k[:i], k[i+1:]
		}
		out = append(out, Change{Op: Delete, Kind: kind, Namespace: ns, Name: name})
	}
	return out
}

// Load feeds l the changes from prev to next (see Changes): the incremental
// path of an engine. Every change is applied; the errors the loader returns
// (validation problems it reports while still applying the object) are
// joined, each naming its change.
func Load(l Loader, prev, next *Cluster) error {
	var errs []error
	for _, ch := range Changes(prev, next) {
		if err := ch.Apply(l); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ch, err))
		}
	}
	return errors.Join(errs...)
}
