package policy

import (
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/selector"
)

// Engine turns cluster objects into the IR. It keeps the complete cluster
// view it is given (every pod, since any pod can be a peer), and emits
// endpoints only for the local pods (see Config).
//
// Objects are passed by pointer and never retained or modified: the engine
// copies what it needs, so objects from an informer cache are safe to pass.
// An Engine is safe for concurrent use; its methods are serialized.
type Engine interface {
	// UpsertNamespace adds or replaces a namespace. A nil namespace is ignored.
	UpsertNamespace(ns *corev1.Namespace)
	// DeleteNamespace removes a namespace object; its pods stay, in a
	// namespace that carries only the kubernetes.io/metadata.name label.
	// Unknown names are ignored.
	DeleteNamespace(name string)

	// UpsertPod adds or replaces a pod. It returns a *ValidationError when a
	// field is unusable (an IP that does not parse); the pod is applied
	// without it. A nil pod is ignored. When several pods report the same
	// address (an old pod's object outliving its network), the address is
	// one pod's only: one not being deleted, then the most recently
	// created, then the first by namespace/name (see claims.go).
	UpsertPod(pod *corev1.Pod) error
	// DeletePod removes a pod. Unknown pods are ignored.
	DeletePod(namespace, name string)

	// UpsertNetworkPolicy adds or replaces a NetworkPolicy. It returns a
	// *ValidationError listing every invalid field; the policy is applied
	// anyway in its safe form (it isolates what it selects, allows nothing).
	// A nil policy is ignored.
	UpsertNetworkPolicy(np *networkingv1.NetworkPolicy) error
	// DeleteNetworkPolicy removes a NetworkPolicy. Unknown names are ignored.
	DeleteNetworkPolicy(namespace, name string)

	// UpsertAdminNetworkPolicy adds or replaces an AdminNetworkPolicy
	// (cluster-scoped, Admin tier; its IR origin has Kind
	// "AdminNetworkPolicy" and no namespace). It returns a *ValidationError
	// listing every invalid field; the policy is then applied in a form that
	// never allows more than the valid policy could (see cluster.go). A nil
	// policy is ignored.
	UpsertAdminNetworkPolicy(anp *v1alpha1.AdminNetworkPolicy) error
	// DeleteAdminNetworkPolicy removes an AdminNetworkPolicy. Unknown names
	// are ignored.
	DeleteAdminNetworkPolicy(name string)
	// UpsertBaselineAdminNetworkPolicy adds or replaces the
	// BaselineAdminNetworkPolicy (Baseline tier, after the Baseline-tier
	// ClusterNetworkPolicies; IR origin Kind "BaselineAdminNetworkPolicy").
	// Errors and nil as for UpsertAdminNetworkPolicy. The API allows one,
	// named "default"; another name is reported and applied all the same.
	UpsertBaselineAdminNetworkPolicy(banp *v1alpha1.BaselineAdminNetworkPolicy) error
	// DeleteBaselineAdminNetworkPolicy removes a BaselineAdminNetworkPolicy.
	// Unknown names are ignored.
	DeleteBaselineAdminNetworkPolicy(name string)
	// UpsertClusterNetworkPolicy adds or replaces a ClusterNetworkPolicy
	// (tier Admin or Baseline by spec.tier; IR origin Kind
	// "ClusterNetworkPolicy"). Errors and nil as for
	// UpsertAdminNetworkPolicy.
	UpsertClusterNetworkPolicy(cnp *v1beta1.ClusterNetworkPolicy) error
	// DeleteClusterNetworkPolicy removes a ClusterNetworkPolicy. Unknown
	// names are ignored.
	DeleteClusterNetworkPolicy(name string)
	// UpsertNode adds or replaces a node, for the `nodes` egress peers of
	// cluster policies: its labels and its status.addresses of type
	// InternalIP (IPv4 and IPv6). A node is never a pod: pod selectors never
	// match it. A nil node is ignored; unparsable addresses are skipped.
	UpsertNode(node *corev1.Node)
	// DeleteNode removes a node. Unknown names are ignored.
	DeleteNode(name string)

	// Snapshot returns the full IR as it stands. It has no side effect:
	// anyone may call it at any time (a debug endpoint, a test) without
	// disturbing the deltas. Its Generation names the state: two snapshots
	// with the same Generation are equal. The caller owns the result.
	Snapshot() *ir.Snapshot
	// Checkpoint returns the full IR, as Snapshot does, and ends the
	// current delta: the next Delta's Base is the returned Generation. A
	// program keeping a Backend in step calls it for each full Sync (the
	// first, and the one after a failed Apply). The caller owns the result.
	Checkpoint() *ir.Snapshot
	// Delta returns the change since the end of the previous delta (the
	// previous Delta or Checkpoint; the empty state, generation 0, before
	// either) and ends it: the next Delta starts where this one ends. When
	// nothing changed, the delta is empty and its Base equals its
	// Generation. If the Backend fails to apply it, the change is not lost:
	// call Checkpoint and Sync. The caller owns the result.
	Delta() *ir.Delta

	// Problems returns the validation errors of the objects currently held,
	// sorted by object. Empty when every object is valid.
	Problems() []*ValidationError
	// SharedAddresses returns the addresses that several pods report, each
	// with the pod that owns it (see UpsertPod), sorted by address. Empty
	// when no address is shared.
	SharedAddresses() []SharedAddress

	// RefreshInterfaces asks Config.Interface again for the named local
	// pods ("namespace/name"; every local pod when none is named) at the
	// next Snapshot, Checkpoint or Delta. Unknown and non-local pods are
	// ignored; without Config.Interface it does nothing.
	RefreshInterfaces(podIDs ...string)
	// InterfaceProblems returns, sorted, one line per local pod whose
	// interface Config.Interface named but the engine did not use (not a
	// legal name, or another pod's). Empty when there is none.
	InterfaceProblems() []string
	// PodAt returns the "namespace/name" of the pod that holds address a
	// (of the pods reporting it, the one that owns it; see UpsertPod), of
	// any node. ok is false when no pod holds it (an unknown address, a
	// hostNetwork pod's). It changes nothing.
	PodAt(a netip.Addr) (pod string, ok bool)
}

// SharedAddress is an address several pods report.
type SharedAddress struct {
	Address netip.Addr
	// Owner is the pod ("namespace/name") the address belongs to: its
	// endpoint and its peer sets hold it.
	Owner string
	// Others are the other pods that report it, sorted: for the engine
	// they do not have that address.
	Others []string
}

// Config configures an Engine. The zero value enforces every pod.
type Config struct {
	// NodeName, when set, makes the pods scheduled to that node
	// (spec.nodeName) the local endpoints. Empty means every pod is local.
	NodeName string
	// IsLocal, when set, decides which pods are local endpoints and
	// overrides NodeName. It must be a pure function of the pod.
	IsLocal func(pod *corev1.Pod) bool
	// Interface, when set, names a local pod's interface on the node (the
	// node-side end of its veth, routed or a bridge port) for source
	// validation: the endpoint's ir.Endpoint.Interface, on which the
	// backends drop packets whose source is not one of the pod's
	// addresses. podID is "namespace/name" and ips the addresses the pod
	// owns. It returns "" when it does not know the pod (no check for it).
	// It is called when the pod's endpoint is computed; call
	// Engine.RefreshInterfaces when its answers change. A name that is not
	// a legal interface name, or that another local pod already has, is
	// not used (that pod gets no check) and is listed by
	// InterfaceProblems. Nil: no endpoint has an interface.
	Interface func(podID string, ips []netip.Addr) string
}

// New returns an Engine with an empty cluster view.
func New(cfg Config) Engine {
	return &lockedEngine{e: newEngine(cfg)}
}

// lockedEngine serializes calls to the engine.
type lockedEngine struct {
	mu sync.Mutex
	e  *engine
}

// mutate locks the engine for a call that may change its state, and marks
// the state changed for Snapshot's generation. Every mutating method uses
// it: defer l.mutate()().
func (l *lockedEngine) mutate() (unlock func()) {
	l.mu.Lock()
	l.e.mutated = true
	return l.mu.Unlock
}

func (l *lockedEngine) RefreshInterfaces(podIDs ...string) {
	if l.e.cfg.Interface == nil {
		return // nothing to ask: the state stays as named
	}
	defer l.mutate()()
	l.e.refreshInterfaces(podIDs)
}

func (l *lockedEngine) InterfaceProblems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.interfaceProblems()
}

func (l *lockedEngine) UpsertNamespace(ns *corev1.Namespace) {
	defer l.mutate()()
	l.e.upsertNamespace(ns)
}

func (l *lockedEngine) DeleteNamespace(name string) {
	defer l.mutate()()
	l.e.deleteNamespace(name)
}

func (l *lockedEngine) UpsertPod(pod *corev1.Pod) error {
	defer l.mutate()()
	return l.e.upsertPod(pod)
}

func (l *lockedEngine) DeletePod(namespace, name string) {
	defer l.mutate()()
	l.e.deletePod(namespace, name)
}

func (l *lockedEngine) UpsertNetworkPolicy(np *networkingv1.NetworkPolicy) error {
	defer l.mutate()()
	return l.e.upsertNetworkPolicy(np)
}

func (l *lockedEngine) DeleteNetworkPolicy(namespace, name string) {
	defer l.mutate()()
	l.e.deletePolicy(policyKey{kind: kindNetworkPolicy, namespace: namespace, name: name})
}

func (l *lockedEngine) UpsertAdminNetworkPolicy(anp *v1alpha1.AdminNetworkPolicy) error {
	defer l.mutate()()
	return l.e.upsertAdminNetworkPolicy(anp)
}

func (l *lockedEngine) DeleteAdminNetworkPolicy(name string) {
	defer l.mutate()()
	l.e.deletePolicy(policyKey{kind: kindAdminNetworkPolicy, name: name})
}

func (l *lockedEngine) UpsertBaselineAdminNetworkPolicy(banp *v1alpha1.BaselineAdminNetworkPolicy) error {
	defer l.mutate()()
	return l.e.upsertBaselineAdminNetworkPolicy(banp)
}

func (l *lockedEngine) DeleteBaselineAdminNetworkPolicy(name string) {
	defer l.mutate()()
	l.e.deletePolicy(policyKey{kind: kindBaselineAdminNetworkPolicy, name: name})
}

func (l *lockedEngine) UpsertClusterNetworkPolicy(cnp *v1beta1.ClusterNetworkPolicy) error {
	defer l.mutate()()
	return l.e.upsertClusterNetworkPolicy(cnp)
}

func (l *lockedEngine) DeleteClusterNetworkPolicy(name string) {
	defer l.mutate()()
	l.e.deletePolicy(policyKey{kind: kindClusterNetworkPolicy, name: name})
}

func (l *lockedEngine) UpsertNode(node *corev1.Node) {
	defer l.mutate()()
	l.e.upsertNode(node)
}

func (l *lockedEngine) DeleteNode(name string) {
	defer l.mutate()()
	l.e.deleteNode(name)
}

func (l *lockedEngine) Snapshot() *ir.Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.snapshot()
}

func (l *lockedEngine) Checkpoint() *ir.Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.checkpoint()
}

func (l *lockedEngine) Delta() *ir.Delta {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.delta(true)
}

func (l *lockedEngine) Problems() []*ValidationError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.problems()
}

func (l *lockedEngine) SharedAddresses() []SharedAddress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.sharedAddresses()
}

func (l *lockedEngine) PodAt(a netip.Addr) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.e.podAt(a)
}

// engine is the unsynchronized implementation.
type engine struct {
	cfg Config

	// ifOwner maps each interface an endpoint holds to its pod;
	// ifProblems the pods whose interface was not used, with why.
	ifOwner    map[string]string
	ifProblems map[string]string

	// idx holds every active pod, labelled with its own labels plus its
	// namespace's labels under nsLabelPrefix, and every selector in use.
	idx *selector.Index[string]

	namespaces map[string]*namespaceState
	pods       map[string]*podState // by "namespace/name"
	// claims lists, for every address some pod reports, the pods that
	// report it (see claims.go).
	claims   claims
	policies map[policyKey]*policyState

	// users says what each registered selector is for.
	users map[selector.ID]*selectorUsers

	// nodeIdx holds every node by name with its labels, and the node
	// selectors of `nodes` peers; nodeSets are the address sets those
	// selectors feed. Nodes are never in idx: a pod selector never matches
	// a node.
	nodeIdx  *selector.Index[string]
	nodes    map[string]*nodeState
	nodeSets map[selector.ID]*addrSet

	addrSets map[string]*addrSet
	portSets map[string]*portSet
	// portSetsByPort holds the same sets by named port, so that a pod's
	// ports find their set without building its ID.
	portSetsByPort map[namedPort]*portSet
	// podsByPort indexes active pods by named container port.
	podsByPort map[namedPort]map[*podState]struct{}

	// Current rule lists and endpoints; endpoints are recomputed lazily from
	// dirtyPods.
	lists     map[string]*ir.RuleList
	endpoints map[string]*ir.Endpoint
	dirtyPods map[string]struct{}

	// generation names the state last read (by Snapshot, Delta or
	// Checkpoint); mutated says the state may have changed since. base is
	// the generation the last delta ended at.
	generation uint64
	mutated    bool
	base       uint64
	// What the last delta emitted, and what changed since.
	emittedLists   map[string]*ir.RuleList
	emittedEPs     map[string]*ir.Endpoint
	changedLists   map[string]struct{}
	changedEPs     map[string]struct{}
	changedAddr    map[string]struct{}
	changedPortSet map[string]struct{}
}

func newEngine(cfg Config) *engine {
	return &engine{
		cfg:            cfg,
		idx:            selector.NewIndex[string](),
		namespaces:     make(map[string]*namespaceState),
		pods:           make(map[string]*podState),
		claims:         newClaims(),
		policies:       make(map[policyKey]*policyState),
		users:          make(map[selector.ID]*selectorUsers),
		nodeIdx:        selector.NewIndex[string](),
		nodes:          make(map[string]*nodeState),
		nodeSets:       make(map[selector.ID]*addrSet),
		addrSets:       make(map[string]*addrSet),
		portSets:       make(map[string]*portSet),
		portSetsByPort: make(map[namedPort]*portSet),
		podsByPort:     make(map[namedPort]map[*podState]struct{}),
		lists:          make(map[string]*ir.RuleList),
		endpoints:      make(map[string]*ir.Endpoint),
		dirtyPods:      make(map[string]struct{}),
		ifOwner:        make(map[string]string),
		ifProblems:     make(map[string]string),
		emittedLists:   make(map[string]*ir.RuleList),
		emittedEPs:     make(map[string]*ir.Endpoint),
		changedLists:   make(map[string]struct{}),
		changedEPs:     make(map[string]struct{}),
		changedAddr:    make(map[string]struct{}),
		changedPortSet: make(map[string]struct{}),
	}
}

// selectorUsers records the uses of one registered selector.
type selectorUsers struct {
	// set is the pod address set fed by the selector, if any.
	set *addrSet
	// policies are those that use it as their pod selector.
	policies map[*policyState]struct{}
}
