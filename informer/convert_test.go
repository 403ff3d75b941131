package informer

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/yaml"
)

func anpFromYAML(t *testing.T, spec string) *unstructured.Unstructured {
	t.Helper()
	var s map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(spec), &s))
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
		"metadata": map[string]any{"name": "p"}, "spec": s,
	}}
}

func TestConvertV1alpha1Peers(t *testing.T) {
	tests := []struct {
		name      string
		spec      string
		wantPeers string // the converted rule 0's peers, as JSON
		wantNotes int
		wantErr   string
	}{
		{
			name:      "v0.1.x namespaces peer",
			spec:      "{priority: 1, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {namespaceSelector: {matchLabels: {a: b}}}}]}]}",
			wantPeers: `[{"namespaces":{"matchLabels":{"a":"b"}}}]`,
		},
		{
			name:      "v0.1.x pods peer",
			spec:      "{priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{pods: {namespaces: {namespaceSelector: {}}, podSelector: {matchLabels: {p: q}}}}]}]}",
			wantPeers: `[{"pods":{"namespaceSelector":{},"podSelector":{"matchLabels":{"p":"q"}}}}]`,
		},
		{
			name:      "current shape is kept",
			spec:      "{priority: 1, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {matchLabels: {a: b}}}, {pods: {namespaceSelector: {}, podSelector: {}}}]}]}",
			wantPeers: `[{"namespaces":{"matchLabels":{"a":"b"}}},{"pods":{"namespaceSelector":{},"podSelector":{}}}]`,
		},
		{
			name:      "sameLabels in an Allow rule: the peer is dropped",
			spec:      "{priority: 1, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {sameLabels: [team]}}, {namespaces: {namespaceSelector: {}}}]}]}",
			wantPeers: `[{"namespaces":{}}]`,
			wantNotes: 1,
		},
		{
			name:      "notSameLabels in a Deny rule: every namespace",
			spec:      "{priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{pods: {namespaces: {notSameLabels: [team]}, podSelector: {matchLabels: {p: q}}}}]}]}",
			wantPeers: `[{"pods":{"namespaceSelector":{},"podSelector":{"matchLabels":{"p":"q"}}}}]`,
			wantNotes: 1,
		},
		{
			name:    "sameLabels in a Pass rule: refused",
			spec:    "{priority: 1, subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {sameLabels: [team]}}]}]}",
			wantErr: "spec.ingress[0].from[0]: sameLabels/notSameLabels in a Pass rule",
		},
		{
			name:    "unknown field: refused, never read as an empty selector",
			spec:    "{priority: 1, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {matchLabel: {a: b}}}]}]}",
			wantErr: `unknown field "matchLabel"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := anpFromYAML(t, tc.spec)
			before := u.DeepCopy()
			var got *v1alpha1.AdminNetworkPolicy
			notes, err := convertThen(u, true, &v1alpha1.AdminNetworkPolicy{}, func(p *v1alpha1.AdminNetworkPolicy) error { got = p; return nil })
			assert.Equal(t, before, u, "the cached object is never modified")
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, errConversion)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Nil(t, got, "not passed to the engine")
				return
			}
			require.NoError(t, err)
			assert.Len(t, notes, tc.wantNotes)
			var peers any
			if len(got.Spec.Ingress) > 0 {
				peers = got.Spec.Ingress[0].From
			} else {
				peers = got.Spec.Egress[0].To
			}
			b, err := json.Marshal(peers)
			require.NoError(t, err)
			assert.JSONEq(t, tc.wantPeers, string(b))
		})
	}
}

// TestDecodeExported checks the exported decoders the controller's
// conversion is shared through: the same result and the same refusals.
func TestDecodeExported(t *testing.T) {
	u := anpFromYAML(t, "{priority: 3, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {namespaceSelector: {matchLabels: {a: b}}}}]}]}")
	p, notes, err := DecodeAdminNetworkPolicy(u)
	require.NoError(t, err)
	assert.Empty(t, notes)
	assert.Equal(t, "p", p.Name)
	assert.Equal(t, map[string]string{"a": "b"}, p.Spec.Ingress[0].From[0].Namespaces.MatchLabels)

	bad := anpFromYAML(t, "{priority: 3, subject: {namespaces: {}}, ingres: []}")
	bad.SetKind("BaselineAdminNetworkPolicy")
	_, _, err = DecodeBaselineAdminNetworkPolicy(bad)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrConversion)
	assert.Contains(t, err.Error(), `BaselineAdminNetworkPolicy p: `)
	assert.Contains(t, err.Error(), `unknown field "ingres"`)

	cnp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
		"metadata": map[string]any{"name": "c"}, "spec": map[string]any{"tier": "Admin", "priority": int64(1), "subject": map[string]any{"namespaces": map[string]any{}}},
	}}
	got, _, err := DecodeClusterNetworkPolicy(cnp)
	require.NoError(t, err)
	assert.Equal(t, "c", got.Name)
}

func TestServedClusterPolicyKinds(t *testing.T) {
	d := &fakeDiscovery{served: map[string][]string{"policy.networking.k8s.io/v1alpha1": {"adminnetworkpolicies"}}}
	served, err := ServedClusterPolicyKinds(d)
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"AdminNetworkPolicy": true}, served)
	assert.Equal(t, 2, d.asked, "one question per group version")
	d.set(allServed, nil)
	served, err = ServedClusterPolicyKinds(d)
	require.NoError(t, err)
	assert.Len(t, served, 3)
	d.set(nil, errors.New("connection refused"))
	_, err = ServedClusterPolicyKinds(d)
	assert.ErrorContains(t, err, "discovery of policy.networking.k8s.io/v1alpha1: connection refused")
}
