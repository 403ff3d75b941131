package manifest_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/examples/internal/manifest"
)

const proposeCur = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: shop}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b, namespace: shop}
spec: {podSelector: {}}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-all}
spec: {priority: 5, subject: {namespaces: {}}, ingress: []}
`

func TestPropose(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cur.yaml": proposeCur,
		"new.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b, namespace: shop}
spec: {podSelector: {matchLabels: {x: z}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: c, namespace: shop}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: a
  namespace: shop
  annotations: {netpolctl.palisade.dev/delete: "true"}
`,
	})
	cur, err := manifest.Load(filepath.Join(dir, "cur.yaml"))
	require.NoError(t, err)
	prop, err := manifest.Load(filepath.Join(dir, "new.yaml"))
	require.NoError(t, err)
	del, err := manifest.ParseDelete("adminnetworkpolicy/deny-all")
	require.NoError(t, err)
	next, err := manifest.Propose(cur, prop, map[string]string{del: "--delete adminnetworkpolicy/deny-all"})
	require.NoError(t, err)
	assert.Equal(t, []string{"Namespace/shop", "NetworkPolicy/shop/b", "NetworkPolicy/shop/c"}, keys(next))
	assert.Equal(t, map[string]string{"x": "z"}, next.NetworkPolicies[0].Spec.PodSelector.MatchLabels, "b replaced")
	assert.Equal(t, filepath.Join(dir, "new.yaml")+"#1", next.Source("NetworkPolicy", "shop", "b"))
	assert.Equal(t, filepath.Join(dir, "cur.yaml")+"#1", next.Source("Namespace", "", "shop"))
	assert.Empty(t, next.Source("NetworkPolicy", "shop", "a"))
	assert.Len(t, keys(cur), 4, "cur not modified")
	assert.Empty(t, cur.NetworkPolicies[1].Spec.PodSelector.MatchLabels)

	same, err := manifest.Propose(cur, &manifest.State{}, nil)
	require.NoError(t, err)
	assert.Equal(t, keys(cur), keys(same))
}

func TestProposeErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cur.yaml": proposeCur,
		"bad.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: gone
  namespace: shop
  annotations: {netpolctl.palisade.dev/delete: "true"}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: b
  namespace: shop
  annotations: {netpolctl.palisade.dev/delete: "yes"}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: c, namespace: shop}
spec: {podSelector: {}}
`,
	})
	cur, err := manifest.Load(filepath.Join(dir, "cur.yaml"))
	require.NoError(t, err)
	prop, err := manifest.Load(filepath.Join(dir, "bad.yaml"))
	require.NoError(t, err)
	_, err = manifest.Propose(cur, prop, map[string]string{
		"NetworkPolicy/shop/c":   "--delete NetworkPolicy/shop/c",
		"NetworkPolicy/other/zz": "--delete networkpolicy/other/zz",
	})
	require.Error(t, err)
	bad := filepath.Join(dir, "bad.yaml")
	for _, want := range []string{
		bad + "#1: cannot delete NetworkPolicy/shop/gone: not in the current objects",
		bad + `#2: NetworkPolicy/shop/b: metadata.annotations[netpolctl.palisade.dev/delete]: Invalid value: "yes"`,
		bad + "#3: NetworkPolicy/shop/c is both written and deleted (--delete NetworkPolicy/shop/c)",
		"--delete networkpolicy/other/zz: cannot delete NetworkPolicy/other/zz: not in the current objects",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestParseDelete(t *testing.T) {
	for in, want := range map[string]string{
		"NetworkPolicy/shop/web":       "NetworkPolicy/shop/web",
		"networkpolicy/shop/web":       "NetworkPolicy/shop/web",
		"ClusterNetworkPolicy/x":       "ClusterNetworkPolicy/x",
		"pod/ns/p":                     "Pod/ns/p",
		"NetworkPolicy/web":            `error: --delete "NetworkPolicy/web": want NetworkPolicy/NAMESPACE/NAME`,
		"AdminNetworkPolicy/ns/x":      `error: --delete "AdminNetworkPolicy/ns/x": want AdminNetworkPolicy/NAME (AdminNetworkPolicy is cluster-scoped)`,
		"Deployment/ns/x":              `error: --delete "Deployment/ns/x": kind "Deployment" is not one of Namespace, Pod, Node, NetworkPolicy`,
		"NetworkPolicy/shop/":          `error: --delete "NetworkPolicy/shop/": want NetworkPolicy/NAMESPACE/NAME`,
		"BaselineAdminNetworkPolicy/d": "BaselineAdminNetworkPolicy/d",
	} {
		got, err := manifest.ParseDelete(in)
		if err != nil {
			got = "error: " + err.Error()
		}
		assert.Contains(t, got, want, in)
	}
}

// TestLoadV01Peers reads AdminNetworkPolicies written in the peer shape of
// the network-policy-api v0.1.x CRDs (what `kubectl get -o yaml` prints on
// clusters serving them) as the node agent reads them from the API server.
func TestLoadV01Peers(t *testing.T) {
	const current = `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: a}
spec:
  priority: 10
  subject: {namespaces: {}}
  ingress:
  - action: Deny
    from:
    - namespaces: {matchLabels: {team: data}}
    - pods: {namespaceSelector: {matchLabels: {x: a}}, podSelector: {matchLabels: {app: b}}}
`
	const old = `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: a}
spec:
  priority: 10
  subject: {namespaces: {}}
  ingress:
  - action: Deny
    from:
    - namespaces: {namespaceSelector: {matchLabels: {team: data}}}
    - pods: {namespaces: {namespaceSelector: {matchLabels: {x: a}}}, podSelector: {matchLabels: {app: b}}}
`
	dir := writeFiles(t, map[string]string{"current.yaml": current, "old.yaml": old,
		"same.yaml": `apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - action: Allow
    from: [{namespaces: {sameLabels: [team]}}]
`})
	want, err := manifest.Load(filepath.Join(dir, "current.yaml"))
	require.NoError(t, err)
	got, err := manifest.Load(filepath.Join(dir, "old.yaml"))
	require.NoError(t, err)
	require.Len(t, got.AdminNetworkPolicies, 1)
	assert.Equal(t, want.AdminNetworkPolicies[0].Spec, got.AdminNetworkPolicies[0].Spec)

	_, err = manifest.Load(filepath.Join(dir, "same.yaml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "same.yaml")+"#1: BaselineAdminNetworkPolicy default: spec.ingress[0].from[0]: sameLabels/notSameLabels are not supported")
}
