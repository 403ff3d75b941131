package manifest_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// recorder is an Engine that logs every change it is fed before passing it
// on to a real engine.
type recorder struct {
	policy.Engine
	calls []string
}

func (r *recorder) UpsertNamespace(ns *corev1.Namespace) {
	r.calls = append(r.calls, "upsert Namespace "+ns.Name)
	r.Engine.UpsertNamespace(ns)
}

func (r *recorder) DeleteNamespace(name string) {
	r.calls = append(r.calls, "delete Namespace "+name)
	r.Engine.DeleteNamespace(name)
}

func (r *recorder) UpsertPod(p *corev1.Pod) error {
	r.calls = append(r.calls, "upsert Pod "+p.Namespace+"/"+p.Name)
	return r.Engine.UpsertPod(p)
}

func (r *recorder) DeletePod(ns, name string) {
	r.calls = append(r.calls, "delete Pod "+ns+"/"+name)
	r.Engine.DeletePod(ns, name)
}

func (r *recorder) UpsertNetworkPolicy(np *networkingv1.NetworkPolicy) error {
	r.calls = append(r.calls, "upsert NetworkPolicy "+np.Namespace+"/"+np.Name)
	return r.Engine.UpsertNetworkPolicy(np)
}

func (r *recorder) DeleteNetworkPolicy(ns, name string) {
	r.calls = append(r.calls, "delete NetworkPolicy "+ns+"/"+name)
	r.Engine.DeleteNetworkPolicy(ns, name)
}

func (r *recorder) UpsertNode(n *corev1.Node) {
	r.calls = append(r.calls, "upsert Node "+n.Name)
	r.Engine.UpsertNode(n)
}

func (r *recorder) DeleteNode(name string) {
	r.calls = append(r.calls, "delete Node "+name)
	r.Engine.DeleteNode(name)
}

func (r *recorder) UpsertAdminNetworkPolicy(p *v1alpha1.AdminNetworkPolicy) error {
	r.calls = append(r.calls, "upsert AdminNetworkPolicy "+p.Name)
	return r.Engine.UpsertAdminNetworkPolicy(p)
}

func (r *recorder) DeleteAdminNetworkPolicy(name string) {
	r.calls = append(r.calls, "delete AdminNetworkPolicy "+name)
	r.Engine.DeleteAdminNetworkPolicy(name)
}

func (r *recorder) UpsertBaselineAdminNetworkPolicy(p *v1alpha1.BaselineAdminNetworkPolicy) error {
	r.calls = append(r.calls, "upsert BaselineAdminNetworkPolicy "+p.Name)
	return r.Engine.UpsertBaselineAdminNetworkPolicy(p)
}

func (r *recorder) DeleteBaselineAdminNetworkPolicy(name string) {
	r.calls = append(r.calls, "delete BaselineAdminNetworkPolicy "+name)
	r.Engine.DeleteBaselineAdminNetworkPolicy(name)
}

func (r *recorder) UpsertClusterNetworkPolicy(p *v1beta1.ClusterNetworkPolicy) error {
	r.calls = append(r.calls, "upsert ClusterNetworkPolicy "+p.Name)
	return r.Engine.UpsertClusterNetworkPolicy(p)
}

func (r *recorder) DeleteClusterNetworkPolicy(name string) {
	r.calls = append(r.calls, "delete ClusterNetworkPolicy "+name)
	r.Engine.DeleteClusterNetworkPolicy(name)
}

func (r *recorder) take() []string {
	c := r.calls
	r.calls = nil
	return c
}

func pod(ns, name, role, ip string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {role: %s}}\nstatus: {phase: Running, podIP: %q}\n---\n", name, ns, role, ip)
}

func dbPolicy(port int) string {
	return fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-in, namespace: shop}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: shop}}, podSelector: {matchLabels: {role: web}}}]
    ports: [{port: %d}]
---
`, port)
}

const (
	nsShop = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: shop}}\n---\n"
	nsGone = "apiVersion: v1\nkind: Namespace\nmetadata: {name: gone}\n---\n"
	npOld  = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: old, namespace: shop}\nspec: {podSelector: {}, policyTypes: [Egress]}\n---\n"
)

func loadString(t *testing.T, content string) *manifest.State {
	t.Helper()
	dir := writeFiles(t, map[string]string{"state.yaml": content})
	st, err := manifest.Load(filepath.Join(dir, "state.yaml"))
	require.NoError(t, err)
	return st
}

// snapshotCmp compares engine snapshots whatever their generation.
var snapshotCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmpopts.IgnoreFields(ir.Snapshot{}, "Generation"),
	cmpopts.EquateEmpty(),
}

func fresh(t *testing.T, st *manifest.State) *ir.Snapshot {
	t.Helper()
	e := policy.New(policy.Config{})
	pods, nps := manifest.Apply(e, nil, st)
	require.Empty(t, pods)
	require.Empty(t, nps)
	return e.Snapshot()
}

func TestApply(t *testing.T) {
	one := loadString(t, nsShop+nsGone+
		pod("shop", "web", "web", "10.0.0.1")+pod("shop", "db", "db", "10.0.0.2")+pod("gone", "x", "web", "10.0.0.3")+
		dbPolicy(6379)+npOld)
	// two: shop's labels change, a pod appears, one goes with its
	// namespace, one policy changes and one goes.
	two := loadString(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: shop, env: prod}}\n---\n"+
		pod("shop", "web", "web", "10.0.0.1")+pod("shop", "db", "db", "10.0.0.2")+pod("shop", "api", "web", "10.0.0.4")+
		dbPolicy(6380))

	e := &recorder{Engine: policy.New(policy.Config{})}
	pods, nps := manifest.Apply(e, nil, one)
	assert.Empty(t, pods)
	assert.Empty(t, nps)
	assert.Equal(t, []string{
		"upsert Namespace gone", "upsert Namespace shop",
		"upsert Pod gone/x", "upsert Pod shop/db", "upsert Pod shop/web",
		"upsert NetworkPolicy shop/db-in", "upsert NetworkPolicy shop/old",
	}, e.take())
	if diff := cmp.Diff(fresh(t, one), e.Snapshot(), snapshotCmp); diff != "" {
		t.Fatalf("state one (-fresh +applied):\n%s", diff)
	}
	assert.Len(t, e.Snapshot().Endpoints, 3, "every pod is local with Config{}")

	manifest.Apply(e, one, one)
	assert.Empty(t, e.take(), "no difference, no events")

	manifest.Apply(e, one, two)
	assert.Equal(t, []string{
		"upsert Namespace shop",
		"upsert Pod shop/api",
		"upsert NetworkPolicy shop/db-in",
		"delete NetworkPolicy shop/old",
		"delete Pod gone/x",
		"delete Namespace gone",
	}, e.take())
	got := e.Snapshot()
	if diff := cmp.Diff(fresh(t, two), got, snapshotCmp); diff != "" {
		t.Fatalf("state two (-fresh +incremental):\n%s", diff)
	}

	// The flows follow: web and the new api pod reach db on 6380 only.
	mem := memory.New(memory.Config{})
	_, err := mem.Sync(context.Background(), got)
	require.NoError(t, err)
	web, api, db := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.4"), netip.MustParseAddr("10.0.0.2")
	assert.True(t, mem.Evaluate(memory.Flow{Src: web, Dst: db, Protocol: ir.TCP, Port: 6380}).Allowed)
	assert.True(t, mem.Evaluate(memory.Flow{Src: api, Dst: db, Protocol: ir.TCP, Port: 6380}).Allowed)
	assert.False(t, mem.Evaluate(memory.Flow{Src: web, Dst: db, Protocol: ir.TCP, Port: 6379}).Allowed)
	assert.True(t, mem.Evaluate(memory.Flow{Src: db, Dst: web, Protocol: ir.TCP, Port: 1}).Allowed, "shop/old (egress isolation) is gone")

	// Back to nothing: every object is deleted.
	manifest.Apply(e, two, &manifest.State{})
	assert.ElementsMatch(t, []string{
		"delete NetworkPolicy shop/db-in",
		"delete Pod shop/api", "delete Pod shop/db", "delete Pod shop/web",
		"delete Namespace shop",
	}, e.take())
	assert.Empty(t, e.Snapshot().Endpoints)
	assert.Empty(t, e.Snapshot().RuleLists)
}

func TestApplyProblems(t *testing.T) {
	st := loadString(t, nsShop+
		pod("shop", "bad-ip", "web", "10.0.0.999")+pod("shop", "db", "db", "10.0.0.2")+
		`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: shop}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/33}}]
    ports: [{port: 70000}]
---
`+dbPolicy(6379))
	e := policy.New(policy.Config{})
	pods, nps := manifest.Apply(e, nil, st)

	require.Len(t, pods, 1)
	assert.Equal(t, st.Source("Pod", "shop", "bad-ip"), pods[0].Source)
	assert.Contains(t, pods[0].Error(), pods[0].Source+": ")
	assert.Contains(t, pods[0].Error(), "shop/bad-ip")
	assert.Contains(t, pods[0].Error(), "10.0.0.999")

	require.Len(t, nps, 1)
	assert.Equal(t, st.Source("NetworkPolicy", "shop", "bad"), nps[0].Source)
	ve, ok := policy.AsValidationError(nps[0].Err)
	require.True(t, ok, "the engine's error is kept: %v", nps[0].Err)
	assert.Equal(t, "bad", ve.Name)
	msg := nps[0].Error()
	for _, w := range []string{"state.yaml#4", "NetworkPolicy shop/bad", "spec.ingress[0].from[0].ipBlock.cidr", "spec.ingress[0].ports[0].port"} {
		assert.Contains(t, msg, w)
	}

	// Unchanged objects are not fed again, so their problems are not
	// reported again.
	pods, nps = manifest.Apply(e, st, st)
	assert.Empty(t, pods)
	assert.Empty(t, nps)
}

func cnp(name string, priority int) string {
	return fmt.Sprintf(`apiVersion: policy.networking.k8s.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: %s}
spec:
  tier: Admin
  priority: %d
  subject: {namespaces: {matchLabels: {team: shop}}}
  ingress:
  - {name: deny-all, action: Deny, from: [{namespaces: {}}]}
---
`, name, priority)
}

func node(name, zone, ip string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata: {name: %s, labels: {zone: %s}}\nstatus: {addresses: [{type: InternalIP, address: %s}]}\n---\n", name, zone, ip)
}

const (
	anp  = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: guard}\nspec: {priority: 3, subject: {namespaces: {}}}\n---\n"
	banp = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec: {subject: {namespaces: {}}}\n---\n"
)

// TestApplyClusterKinds checks that the cluster-scoped kinds are fed as
// upserts and deletes of what changed, deletes after upserts, policies
// before nodes.
func TestApplyClusterKinds(t *testing.T) {
	one := loadString(t, nsShop+node("node-a", "a", "192.168.0.1")+node("node-b", "b", "192.168.0.2")+anp+banp+cnp("c1", 10)+cnp("c2", 20))
	two := loadString(t, nsShop+node("node-a", "z", "192.168.0.1")+banp+cnp("c1", 30)+cnp("c2", 20))

	e := &recorder{Engine: policy.New(policy.Config{})}
	pods, nps := manifest.Apply(e, nil, one)
	assert.Empty(t, pods)
	assert.Empty(t, nps)
	assert.Equal(t, []string{
		"upsert Namespace shop",
		"upsert Node node-a", "upsert Node node-b",
		"upsert AdminNetworkPolicy guard",
		"upsert BaselineAdminNetworkPolicy default",
		"upsert ClusterNetworkPolicy c1", "upsert ClusterNetworkPolicy c2",
	}, e.take())

	manifest.Apply(e, one, one)
	assert.Empty(t, e.take(), "no difference, no events")

	manifest.Apply(e, one, two)
	assert.Equal(t, []string{
		"upsert Node node-a", // its label changed
		"upsert ClusterNetworkPolicy c1",
		"delete AdminNetworkPolicy guard",
		"delete Node node-b",
	}, e.take())
	if diff := cmp.Diff(fresh(t, two), e.Snapshot(), snapshotCmp); diff != "" {
		t.Fatalf("state two (-fresh +incremental):\n%s", diff)
	}

	manifest.Apply(e, two, &manifest.State{})
	assert.Equal(t, []string{
		"delete BaselineAdminNetworkPolicy default",
		"delete ClusterNetworkPolicy c1", "delete ClusterNetworkPolicy c2",
		"delete Node node-a",
		"delete Namespace shop",
	}, e.take())
}
