package manifest

import (
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
	for _, i := range oldNPs {
		e.DeleteNetworkPolicy(prev.NetworkPolicies[i].Namespace, prev.NetworkPolicies[i].Name)
	}
	for _, i := range oldPods {
		e.DeletePod(prev.Pods[i].Namespace, prev.Pods[i].Name)
	}
	for _, i := range oldNS {
		e.DeleteNamespace(prev.Namespaces[i].Name)
	}
	return pods, policies
}

func byKey[T any](xs []T, key func(int) string) map[string]int {
	m := make(map[string]int, len(xs))
	for i := range xs {
		m[key(i)] = i
	}
	return m
}
