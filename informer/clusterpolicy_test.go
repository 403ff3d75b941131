package informer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/palisade-net/palisade/policy"
)

// clusterEngine records the cluster-wide calls it gets and passes every
// other call to a real engine. Unless real is set, cluster-wide calls are
// not passed on, and a policy named "invalid" is refused with a
// validation error.
type clusterEngine struct {
	policy.Engine
	real  bool
	mu    sync.Mutex
	calls []string
	nodes map[string]*corev1.Node
}

func (r *clusterEngine) log(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *clusterEngine) took() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *clusterEngine) has(call string) func() bool {
	return func() bool { return slices.Contains(r.took(), call) }
}

func invalidIf(kind, name string) error {
	if name != "invalid" {
		return nil
	}
	return &policy.ValidationError{Kind: kind, Name: name,
		Errs: field.ErrorList{field.Invalid(field.NewPath("spec", "priority"), 1001, "must be at most 1000")}}
}

func (r *clusterEngine) UpsertAdminNetworkPolicy(p *v1alpha1.AdminNetworkPolicy) error {
	r.log("upsert AdminNetworkPolicy " + p.Name)
	if r.real {
		return r.Engine.UpsertAdminNetworkPolicy(p)
	}
	return invalidIf("AdminNetworkPolicy", p.Name)
}
func (r *clusterEngine) DeleteAdminNetworkPolicy(name string) {
	r.log("delete AdminNetworkPolicy " + name)
	if r.real {
		r.Engine.DeleteAdminNetworkPolicy(name)
	}
}
func (r *clusterEngine) UpsertBaselineAdminNetworkPolicy(p *v1alpha1.BaselineAdminNetworkPolicy) error {
	r.log("upsert BaselineAdminNetworkPolicy " + p.Name)
	if r.real {
		return r.Engine.UpsertBaselineAdminNetworkPolicy(p)
	}
	return invalidIf("BaselineAdminNetworkPolicy", p.Name)
}
func (r *clusterEngine) DeleteBaselineAdminNetworkPolicy(name string) {
	r.log("delete BaselineAdminNetworkPolicy " + name)
	if r.real {
		r.Engine.DeleteBaselineAdminNetworkPolicy(name)
	}
}
func (r *clusterEngine) UpsertClusterNetworkPolicy(p *v1beta1.ClusterNetworkPolicy) error {
	r.log("upsert ClusterNetworkPolicy " + p.Name)
	if r.real {
		return r.Engine.UpsertClusterNetworkPolicy(p)
	}
	return invalidIf("ClusterNetworkPolicy", p.Name)
}
func (r *clusterEngine) DeleteClusterNetworkPolicy(name string) {
	r.log("delete ClusterNetworkPolicy " + name)
	if r.real {
		r.Engine.DeleteClusterNetworkPolicy(name)
	}
}
func (r *clusterEngine) UpsertNode(n *corev1.Node) {
	r.log("upsert Node " + n.Name)
	r.mu.Lock()
	r.nodes[n.Name] = n
	r.mu.Unlock()
	if r.real {
		r.Engine.UpsertNode(n)
	}
}
func (r *clusterEngine) DeleteNode(name string) {
	r.log("delete Node " + name)
	if r.real {
		r.Engine.DeleteNode(name)
	}
}

// fakeDiscovery serves the group versions it is told to, safely for
// concurrent use.
type fakeDiscovery struct {
	mu     sync.Mutex
	served map[string][]string // group version → resources
	err    error
	asked  int
}

func (f *fakeDiscovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if f.err != nil {
		return nil, f.err
	}
	rs, ok := f.served[gv]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{}, gv)
	}
	list := &metav1.APIResourceList{GroupVersion: gv}
	for _, r := range rs {
		list.APIResources = append(list.APIResources, metav1.APIResource{Name: r})
	}
	return list, nil
}

func (f *fakeDiscovery) set(served map[string][]string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.served, f.err = served, err
}

// allServed is what an API server with the three CRDs installed serves.
var allServed = map[string][]string{
	"policy.networking.k8s.io/v1alpha1": {"adminnetworkpolicies", "baselineadminnetworkpolicies"},
	"policy.networking.k8s.io/v1beta1":  {"clusternetworkpolicies"},
}

// clusterEnv is an env with cluster-wide policies enabled over a fake
// dynamic client and a fake discovery.
type clusterEnv struct {
	*env
	dyn       *dynamicfake.FakeDynamicClient
	discovery *fakeDiscovery
	rec       *clusterEngine
	events    *record.FakeRecorder
}

func newClusterEnv(t *testing.T, served map[string][]string, objects []runtime.Object, dynObjects ...runtime.Object) *clusterEnv {
	t.Helper()
	ce := &clusterEnv{
		dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
			AdminNetworkPolicyResource:         "AdminNetworkPolicyList",
			BaselineAdminNetworkPolicyResource: "BaselineAdminNetworkPolicyList",
			ClusterNetworkPolicyResource:       "ClusterNetworkPolicyList",
		}, dynObjects...),
		discovery: &fakeDiscovery{served: served},
		rec:       &clusterEngine{Engine: policy.New(policy.Config{}), nodes: map[string]*corev1.Node{}},
		events:    record.NewFakeRecorder(20),
	}
	ce.env = newEnv(t, func(c *Config) {
		c.Dynamic = ce.dyn
		c.ClusterPolicyPoll = 20 * time.Millisecond
		c.Engine = ce.rec
		c.Recorder = ce.events
	}, objects...)
	ce.engine = ce.rec
	ce.c.cluster.discovery = ce.discovery
	return ce
}

func makeANP(name string, priority any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.networking.k8s.io/v1alpha1",
		"kind":       "AdminNetworkPolicy",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"priority": priority,
			"subject":  map[string]any{"namespaces": map[string]any{}},
		},
	}}
}

func makeCNP(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.networking.k8s.io/v1beta1",
		"kind":       "ClusterNetworkPolicy",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"tier":     "Admin",
			"priority": int64(3),
			"subject":  map[string]any{"namespaces": map[string]any{}},
		},
	}}
}

func (ce *clusterEnv) create(gvr schema.GroupVersionResource, u *unstructured.Unstructured) {
	ce.t.Helper()
	_, err := ce.dyn.Resource(gvr).Create(bg, u, metav1.CreateOptions{})
	require.NoError(ce.t, err)
}

func (ce *clusterEnv) eventually(cond func() bool, msg string) {
	ce.t.Helper()
	require.Eventually(ce.t, cond, 10*time.Second, time.Millisecond, msg)
}

func TestClusterPoliciesInstalledLater(t *testing.T) {
	ce := newClusterEnv(t, nil, nil)
	ce.start()
	ce.waitReady()
	assert.Empty(t, ce.c.cluster.watched(), "no CRD served: nothing watched")

	// The CRDs are installed and a policy created: the poll notices.
	ce.discovery.set(allServed, nil)
	ce.create(AdminNetworkPolicyResource, makeANP("guard", int64(5)))
	ce.eventually(ce.rec.has("upsert AdminNetworkPolicy guard"), "the policy never reached the engine")
	assert.Equal(t, []string{"AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterNetworkPolicy"}, ce.c.cluster.watched())
	ce.create(ClusterNetworkPolicyResource, makeCNP("tiered"))
	ce.eventually(ce.rec.has("upsert ClusterNetworkPolicy tiered"), "an object created later never reached the engine")
	require.NoError(t, ce.dyn.Resource(AdminNetworkPolicyResource).Delete(bg, "guard", metav1.DeleteOptions{}))
	ce.eventually(ce.rec.has("delete AdminNetworkPolicy guard"), "a delete never reached the engine")

	// The CRDs go: their informers stop and what they held is deleted.
	ce.discovery.set(nil, nil)
	ce.eventually(func() bool { return len(ce.c.cluster.watched()) == 0 }, "informers never stopped")
	assert.True(t, ce.rec.has("delete ClusterNetworkPolicy tiered")())
	assert.True(t, ce.c.Ready(), "the controller stays ready throughout")
}

// TestClusterPoliciesEnforced runs the real engine: an AdminNetworkPolicy
// written in the v0.1.x peer shape denies what a NetworkPolicy allows, and
// a ClusterNetworkPolicy's Pass hands the decision back.
func TestClusterPoliciesEnforced(t *testing.T) {
	prod, dev := makeNamespace("prod", map[string]string{"env": "prod"}), makeNamespace("dev", map[string]string{"env": "dev"})
	ce := newClusterEnv(t, allServed, []runtime.Object{prod, dev,
		makePod("prod", "db", ipDB, withLabels("role", "db")),
		makePod("dev", "frontend", ipFrontend, withLabels("role", "frontend")),
	})
	ce.rec.real = true
	ce.start()
	ce.waitReady()
	ce.env.eventually(ipFrontend, ipDB, 80, true, "no policy: allowed")

	deny := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
		"metadata": map[string]any{"name": "no-dev"},
		"spec": map[string]any{
			"priority": int64(10),
			"subject":  map[string]any{"namespaces": map[string]any{"matchLabels": map[string]any{"env": "prod"}}},
			"ingress": []any{map[string]any{"name": "no-dev", "action": "Deny", "from": []any{
				map[string]any{"namespaces": map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"env": "dev"}}}},
			}}},
		},
	}}
	ce.create(AdminNetworkPolicyResource, deny)
	ce.env.eventually(ipFrontend, ipDB, 80, false, "the Admin Deny from dev applies")
	ce.env.eventually(ipDB, ipFrontend, 80, true, "and nothing else")

	pass := makeCNP("pass-dev")
	require.NoError(t, unstructured.SetNestedSlice(pass.Object, []any{map[string]any{"name": "to-owners", "action": "Pass",
		"from": []any{map[string]any{"namespaces": map[string]any{"matchLabels": map[string]any{"env": "dev"}}}}}}, "spec", "ingress"))
	ce.create(ClusterNetworkPolicyResource, pass) // priority 3: before the Deny
	ce.env.eventually(ipFrontend, ipDB, 80, true, "Pass: no NetworkPolicy isolates db, so allowed")
	require.NoError(t, ce.dyn.Resource(ClusterNetworkPolicyResource).Delete(bg, "pass-dev", metav1.DeleteOptions{}))
	ce.env.eventually(ipFrontend, ipDB, 80, false, "the Pass is gone: denied again")
}

func TestClusterPoliciesServedAtStartAreInTheFirstSync(t *testing.T) {
	ce := newClusterEnv(t, allServed, nil, makeANP("guard", int64(5)), makeCNP("tiered"))
	ce.start()
	ce.waitReady()
	// Ready means the first Sync is done; it ran after the cluster-wide
	// informers synced, so their objects were in the engine before it.
	calls := ce.rec.took()
	assert.Contains(t, calls, "upsert AdminNetworkPolicy guard")
	assert.Contains(t, calls, "upsert ClusterNetworkPolicy tiered")
}

func TestClusterPoliciesDiscoveryFailureAtStart(t *testing.T) {
	ce := newClusterEnv(t, allServed, nil, makeANP("guard", int64(5)))
	ce.discovery.set(allServed, errors.New("connection refused"))
	ce.start()
	time.Sleep(100 * time.Millisecond)
	assert.False(t, ce.c.Ready(), "ready before discovery could tell whether cluster-wide policies exist")
	assert.Zero(t, ce.backend.syncs.Load(), "nothing programmed without the cluster-wide policies")
	ce.discovery.set(allServed, nil)
	ce.waitReady()
	assert.Contains(t, ce.rec.took(), "upsert AdminNetworkPolicy guard")
}

func TestClusterPoliciesDiscoveryFailureLaterChangesNothing(t *testing.T) {
	ce := newClusterEnv(t, allServed, nil)
	ce.start()
	ce.waitReady()
	ce.discovery.set(nil, errors.New("timeout"))
	asked := func() int { ce.discovery.mu.Lock(); defer ce.discovery.mu.Unlock(); return ce.discovery.asked }
	n := asked()
	ce.eventually(func() bool { return asked() >= n+3 }, "discovery not polled")
	assert.Len(t, ce.c.cluster.watched(), 3, "a failed discovery stops nothing")
}

func TestClusterPolicyEvents(t *testing.T) {
	ce := newClusterEnv(t, allServed, nil)
	ce.start()
	ce.waitReady()

	ce.create(AdminNetworkPolicyResource, makeANP("invalid", int64(5)))
	ce.eventually(ce.rec.has("upsert AdminNetworkPolicy invalid"), "never reached the engine")
	select {
	case ev := <-ce.events.Events:
		assert.True(t, strings.HasPrefix(ev, "Warning "+EventReasonInvalidAdminNetworkPolicy+" "), ev)
		assert.Contains(t, ev, "spec.priority", "the event names the field")
	case <-time.After(5 * time.Second):
		t.Fatal("no event recorded")
	}

	// An object the typed API cannot represent is not passed on.
	ce.create(AdminNetworkPolicyResource, makeANP("unreadable", "high"))
	select {
	case ev := <-ce.events.Events:
		assert.True(t, strings.HasPrefix(ev, "Warning "+EventReasonInvalidAdminNetworkPolicy+" "), ev)
		assert.Contains(t, ev, "cannot be read")
		assert.Contains(t, ev, "unreadable")
	case <-time.After(5 * time.Second):
		t.Fatal("no event recorded")
	}
	assert.NotContains(t, ce.rec.took(), "upsert AdminNetworkPolicy unreadable")
	ce.metrics.do(func() { assert.Equal(t, 2, ce.metrics.errors[ErrorInvalidPolicy]) })
}

func TestNodesWatchedWithClusterPolicies(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"zone": "a"},
			Annotations: map[string]string{"big": strings.Repeat("x", 100)}},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.0.1"}},
			Images:    []corev1.ContainerImage{{Names: []string{"registry/image:1"}}},
		},
	}
	ce := newClusterEnv(t, nil, []runtime.Object{node})
	ce.start()
	ce.waitReady()
	assert.Contains(t, ce.rec.took(), "upsert Node node-a", "Nodes are in the first Sync")
	ce.rec.mu.Lock()
	got := ce.rec.nodes["node-a"]
	ce.rec.mu.Unlock()
	assert.Equal(t, map[string]string{"zone": "a"}, got.Labels)
	assert.Equal(t, node.Status.Addresses, got.Status.Addresses)
	assert.Empty(t, got.Status.Images, "the cache keeps only what the engine reads")
	assert.Empty(t, got.Annotations)

	require.NoError(t, ce.client.CoreV1().Nodes().Delete(bg, "node-a", metav1.DeleteOptions{}))
	ce.eventually(ce.rec.has("delete Node node-a"), "a Node delete never reached the engine")
}

func TestNoClusterPoliciesWithoutDynamic(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.waitReady()
	assert.Nil(t, e.c.cluster)
	for _, a := range e.client.Actions() {
		assert.NotEqual(t, "nodes", a.GetResource().Resource, "Nodes are read only for cluster-wide policies")
	}
}

func TestClusterPolicyPollMustNotBeNegative(t *testing.T) {
	_, err := New(Config{Client: newEnv(t, nil).client, Engine: policy.New(policy.Config{}),
		Backend: newCountingBackend(), ClusterPolicyPoll: -time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ClusterPolicyPoll")
}

// hungDiscovery never answers until released, like an API server that
// accepts connections and sends nothing.
type hungDiscovery struct{ release chan struct{} }

func (h hungDiscovery) ServerResourcesForGroupVersion(string) (*metav1.APIResourceList, error) {
	<-h.release
	return nil, errors.New("connection closed")
}

func TestRunEndsWhileDiscoveryHangs(t *testing.T) {
	ce := newClusterEnv(t, allServed, nil)
	hung := hungDiscovery{release: make(chan struct{})}
	t.Cleanup(func() { close(hung.release) })
	ce.c.cluster.discovery = hung
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ce.c.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended while discovery hangs")
	}
	assert.False(t, ce.c.Ready())
}
