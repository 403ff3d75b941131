package policytest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// clusterRecorder is a recorder that takes cluster-wide policies and nodes.
type clusterRecorder struct{ recorder }

func (r *clusterRecorder) UpsertAdminNetworkPolicy(p *v1alpha1.AdminNetworkPolicy) error {
	r.calls = append(r.calls, "upsert AdminNetworkPolicy "+p.Name)
	return nil
}
func (r *clusterRecorder) DeleteAdminNetworkPolicy(name string) {
	r.calls = append(r.calls, "delete AdminNetworkPolicy "+name)
}
func (r *clusterRecorder) UpsertBaselineAdminNetworkPolicy(p *v1alpha1.BaselineAdminNetworkPolicy) error {
	r.calls = append(r.calls, "upsert BaselineAdminNetworkPolicy "+p.Name)
	return nil
}
func (r *clusterRecorder) DeleteBaselineAdminNetworkPolicy(name string) {
	r.calls = append(r.calls, "delete BaselineAdminNetworkPolicy "+name)
}
func (r *clusterRecorder) UpsertClusterNetworkPolicy(p *v1beta1.ClusterNetworkPolicy) error {
	r.calls = append(r.calls, "upsert ClusterNetworkPolicy "+p.Name)
	return nil
}
func (r *clusterRecorder) DeleteClusterNetworkPolicy(name string) {
	r.calls = append(r.calls, "delete ClusterNetworkPolicy "+name)
}
func (r *clusterRecorder) UpsertNode(n *corev1.Node) {
	r.calls = append(r.calls, "upsert Node "+n.Name)
}
func (r *clusterRecorder) DeleteNode(name string) { r.calls = append(r.calls, "delete Node "+name) }

func TestLoadClusterObjects(t *testing.T) {
	prev := NewCluster()
	prev.SetNode(Node("n1", nil, "192.168.0.1"))
	prev.SetAdminNetworkPolicy(ANP("a1", "priority: 1"))
	prev.SetClusterNetworkPolicy(CNP("c1", "tier: Admin\npriority: 1"))
	next := prev.Clone()
	next.DeleteNode("n1")
	next.SetNode(Node("n2", map[string]string{"k": "v"}))
	next.DeleteAdminNetworkPolicy("a1")
	next.SetBaselineAdminNetworkPolicy(BANP("default", ""))
	next.SetClusterNetworkPolicy(CNP("c1", "tier: Admin\npriority: 2"))
	assert.True(t, next.HasClusterObjects())
	assert.False(t, NewCluster().HasClusterObjects())

	var r clusterRecorder
	require.NoError(t, Load(&r, prev, next))
	assert.Equal(t, []string{
		"upsert Node n2",
		"upsert BaselineAdminNetworkPolicy default",
		"upsert ClusterNetworkPolicy c1",
		"delete AdminNetworkPolicy a1",
		"delete Node n1",
	}, r.calls)
	assert.Equal(t, int32(2), next.ClusterNetworkPolicy("c1").Spec.Priority)
	assert.Equal(t, int32(1), prev.ClusterNetworkPolicy("c1").Spec.Priority, "clones are independent")
	next.DeleteBaselineAdminNetworkPolicy("default")
	next.DeleteClusterNetworkPolicy("c1")
	assert.Len(t, Changes(prev, next), 4, "upsert n2; delete c1, a1, n1")

	// A plain Loader cannot take them.
	err := Load(&recorder{}, nil, prev)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "upsert Node n1: the loader takes no cluster-wide policies or nodes")
}

func TestClusterPolicyYAML(t *testing.T) {
	cnp := CNP("c", `
		tier: Baseline
		priority: 3
		subject: {namespaces: {matchLabels: {ns: "y"}}}
		egress:
		- name: out
		  action: Deny
		  to: [{networks: [10.0.0.0/8]}]`)
	assert.Equal(t, v1beta1.BaselineTier, cnp.Spec.Tier)
	assert.Equal(t, "y", cnp.Spec.Subject.Namespaces.MatchLabels["ns"])
	require.Len(t, cnp.Spec.Egress, 1)
	assert.Equal(t, []v1beta1.CIDR{"10.0.0.0/8"}, cnp.Spec.Egress[0].To[0].Networks)
	assert.Panics(t, func() { ANP("bad", "priority: 1\nsubjekt: {}") }, "unknown fields are errors")
	n := Node("n", map[string]string{"a": "b"}, "10.0.0.1", "fd00::1")
	assert.Len(t, n.Status.Addresses, 2)
}
