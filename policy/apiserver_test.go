package policy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

// TestAcceptsWhatTheAPIServerAccepts holds the engine's NetworkPolicy
// validation to the API server's (k8s.io/kubernetes
// pkg/apis/networking/validation, for objects it stores): a policy it
// serves is enforced as written, never as "isolate, allow nothing"; one it
// refuses is reported naming the field.
func TestAcceptsWhatTheAPIServerAccepts(t *testing.T) {
	i32 := func(n int32) *int32 { return &n }
	named := func(s string) *intstr.IntOrString { p := intstr.FromString(s); return &p }
	from := func(peers ...networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
		return pt.NetworkPolicy("x", "np", pt.WithIngress(pt.IngressRule(pt.Peers(peers...))))
	}
	ports := func(ps ...networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
		return pt.NetworkPolicy("x", "np", pt.WithIngress(pt.IngressRule(pt.Ports(ps...))))
	}
	expr := func(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
		return pt.MatchExpressions(metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values})
	}
	types := func(ts ...networkingv1.PolicyType) *networkingv1.NetworkPolicy {
		np := pt.NetworkPolicy("x", "np", pt.WithIngress(pt.IngressRule()))
		np.Spec.PolicyTypes = ts
		return np
	}
	for _, tc := range []struct {
		name  string
		np    *networkingv1.NetworkPolicy
		field string // "" when the API server accepts the policy
	}{
		{"CIDR with leading zeros (legacy form)", from(pt.IPBlockPeer("010.001.000.000/16")), ""},
		{"CIDR length with a leading zero", from(pt.IPBlockPeer("10.1.0.0/016")), ""},
		{"CIDR in interface form", from(pt.IPBlockPeer("10.1.2.3/16")), ""},
		{"expression value the API server stores from older releases", from(pt.PodPeer(expr("app", metav1.LabelSelectorOpIn, "not a value"))), ""},
		{"63-character label key and value", from(pt.PodPeer(pt.MatchLabels(map[string]string{strings.Repeat("k", 63): strings.Repeat("v", 63)}))), ""},
		{"prefixed label key", from(pt.NamespacePeer(pt.MatchLabels(map[string]string{"kubernetes.io/metadata.name": "y"}))), ""},
		{"policyTypes repeated", types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeIngress), ""},
		{"port range to 65535", ports(pt.Port(1, func(p *networkingv1.NetworkPolicyPort) { p.EndPort = i32(65535) })), ""},
		{"15-character port name", ports(networkingv1.NetworkPolicyPort{Port: named("abcdefghijklmno")}), ""},

		{"In without values", from(pt.PodPeer(expr("app", metav1.LabelSelectorOpIn))), "spec.ingress[0].from[0].podSelector.matchExpressions[0].values"},
		{"Exists with values", from(pt.PodPeer(expr("app", metav1.LabelSelectorOpExists, "a"))), "spec.ingress[0].from[0].podSelector.matchExpressions[0].values"},
		{"unknown operator", from(pt.PodPeer(expr("app", "Equals", "a"))), "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator"},
		{"matchLabels value with a space", from(pt.PodPeer(pt.MatchLabels(map[string]string{"app": "a b"}))), "spec.ingress[0].from[0].podSelector.matchLabels"},
		{"64-character matchLabels value", from(pt.PodPeer(pt.MatchLabels(map[string]string{"app": strings.Repeat("v", 64)}))), "spec.ingress[0].from[0].podSelector.matchLabels"},
		{"64-character label name", from(pt.PodPeer(expr(strings.Repeat("k", 64), metav1.LabelSelectorOpExists))), "spec.ingress[0].from[0].podSelector.matchExpressions[0].key"},
		{"upper-case key prefix", from(pt.PodPeer(expr("Example.com/app", metav1.LabelSelectorOpExists))), "spec.ingress[0].from[0].podSelector.matchExpressions[0].key"},
		{"three policyTypes", types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress), "spec.policyTypes"},
		{"unknown policyType", types("Both"), "spec.policyTypes[0]"},
		{"endPort without port", ports(networkingv1.NetworkPolicyPort{EndPort: i32(80)}), "spec.ingress[0].ports[0].endPort"},
		{"16-character port name", ports(networkingv1.NetworkPolicyPort{Port: named("abcdefghijklmnop")}), "spec.ingress[0].ports[0].port"},
		{"CIDR that is no CIDR", from(pt.IPBlockPeer("10.0.0.0")), "spec.ingress[0].from[0].ipBlock.cidr"},
		{"except not a strict subset", from(pt.IPBlockPeer("10.0.0.0/16", "10.0.0.0/8")), "spec.ingress[0].from[0].ipBlock.except[0]"},
		{"empty peer", from(networkingv1.NetworkPolicyPeer{}), "spec.ingress[0].from[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := policy.New(policy.Config{})
			err := e.UpsertNetworkPolicy(tc.np)
			if tc.field == "" {
				require.NoError(t, err)
				for _, rl := range e.Snapshot().RuleLists {
					assert.NotEmpty(t, rl.Rules, "an accepted policy keeps its rules")
				}
				return
			}
			ve, ok := policy.AsValidationError(err)
			require.True(t, ok, "want a validation error, got %v", err)
			assert.Contains(t, ve.Errs.ToAggregate().Error(), tc.field)
		})
	}
}

// TestLegacyCIDRMatchesItsDecimalReading: a CIDR with leading zeros is read
// as the API server's legacy parser reads it (decimal).
func TestLegacyCIDRMatchesItsDecimalReading(t *testing.T) {
	w := newWorld(t, policy.Config{})
	np := pt.NetworkPolicy("x", "np", pt.WithIngress(pt.IngressRule(pt.Peers(pt.IPBlockPeer("010.001.000.000/16")))))
	require.NoError(t, w.add(pod("x", "a", nil, "10.0.0.9"), np))
	assert.True(t, w.allowed("10.1.2.3", "10.0.0.9", ir.TCP, 80))
	assert.False(t, w.allowed("8.1.2.3", "10.0.0.9", ir.TCP, 80))
}
