package manifest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/palisade-net/palisade/policy"
)

// Problem is a validation error of an object, with where it was read.
type Problem struct {
	Source string
	Err    error
}

func (p Problem) Error() string { return p.Source + ": " + p.Err.Error() }

// Apply feeds e the difference from prev (nil for the empty state) to next:
// upserts for new and changed objects, deletes for removed ones. It returns
// the validation problems the engine reported for the objects it upserted.
func Apply(e policy.Engine, prev, next *State) (pods, policies []Problem) {
	if prev == nil {
		prev = &State{}
	}
	oldNS := byKey(prev.Namespaces, func(i int) string { return prev.Namespaces[i].Name })
	for _, ns := range next.Namespaces {
		if old, ok := oldNS[ns.Name]; !ok || !equality.Semantic.DeepEqual(prev.Namespaces[old], ns) {
			e.UpsertNamespace(ns)
		}
		delete(oldNS, ns.Name)
	}
	oldPods := byKey(prev.Pods, func(i int) string { return prev.Pods[i].Namespace + "/" + prev.Pods[i].Name })
	for _, p := range next.Pods {
		k := p.Namespace + "/" + p.Name
		if old, ok := oldPods[k]; !ok || !equality.Semantic.DeepEqual(prev.Pods[old], p) {
			if err := e.UpsertPod(p); err != nil {
				pods = append(pods, Problem{next.Source("Pod", p.Namespace, p.Name), err})
			}
		}
		delete(oldPods, k)
	}
	deleteNodes := applyCluster(next, "Node", prev.Nodes, next.Nodes,
		func(n *corev1.Node) error { e.UpsertNode(n); return nil }, e.DeleteNode, nil)
	oldNPs := byKey(prev.NetworkPolicies, func(i int) string {
		return prev.NetworkPolicies[i].Namespace + "/" + prev.NetworkPolicies[i].Name
	})
	for _, np := range next.NetworkPolicies {
		k := np.Namespace + "/" + np.Name
		if old, ok := oldNPs[k]; !ok || !equality.Semantic.DeepEqual(prev.NetworkPolicies[old], np) {
			if err := e.UpsertNetworkPolicy(np); err != nil {
				policies = append(policies, Problem{next.Source("NetworkPolicy", np.Namespace, np.Name), err})
			}
		}
		delete(oldNPs, k)
	}
	deletes := []func(){
		applyCluster(next, "AdminNetworkPolicy", prev.AdminNetworkPolicies, next.AdminNetworkPolicies,
			e.UpsertAdminNetworkPolicy, e.DeleteAdminNetworkPolicy, &policies),
		applyCluster(next, "BaselineAdminNetworkPolicy", prev.BaselineAdminNetworkPolicies, next.BaselineAdminNetworkPolicies,
			e.UpsertBaselineAdminNetworkPolicy, e.DeleteBaselineAdminNetworkPolicy, &policies),
		applyCluster(next, "ClusterNetworkPolicy", prev.ClusterNetworkPolicies, next.ClusterNetworkPolicies,
			e.UpsertClusterNetworkPolicy, e.DeleteClusterNetworkPolicy, &policies),
	}
	for _, del := range deletes {
		del()
	}
	for _, i := range oldNPs {
		e.DeleteNetworkPolicy(prev.NetworkPolicies[i].Namespace, prev.NetworkPolicies[i].Name)
	}
	for _, i := range oldPods {
		e.DeletePod(prev.Pods[i].Namespace, prev.Pods[i].Name)
	}
	deleteNodes()
	for _, i := range oldNS {
		e.DeleteNamespace(prev.Namespaces[i].Name)
	}
	return pods, policies
}

// applyCluster upserts the cluster-scoped objects of next that are new or
// changed since prev, appending the upserts' errors to problems (when not
// nil), and returns the function that deletes those gone since prev.
func applyCluster[T clusterObject](next *State, kind string, prev, cur []T,
	upsert func(T) error, del func(name string), problems *[]Problem) func() {
	old := byKey(prev, func(i int) string { return prev[i].GetObjectMeta().GetName() })
	for _, obj := range cur {
		name := obj.GetObjectMeta().GetName()
		if i, ok := old[name]; !ok || !equality.Semantic.DeepEqual(prev[i], obj) {
			if err := upsert(obj); err != nil && problems != nil {
				*problems = append(*problems, Problem{next.Source(kind, "", name), err})
			}
		}
		delete(old, name)
	}
	return func() {
		for _, obj := range prev { // in name order
			if _, gone := old[obj.GetObjectMeta().GetName()]; gone {
				del(obj.GetObjectMeta().GetName())
			}
		}
	}
}

func byKey[T any](xs []T, key func(int) string) map[string]int {
	m := make(map[string]int, len(xs))
	for i := range xs {
		m[key(i)] = i
	}
	return m
}
