package policy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

func TestInvalidPoliciesIsolateAndAllowNothing(t *testing.T) {
	sctpLike := corev1.Protocol("ICMP")
	port := func(p intstr.IntOrString) *intstr.IntOrString { return &p }
	i32 := func(n int32) *int32 { return &n }
	allowAll := func(tweak func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
		np := pt.NetworkPolicy("x", "bad", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "server"})),
			pt.WithIngress(pt.IngressRule()))
		tweak(np)
		return np
	}
	withPeer := func(pe networkingv1.NetworkPolicyPeer) func(*networkingv1.NetworkPolicy) {
		return func(np *networkingv1.NetworkPolicy) {
			np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}, {From: []networkingv1.NetworkPolicyPeer{pe}}}
		}
	}
	withPort := func(p networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
		return func(np *networkingv1.NetworkPolicy) {
			np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}, {Ports: []networkingv1.NetworkPolicyPort{p}}}
		}
	}
	for _, tc := range []struct {
		name string
		np   *networkingv1.NetworkPolicy
		// fields must each appear in the error.
		fields []string
		// wholeNamespace: an invalid pod selector selects every pod of the
		// namespace.
		wholeNamespace bool
	}{
		{
			name: "bad selector operator",
			np: allowAll(withPeer(networkingv1.NetworkPolicyPeer{PodSelector: pt.MatchExpressions(
				metav1.LabelSelectorRequirement{Key: "app", Operator: "Near", Values: []string{"a"}})})),
			fields: []string{"spec.ingress[1].from[0].podSelector.matchExpressions[0].operator"},
		},
		{
			name: "bad namespace selector values",
			np: allowAll(withPeer(networkingv1.NetworkPolicyPeer{NamespaceSelector: pt.MatchExpressions(
				metav1.LabelSelectorRequirement{Key: "team", Operator: metav1.LabelSelectorOpIn})})),
			fields: []string{"spec.ingress[1].from[0].namespaceSelector.matchExpressions[0].values"},
		},
		{
			name:   "bad CIDR",
			np:     allowAll(withPeer(pt.IPBlockPeer("10.0.0.0/33"))),
			fields: []string{"spec.ingress[1].from[0].ipBlock.cidr"},
		},
		{
			name:   "except outside its cidr",
			np:     allowAll(withPeer(pt.IPBlockPeer("10.0.0.0/16", "10.1.0.0/24"))),
			fields: []string{"spec.ingress[1].from[0].ipBlock.except[0]"},
		},
		{
			name:   "except equal to its cidr",
			np:     allowAll(withPeer(pt.IPBlockPeer("10.0.0.0/16", "10.0.0.0/16"))),
			fields: []string{"spec.ingress[1].from[0].ipBlock.except[0]"},
		},
		{
			name:   "except of the other family",
			np:     allowAll(withPeer(pt.IPBlockPeer("10.0.0.0/8", "fd00::/64"))),
			fields: []string{"spec.ingress[1].from[0].ipBlock.except[0]"},
		},
		{
			name:   "ipBlock with a selector",
			np:     allowAll(withPeer(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}, PodSelector: &metav1.LabelSelector{}})),
			fields: []string{"spec.ingress[1].from[0]"},
		},
		{
			name:   "empty peer",
			np:     allowAll(withPeer(networkingv1.NetworkPolicyPeer{})),
			fields: []string{"spec.ingress[1].from[0]"},
		},
		{
			name:   "port out of range",
			np:     allowAll(withPort(networkingv1.NetworkPolicyPort{Port: port(intstr.FromInt32(70000))})),
			fields: []string{"spec.ingress[1].ports[0].port"},
		},
		{
			name:   "port zero",
			np:     allowAll(withPort(networkingv1.NetworkPolicyPort{Port: port(intstr.FromInt32(0))})),
			fields: []string{"spec.ingress[1].ports[0].port"},
		},
		{
			name:   "endPort below port",
			np:     allowAll(withPort(networkingv1.NetworkPolicyPort{Port: port(intstr.FromInt32(80)), EndPort: i32(79)})),
			fields: []string{"spec.ingress[1].ports[0].endPort"},
		},
		{
			name:   "endPort without port",
			np:     allowAll(withPort(networkingv1.NetworkPolicyPort{EndPort: i32(79)})),
			fields: []string{"spec.ingress[1].ports[0].endPort"},
		},
		{
			name:   "endPort with a named port",
			np:     allowAll(withPort(networkingv1.NetworkPolicyPort{Port: port(intstr.FromString("http")), EndPort: i32(90)})),
			fields: []string{"spec.ingress[1].ports[0].endPort"},
		},
		{
			name:   "bad port name",
			np:     allowAll(withPort(networkingv1.NetworkPolicyPort{Port: port(intstr.FromString("Not_A_Name"))})),
			fields: []string{"spec.ingress[1].ports[0].port"},
		},
		{
			name:   "unknown protocol",
			np:     allowAll(withPort(networkingv1.NetworkPolicyPort{Protocol: &sctpLike})),
			fields: []string{"spec.ingress[1].ports[0].protocol"},
		},
		{
			name: "unknown policy type",
			np: allowAll(func(np *networkingv1.NetworkPolicy) {
				np.Spec.PolicyTypes = []networkingv1.PolicyType{"Sideways"}
			}),
			fields: []string{"spec.policyTypes[0]"},
		},
		{
			name: "several problems are all reported",
			np: allowAll(func(np *networkingv1.NetworkPolicy) {
				np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{pt.IPBlockPeer("nonsense")},
					Ports: []networkingv1.NetworkPolicyPort{{Port: port(intstr.FromInt32(-1))}},
				}}
				np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{pt.IPBlockPeer("10.0.0.0/8", "11.0.0.0/16")}}}
			}),
			fields: []string{"spec.ingress[0].from[0].ipBlock.cidr", "spec.ingress[0].ports[0].port", "spec.egress[0].to[0].ipBlock.except[0]"},
		},
		{
			name: "bad pod selector selects the whole namespace",
			np: allowAll(func(np *networkingv1.NetworkPolicy) {
				np.Spec.PodSelector = *pt.MatchExpressions(metav1.LabelSelectorRequirement{Key: "app", Operator: metav1.LabelSelectorOpExists, Values: []string{"x"}})
			}),
			fields:         []string{"spec.podSelector.matchExpressions[0].values"},
			wholeNamespace: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, policy.Config{})
			require.NoError(t, w.add(
				pod("x", "server", map[string]string{"app": "server"}, "10.0.0.1"),
				pod("x", "other", map[string]string{"app": "other"}, "10.0.0.2"),
				pod("y", "client", nil, "10.0.1.1"),
			))
			err := w.add(tc.np)
			require.Error(t, err)
			ve, ok := policy.AsValidationError(err)
			require.True(t, ok, "error is a *ValidationError: %v", err)
			assert.Equal(t, "NetworkPolicy", ve.Kind)
			assert.Equal(t, "x", ve.Namespace)
			assert.Equal(t, "bad", ve.Name)
			assert.Contains(t, err.Error(), "NetworkPolicy x/bad")
			for _, f := range tc.fields {
				assert.Contains(t, err.Error(), f)
			}
			assert.Len(t, ve.Errs, len(tc.fields), "every problem, once: %v", err)

			// It isolates the pods it selects and opens nothing.
			assert.False(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 80), "the selected pod is isolated")
			assert.False(t, w.allowed("10.0.0.2", "10.0.0.1", ir.UDP, 53))
			assert.Equal(t, !tc.wholeNamespace, w.allowed("10.0.1.1", "10.0.0.2", ir.TCP, 80), "other pods of the namespace")
			if probs := w.e.Problems(); assert.Len(t, probs, 1) {
				assert.Equal(t, ve, probs[0])
			}

			// Fixing it restores its rules and clears the problem.
			require.NoError(t, w.add(allowAll(func(*networkingv1.NetworkPolicy) {})))
			assert.True(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 80))
			assert.Empty(t, w.e.Problems())
		})
	}
}

func TestInvalidPolicyDoesNotAffectOthers(t *testing.T) {
	w := newWorld(t, policy.Config{})
	require.NoError(t, w.add(
		pod("x", "server", map[string]string{"app": "server"}, "10.0.0.1"),
		pod("y", "client", nil, "10.0.1.1"),
		pt.NetworkPolicy("x", "good", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "server"})),
			pt.WithIngress(pt.IngressRule(pt.Ports(pt.Port(80))))),
	))
	require.Error(t, w.add(pt.NetworkPolicy("x", "bad", pt.WithPodSelector(pt.MatchLabels(map[string]string{"app": "server"})),
		pt.WithIngress(pt.IngressRule(pt.Peers(pt.IPBlockPeer("300.0.0.0/8")))))))
	assert.True(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 80), "the valid policy still allows")
	assert.False(t, w.allowed("10.0.1.1", "10.0.0.1", ir.TCP, 81))
	w.e.DeleteNetworkPolicy("x", "bad")
	assert.Empty(t, w.e.Problems())
}

func TestPodWithBadIPIsReported(t *testing.T) {
	e := policy.New(policy.Config{})
	err := e.UpsertPod(pt.Pod("x", "a", pt.WithIPs("10.0.0.1", "not-an-ip")))
	ve, ok := policy.AsValidationError(err)
	require.True(t, ok, "error is a *ValidationError: %v", err)
	assert.Equal(t, []string{"Pod", "x", "a"}, []string{ve.Kind, ve.Namespace, ve.Name})
	require.Len(t, ve.Errs, 1)
	assert.Equal(t, "status.podIPs[1].ip", ve.Errs[0].Field)
	assert.True(t, strings.Contains(err.Error(), "Pod x/a") && strings.Contains(err.Error(), "status.podIPs[1].ip"), "the message names object and field: %v", err)
	snap := e.Snapshot()
	require.Len(t, snap.Endpoints, 1, "the pod is applied with its valid address")
	assert.Equal(t, "10.0.0.1", snap.Endpoints[0].IPs[0].String())
}
