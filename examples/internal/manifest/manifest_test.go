package manifest_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"

	"github.com/palisade-net/palisade/examples/internal/manifest"
)

// writeFiles writes name → content under a new temporary directory (names
// may hold a subdirectory) and returns the directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

// keys lists every object of st as Key(kind, namespace, name), in State order.
func keys(st *manifest.State) []string {
	var out []string
	for _, ns := range st.Namespaces {
		out = append(out, manifest.Key("Namespace", "", ns.Name))
	}
	for _, p := range st.Pods {
		out = append(out, manifest.Key("Pod", p.Namespace, p.Name))
	}
	for _, np := range st.NetworkPolicies {
		out = append(out, manifest.Key("NetworkPolicy", np.Namespace, np.Name))
	}
	for _, n := range st.Nodes {
		out = append(out, manifest.Key("Node", "", n.Name))
	}
	for _, p := range st.AdminNetworkPolicies {
		out = append(out, manifest.Key("AdminNetworkPolicy", "", p.Name))
	}
	for _, p := range st.BaselineAdminNetworkPolicies {
		out = append(out, manifest.Key("BaselineAdminNetworkPolicy", "", p.Name))
	}
	for _, p := range st.ClusterNetworkPolicies {
		out = append(out, manifest.Key("ClusterNetworkPolicy", "", p.Name))
	}
	return out
}

// multiDoc numbers its documents as the errors do: a leading comment block
// is document 1; an empty document between two separators is not counted.
const multiDoc = `# A leading comment.
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: shop}
---
# A document with comments only.
# It is skipped, but still counts as document 3.
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-in, namespace: shop}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: web}}}]
    ports: [{port: 6379}]
---
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {role: web}}
spec:
  nodeName: node-1
  containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db}   # no namespace: "default"
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop}
`

func TestLoadFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"cluster.yaml": multiDoc})
	path := filepath.Join(dir, "cluster.yaml")
	st, err := manifest.Load(path)
	require.NoError(t, err)

	assert.Equal(t, []string{"Namespace/shop", "Pod/default/db", "Pod/shop/api", "Pod/shop/web", "NetworkPolicy/shop/db-in"}, keys(st), "sorted by namespace and name")
	assert.Equal(t, map[string]string{
		"Namespace/shop":           path + "#2",
		"NetworkPolicy/shop/db-in": path + "#4",
		"Pod/shop/web":             path + "#5",
		"Pod/default/db":           path + "#6",
		"Pod/shop/api":             path + "#7",
	}, st.Sources)
	assert.Equal(t, path+"#5", st.Source("Pod", "shop", "web"))
	assert.Equal(t, "", st.Source("Pod", "shop", "nope"))

	web := st.Pod("shop", "web")
	require.NotNil(t, web)
	assert.Equal(t, map[string]string{"role": "web"}, web.Labels)
	assert.Equal(t, "10.0.0.1", web.Status.PodIP)
	assert.Len(t, web.Status.PodIPs, 2)
	assert.Equal(t, int32(8080), web.Spec.Containers[0].Ports[0].ContainerPort)
	assert.Equal(t, "node-1", web.Spec.NodeName)
	db := st.Pod("default", "db")
	require.NotNil(t, db)
	assert.Equal(t, "default", db.Namespace)
	assert.Nil(t, st.Pod("shop", "db"))
	assert.Nil(t, st.Pod("nope", "web"))

	require.Len(t, st.NetworkPolicies, 1)
	assert.Equal(t, "6379", st.NetworkPolicies[0].Spec.Ingress[0].Ports[0].Port.String())
	assert.Equal(t, map[string]string{"team": "shop"}, st.Namespaces[0].Labels)
}

func TestLoadDirectory(t *testing.T) {
	pod := func(name string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: ns}\n"
	}
	dir := writeFiles(t, map[string]string{
		"b.yml":        pod("from-yml"),
		"a.yaml":       pod("from-yaml"),
		"c.json":       `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "from-json", "namespace": "ns"}}`,
		"d.YAML":       pod("from-upper"),
		"README.md":    "not: [yaml",
		"notes.txt":    pod("from-txt"),
		"sub/e.yaml":   pod("from-subdir"),
		"sub.yaml/x":   "directory named like a file",
		"z.yaml":       "# nothing but a comment\n",
		"y-empty.yaml": "",
	})
	st, err := manifest.Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"Pod/ns/from-json", "Pod/ns/from-upper", "Pod/ns/from-yaml", "Pod/ns/from-yml"}, keys(st))
	assert.Equal(t, filepath.Join(dir, "c.json")+"#1", st.Source("Pod", "ns", "from-json"))
	assert.Equal(t, filepath.Join(dir, "b.yml")+"#1", st.Source("Pod", "ns", "from-yml"))

	// A directory and a file in one call make one state.
	other := writeFiles(t, map[string]string{"more.yaml": pod("more")})
	st, err = manifest.Load(dir, filepath.Join(other, "more.yaml"))
	require.NoError(t, err)
	assert.Len(t, st.Pods, 5)
}

func TestLoadLists(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"list.yaml": `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: v1
  kind: Pod
  metadata: {name: web, namespace: shop}
- apiVersion: v1
  kind: List
  items:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny, namespace: shop}
    spec: {podSelector: {}}
---
apiVersion: v1
kind: PodList
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: db, namespace: shop}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicyList
items: []
`,
		"list.json": `{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}}]}`,
	})
	st, err := manifest.Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"Namespace/shop", "Pod/default/j", "Pod/shop/db", "Pod/shop/web", "NetworkPolicy/shop/deny"}, keys(st))
	yaml := filepath.Join(dir, "list.yaml")
	assert.Equal(t, yaml+"#1 items[1]", st.Source("Pod", "shop", "web"))
	assert.Equal(t, yaml+"#1 items[2] items[0]", st.Source("NetworkPolicy", "shop", "deny"))
	assert.Equal(t, yaml+"#2 items[0]", st.Source("Pod", "shop", "db"))
}

// TestLoadErrors checks that each bad input is reported with the file and
// document, the object and the field.
// clusterDoc holds one of each cluster-scoped kind, a List among them.
const clusterDoc = `apiVersion: v1
kind: Node
metadata: {name: node-b, labels: {zone: b}}
status:
  addresses: [{type: InternalIP, address: 192.168.0.2}, {type: Hostname, address: node-b}]
---
apiVersion: policy.networking.k8s.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: deny-sensitive}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {}}
  ingress:
  - name: no-one
    action: Deny
    from: [{namespaces: {matchLabels: {team: other}}}]
---
apiVersion: v1
kind: List
items:
- apiVersion: policy.networking.k8s.io/v1alpha1
  kind: AdminNetworkPolicy
  metadata: {name: pass-web}
  spec:
    priority: 5
    subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {role: web}}}}
    egress:
    - name: to-dns
      action: Allow
      to: [{networks: [10.96.0.10/32]}]
      ports: [{portNumber: {protocol: UDP, port: 53}}]
- apiVersion: policy.networking.k8s.io/v1alpha1
  kind: BaselineAdminNetworkPolicy
  metadata: {name: default}
  spec:
    subject: {namespaces: {}}
    ingress:
    - {action: Deny, from: [{namespaces: {}}]}
- apiVersion: v1
  kind: Node
  metadata: {name: node-a}
`

func TestLoadClusterKinds(t *testing.T) {
	dir := writeFiles(t, map[string]string{"cluster.yaml": clusterDoc})
	st, err := manifest.Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"Node/node-a", "Node/node-b",
		"AdminNetworkPolicy/pass-web", "BaselineAdminNetworkPolicy/default", "ClusterNetworkPolicy/deny-sensitive",
	}, keys(st))
	f := filepath.Join(dir, "cluster.yaml")
	assert.Equal(t, f+"#3 items[0]", st.Source("AdminNetworkPolicy", "", "pass-web"))
	assert.Equal(t, f+"#1", st.Source("Node", "", "node-b"))

	require.Len(t, st.ClusterNetworkPolicies, 1)
	cnp := st.ClusterNetworkPolicies[0]
	assert.EqualValues(t, "Admin", cnp.Spec.Tier)
	assert.EqualValues(t, 10, cnp.Spec.Priority)
	require.Len(t, cnp.Spec.Ingress, 1)
	assert.EqualValues(t, "Deny", cnp.Spec.Ingress[0].Action)
	anp := st.AdminNetworkPolicies[0]
	require.Len(t, anp.Spec.Egress, 1)
	require.Len(t, anp.Spec.Egress[0].To, 1)
	assert.Equal(t, []v1alpha1.CIDR{"10.96.0.10/32"}, anp.Spec.Egress[0].To[0].Networks)
	node := st.Nodes[1]
	assert.Equal(t, map[string]string{"zone": "b"}, node.Labels)
	require.Len(t, node.Status.Addresses, 2)
	assert.EqualValues(t, "InternalIP", node.Status.Addresses[0].Type)
}

func TestLoadErrors(t *testing.T) {
	const ok = "apiVersion: v1\nkind: Pod\nmetadata: {name: fine, namespace: ns}\n---\n"
	tests := []struct {
		name    string
		content string
		want    []string // substrings; "FILE" stands for the file's path
	}{
		{
			name:    "unknown field",
			content: ok + "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec:\n  containers:\n  - name: c\n    portz: []\n",
			want:    []string{"FILE#2:", "Pod x/p", `unknown field "portz"`},
		},
		{
			name:    "unknown field of a NetworkPolicy",
			content: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: x}\nspec:\n  podSelector: {}\n  ingres: []\n",
			want:    []string{"FILE#1:", "NetworkPolicy x/np", `unknown field "ingres"`},
		},
		{
			name:    "unknown field of a Namespace",
			content: "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, lables: {a: b}}\n",
			want:    []string{"FILE#1:", "Namespace shop", `unknown field "lables"`},
		},
		{
			name:    "wrong type",
			content: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    ports: [{containerPort: http}]\n",
			want:    []string{"FILE#1:", "Pod default/p", "containerPort"},
		},
		{
			name:    "YAML 1.1 boolean as a namespace",
			content: "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: y}\n",
			want:    []string{"FILE#1:", "Pod c:", "metadata.namespace", "bool"},
		},
		{
			name:    "YAML 1.1 boolean as a label value",
			content: "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: x, labels: {enabled: yes}}\n",
			want:    []string{"FILE#1:", "Pod x/c:", "metadata.labels", "bool"},
		},
		{
			name:    "number as a label value",
			content: "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {version: 1.10}}\n",
			want:    []string{"FILE#1:", "Namespace shop:", "metadata.labels", "number"},
		},
		{
			name:    "number as a selector value",
			content: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: x}\nspec:\n  podSelector: {matchLabels: {v: 2}}\n",
			want:    []string{"FILE#1:", "NetworkPolicy x/np:", "matchLabels", "number"},
		},
		{
			name:    "unknown field of a ClusterNetworkPolicy",
			content: "apiVersion: policy.networking.k8s.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec:\n  tier: Admin\n  prority: 3\n",
			want:    []string{"FILE#1:", "ClusterNetworkPolicy c:", `unknown field "prority"`},
		},
		{
			name:    "wrong type in an AdminNetworkPolicy",
			content: ok + "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec:\n  priority: high\n",
			want:    []string{"FILE#2:", "AdminNetworkPolicy a:", "priority"},
		},
		{
			name:    "namespace on a cluster-scoped policy",
			content: "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default, namespace: x}\n",
			want:    []string{"FILE#1:", "BaselineAdminNetworkPolicy default", "metadata.namespace", "cluster-scoped"},
		},
		{
			name:    "Node without a name",
			content: "apiVersion: v1\nkind: Node\nmetadata: {labels: {a: b}}\n",
			want:    []string{"FILE#1:", "Node", "metadata.name: Required value"},
		},
		{
			name:    "wrong version of a cluster policy",
			content: "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: ClusterNetworkPolicy\nmetadata: {name: c}\n",
			want:    []string{"FILE#1:", `kind "ClusterNetworkPolicy"`, "not supported", "v1beta1 ClusterNetworkPolicy"},
		},
		{
			name:    "Node defined twice",
			content: "apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n",
			want:    []string{"FILE#2:", "Node/node-1: defined again (first at FILE#1)"},
		},
		{
			name:    "duplicate field",
			content: ok + "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  name: q\n",
			want:    []string{"FILE#2:", `"name"`},
		},
		{
			name:    "missing name",
			content: ok + ok + "apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n",
			want:    []string{"FILE#3:", "Pod", "metadata.name: Required value"},
		},
		{
			name:    "missing namespace name",
			content: "apiVersion: v1\nkind: Namespace\n",
			want:    []string{"FILE#1:", "Namespace", "metadata.name: Required value"},
		},
		{
			name:    "missing apiVersion",
			content: "kind: Pod\nmetadata: {name: p}\n",
			want:    []string{"FILE#1:", "Pod", "apiVersion: Required value"},
		},
		{
			name:    "missing kind",
			content: "apiVersion: v1\nmetadata: {name: p}\n",
			want:    []string{"FILE#1:", "kind: Required value"},
		},
		{
			name:    "unknown kind",
			content: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
			want:    []string{"FILE#1:", `apiVersion "apps/v1" kind "Deployment": not supported`},
		},
		{
			name:    "known kind, wrong apiVersion",
			content: "apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: d}\n",
			want:    []string{"FILE#1:", `kind "NetworkPolicy": not supported`},
		},
		{
			name:    "bad item of a List",
			content: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {nodeNam: x}}\n",
			want:    []string{"FILE#1 items[1]:", "Pod default/b", `unknown field "nodeNam"`},
		},
		{
			name:    "defined twice in one file",
			content: ok + ok,
			want:    []string{"FILE#2:", "Pod/ns/fine: defined again (first at FILE#1)"},
		},
		{
			name:    "YAML syntax",
			content: ok + "apiVersion: v1\nkind: [Pod\n",
			want:    []string{"FILE#2:"},
		},
		{
			name:    "not an object",
			content: "just a string\n",
			want:    []string{"FILE#1:"},
		},
		{
			name: "every problem is reported",
			content: "apiVersion: v1\nkind: Pod\nmetadata: {name: a, bogus1: 1}\n---\n" +
				"apiVersion: v1\nkind: Pod\nmetadata: {name: b, bogus2: 1}\n---\n" +
				"apiVersion: v1\nkind: Gadget\nmetadata: {name: c}\n",
			want: []string{`FILE#1: Pod default/a`, `"bogus1"`, `FILE#2: Pod default/b`, `"bogus2"`, `FILE#3:`, `"Gadget"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"in.yaml": tc.content})
			path := filepath.Join(dir, "in.yaml")
			st, err := manifest.Load(path)
			require.Error(t, err)
			assert.Nil(t, st)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), strings.ReplaceAll(w, "FILE", path))
			}
		})
	}
}

// TestLoadScalars: quoted YAML 1.1 scalars, and numbers where Kubernetes
// takes an int or a string, load as written.
func TestLoadScalars(t *testing.T) {
	dir := writeFiles(t, map[string]string{"in.yaml": `apiVersion: v1
kind: Pod
metadata: {name: "on", namespace: "y", labels: {enabled: "yes", version: "1.10"}}
spec:
  containers: [{name: c, image: i, ports: [{containerPort: 8080, name: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: "y"}
spec:
  podSelector: {matchLabels: {version: "1.10"}}
  ingress: [{ports: [{port: 80}, {port: http}, {port: "443"}]}]
`})
	st, err := manifest.Load(filepath.Join(dir, "in.yaml"))
	require.NoError(t, err)
	p := st.Pod("y", "on")
	require.NotNil(t, p)
	assert.Equal(t, map[string]string{"enabled": "yes", "version": "1.10"}, p.Labels)
	require.Len(t, st.NetworkPolicies, 1)
	assert.Equal(t, "1.10", st.NetworkPolicies[0].Spec.PodSelector.MatchLabels["version"])
	var got []string
	for _, po := range st.NetworkPolicies[0].Spec.Ingress[0].Ports {
		got = append(got, po.Port.String())
	}
	assert.Equal(t, []string{"80", "http", "443"}, got)
}

func TestLoadJSONErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"pod.json": `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j", "namespace": "x"}, "spec": {"bogus": 1}}`,
	})
	_, err := manifest.Load(filepath.Join(dir, "pod.json"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "pod.json")+"#1: Pod x/j")
	assert.Contains(t, err.Error(), `unknown field "bogus"`)
}

func TestLoadPathErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":     "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\n",
		"b.yaml":     "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\n",
		"bad.yaml":   "apiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: x, oops: 1}\n",
		"empty/.x":   "",
		"only/notes": "text",
	})
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")

	_, err := manifest.Load(a, b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), b+"#1: Pod/x/p: defined again (first at "+a+"#1)")

	_, err = manifest.Load(filepath.Join(dir, "missing.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), filepath.Join(dir, "missing.yaml"))

	_, err = manifest.Load(filepath.Join(dir, "empty"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "empty")+": no .yaml, .yml or .json files")
	_, err = manifest.Load(filepath.Join(dir, "only"))
	assert.Error(t, err)

	// Problems in several paths are all reported.
	_, err = manifest.Load(filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "bad.yaml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.yaml")
	assert.Contains(t, err.Error(), `unknown field "oops"`)

	st, err := manifest.Load()
	require.NoError(t, err, "no path, empty state")
	assert.Empty(t, keys(st))
}

func TestKey(t *testing.T) {
	assert.Equal(t, "Namespace/shop", manifest.Key("Namespace", "", "shop"))
	assert.Equal(t, "Pod/shop/web", manifest.Key("Pod", "shop", "web"))
}

func TestLoadDemo(t *testing.T) {
	st, err := manifest.Load("../../demo")
	require.NoError(t, err)
	assert.Len(t, st.Namespaces, 3)
	assert.Len(t, st.Pods, 6)
	assert.Len(t, st.NetworkPolicies, 6)
	assert.True(t, slices.IsSortedFunc(keys(st)[3:9], strings.Compare))
}
