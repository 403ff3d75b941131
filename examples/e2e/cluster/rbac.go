package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// DefaultRBAC is the least-privilege RBAC the node agent needs, used by
// ApplyRBAC when none of the paths it is given exists (the agent's own
// manifests, examples/node-agent/deploy/*.yaml, are used when present):
// read pods, namespaces and NetworkPolicies, list and watch nodes and the
// cluster-wide policy kinds (which the API server serves only when their
// CRDs are installed);
// write Events to report invalid policies. Nothing else.
const DefaultRBAC = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: palisade-node-agent
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: palisade-node-agent
rules:
- apiGroups: [""]
  resources: [pods, namespaces]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, watch]
- apiGroups: [policy.networking.k8s.io]
  resources: [clusternetworkpolicies, adminnetworkpolicies, baselineadminnetworkpolicies]
  verbs: [list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: palisade-node-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: palisade-node-agent
subjects:
- kind: ServiceAccount
  name: palisade-node-agent
  namespace: kube-system
`

// rbacKinds are the kinds ApplyRBAC applies; other objects in the files (a
// DaemonSet, a ConfigMap) are skipped: no controller runs here.
var rbacKinds = map[string]struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}{
	"v1/Namespace":      {schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
	"v1/ServiceAccount": {schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, true},
	"rbac.authorization.k8s.io/v1/ClusterRole": {
		schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, false},
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": {
		schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, false},
	"rbac.authorization.k8s.io/v1/Role": {
		schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, true},
	"rbac.authorization.k8s.io/v1/RoleBinding": {
		schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, true},
}

// ApplyRBAC applies, as the admin and by server-side apply, the Namespace,
// ServiceAccount, (Cluster)Role and (Cluster)RoleBinding objects found in
// paths (YAML files, multi-document or Lists, or directories of *.yaml and
// *.yml). Paths that do not exist are skipped; when none exists DefaultRBAC
// is applied instead. It returns where the objects came from, and fails
// when no binding of what was applied names the agent's ServiceAccount
// (the agent token would then have no permission at all).
func (c *Cluster) ApplyRBAC(ctx context.Context, paths ...string) (source string, err error) {
	var docs []namedDoc
	var used []string
	for _, p := range paths {
		files, err := yamlFiles(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return "", err
			}
			docs = append(docs, namedDoc{f, b})
			used = append(used, f)
		}
	}
	source = strings.Join(used, ", ")
	if len(docs) == 0 {
		docs = []namedDoc{{"DefaultRBAC", []byte(DefaultRBAC)}}
		source = "built-in DefaultRBAC"
	}
	var objs []*unstructured.Unstructured
	for _, d := range docs {
		o, err := decodeAll(d.data)
		if err != nil {
			return source, fmt.Errorf("%s: %w", d.name, err)
		}
		objs = append(objs, o...)
	}
	// Namespaces first, then ServiceAccounts and roles, bindings last.
	rank := map[string]int{"Namespace": 0, "ServiceAccount": 1, "ClusterRole": 2, "Role": 2, "ClusterRoleBinding": 3, "RoleBinding": 3}
	sort.SliceStable(objs, func(i, j int) bool { return rank[objs[i].GetKind()] < rank[objs[j].GetKind()] })

	dyn, err := c.adminDynamic()
	if err != nil {
		return source, err
	}
	bindsAgent := false
	for _, o := range objs {
		key := o.GetAPIVersion() + "/" + o.GetKind()
		k, ok := rbacKinds[key]
		if !ok {
			c.t.Logf("ApplyRBAC: skipping %s %s (not an RBAC object)", key, o.GetName())
			continue
		}
		ri := dyn.Resource(k.gvr)
		var applied *unstructured.Unstructured
		if k.namespaced {
			ns := o.GetNamespace()
			if ns == "" {
				ns = "default"
				o.SetNamespace(ns)
			}
			applied, err = ri.Namespace(ns).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "palisade-e2e", Force: true})
		} else {
			applied, err = ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "palisade-e2e", Force: true})
		}
		if err != nil {
			return source, fmt.Errorf("apply %s %s/%s: %w", key, o.GetNamespace(), o.GetName(), err)
		}
		if strings.HasSuffix(o.GetKind(), "Binding") && namesAgent(applied) {
			bindsAgent = true
		}
	}
	if !bindsAgent {
		return source, fmt.Errorf("RBAC from %s binds nothing to ServiceAccount %s/%s, the identity of the agent token",
			source, AgentNamespace, AgentServiceAccount)
	}
	return source, nil
}

type namedDoc struct {
	name string
	data []byte
}

func namesAgent(binding *unstructured.Unstructured) bool {
	subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
	for _, s := range subjects {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		switch m["kind"] {
		case "ServiceAccount":
			if m["name"] == AgentServiceAccount && m["namespace"] == AgentNamespace {
				return true
			}
		case "User":
			if m["name"] == AgentUser {
				return true
			}
		}
	}
	return false
}

func yamlFiles(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(p, pat))
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no *.yaml files: %w", p, os.ErrNotExist)
	}
	return out, nil
}

func decodeAll(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, err
			}
			for i := range l.Items {
				out = append(out, &l.Items[i])
			}
			continue
		}
		out = append(out, u)
	}
}
