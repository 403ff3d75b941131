package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"

	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

func logsAllowed(t *testing.T, snap *ir.Snapshot) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, rl := range snap.RuleLists {
		out[rl.Origin.String()+" "+string(rl.Direction)] = rl.LogAllowed
	}
	return out
}

// The log-allowed annotation on a policy marks its lists; on a Namespace,
// the lists of its NetworkPolicies; removing it unmarks them; every change
// reaches the delta, and the deltas sum to the snapshot.
func TestLogAllowedAnnotation(t *testing.T) {
	e := policy.New(policy.Config{})
	base := e.Checkpoint()
	apply := func() *ir.Snapshot {
		t.Helper()
		d := e.Delta()
		require.NoError(t, base.Apply(d))
		snap := e.Snapshot()
		assert.Equal(t, snap, base, "the sum of the deltas is the snapshot")
		return snap
	}
	annotate := func(on bool) map[string]string {
		if on {
			return map[string]string{policy.LogAllowedAnnotation: "true"}
		}
		return map[string]string{policy.LogAllowedAnnotation: "yes"} // not "true": off
	}
	require.NoError(t, e.UpsertPod(pod("shop", "web", map[string]string{"app": "web"}, "10.0.0.1")))
	np := func(name string, on bool) {
		p := pt.NetworkPolicy("shop", name, pt.WithPodSelector(pt.MatchLabels(nil)))
		p.Annotations = annotate(on)
		require.NoError(t, e.UpsertNetworkPolicy(p))
	}
	np("a", true)
	np("b", false)
	anp := &v1alpha1.AdminNetworkPolicy{}
	anp.Name = "guard"
	anp.Annotations = annotate(true)
	anp.Spec.Priority = 10
	anp.Spec.Subject.Namespaces = pt.MatchLabels(nil)
	anp.Spec.Ingress = []v1alpha1.AdminNetworkPolicyIngressRule{{Name: "deny", Action: v1alpha1.AdminNetworkPolicyRuleActionDeny,
		From: []v1alpha1.AdminNetworkPolicyIngressPeer{{Namespaces: pt.MatchLabels(nil)}}}}
	require.NoError(t, e.UpsertAdminNetworkPolicy(anp))
	assert.Equal(t, map[string]bool{
		"NetworkPolicy/shop/a Ingress": true, "NetworkPolicy/shop/b Ingress": false, "AdminNetworkPolicy/guard Ingress": true,
	}, logsAllowed(t, apply()))

	ns := pt.Namespace("shop", nil)
	ns.Annotations = annotate(true)
	e.UpsertNamespace(ns)
	assert.Equal(t, map[string]bool{
		"NetworkPolicy/shop/a Ingress": true, "NetworkPolicy/shop/b Ingress": true, "AdminNetworkPolicy/guard Ingress": true,
	}, logsAllowed(t, apply()), "the namespace's annotation marks its NetworkPolicies")

	np("a", false)
	e.DeleteNamespace("shop")
	assert.Equal(t, map[string]bool{
		"NetworkPolicy/shop/a Ingress": false, "NetworkPolicy/shop/b Ingress": false, "AdminNetworkPolicy/guard Ingress": true,
	}, logsAllowed(t, apply()))

	e.UpsertNamespace(ns)
	np("c", false)
	assert.Equal(t, map[string]bool{
		"NetworkPolicy/shop/a Ingress": true, "NetworkPolicy/shop/b Ingress": true, "NetworkPolicy/shop/c Ingress": true,
		"AdminNetworkPolicy/guard Ingress": true,
	}, logsAllowed(t, apply()), "a policy added to an annotated namespace")
}
