package manifest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeleteAnnotation, set to "true" on an object of a proposed file, makes
// Propose delete the object of that kind, namespace and name instead of
// writing it; only kind, apiVersion and metadata need be given:
//
//	apiVersion: networking.k8s.io/v1
//	kind: NetworkPolicy
//	metadata:
//	  name: web-ingress
//	  namespace: shop
//	  annotations: {netpolctl.palisade.dev/delete: "true"}
const DeleteAnnotation = "netpolctl.palisade.dev/delete"

// kinds are the kinds a State holds, with whether they are namespaced.
var kinds = []struct {
	kind       string
	namespaced bool
}{
	{"Namespace", false}, {"Pod", true}, {"Node", false}, {"NetworkPolicy", true},
	{"AdminNetworkPolicy", false}, {"BaselineAdminNetworkPolicy", false}, {"ClusterNetworkPolicy", false},
}

// ParseDelete reads a deletion written KIND/NAMESPACE/NAME (namespaced
// kinds) or KIND/NAME (cluster-scoped kinds), KIND in any case
// ("networkpolicy/shop/web-ingress", "AdminNetworkPolicy/deny-all"), and
// returns its Key. Errors name the value and what is wrong.
func ParseDelete(s string) (string, error) {
	parts := strings.Split(s, "/")
	for _, k := range kinds {
		if !strings.EqualFold(parts[0], k.kind) {
			continue
		}
		switch {
		case k.namespaced && len(parts) == 3 && parts[1] != "" && parts[2] != "":
			return Key(k.kind, parts[1], parts[2]), nil
		case !k.namespaced && len(parts) == 2 && parts[1] != "":
			return Key(k.kind, "", parts[1]), nil
		case k.namespaced:
			return "", fmt.Errorf("--delete %q: want %s/NAMESPACE/NAME", s, k.kind)
		default:
			return "", fmt.Errorf("--delete %q: want %s/NAME (%s is cluster-scoped)", s, k.kind, k.kind)
		}
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.kind
	}
	return "", fmt.Errorf("--delete %q: kind %q is not one of %s", s, parts[0], strings.Join(names, ", "))
}

// Propose returns the state cur becomes once proposed is applied: each
// object of proposed replaces the object of the same kind, namespace and
// name in cur, or is added; an object of proposed annotated
// DeleteAnnotation "true" deletes it instead, as does each key of deletes
// (see ParseDelete). Deleting an object cur does not hold is an error
// naming where the deletion was written (file and document, or the
// --delete value); so is a DeleteAnnotation value other than "true" or
// "false". cur and proposed are not modified; the result shares their
// objects. An empty proposed and no deletes give a copy of cur.
func Propose(cur, proposed *State, deletes map[string]string) (*State, error) {
	next := &State{Sources: maps.Clone(cur.Sources)}
	if next.Sources == nil {
		next.Sources = map[string]string{}
	}
	deletes = maps.Clone(deletes) // key → where it was asked
	if deletes == nil {
		deletes = map[string]string{}
	}
	var errs []error
	for k, src := range proposed.Sources {
		if _, ok := deletes[k]; ok {
			errs = append(errs, fmt.Errorf("%s: %s is both written and deleted (%s)", src, k, deletes[k]))
		}
	}
	p := proposal{proposed: proposed, next: next, deletes: deletes}
	next.Namespaces = propose(&p, "Namespace", cur.Namespaces, proposed.Namespaces)
	next.Pods = propose(&p, "Pod", cur.Pods, proposed.Pods)
	next.Nodes = propose(&p, "Node", cur.Nodes, proposed.Nodes)
	next.NetworkPolicies = propose(&p, "NetworkPolicy", cur.NetworkPolicies, proposed.NetworkPolicies)
	next.AdminNetworkPolicies = propose(&p, "AdminNetworkPolicy", cur.AdminNetworkPolicies, proposed.AdminNetworkPolicies)
	next.BaselineAdminNetworkPolicies = propose(&p, "BaselineAdminNetworkPolicy", cur.BaselineAdminNetworkPolicies, proposed.BaselineAdminNetworkPolicies)
	next.ClusterNetworkPolicies = propose(&p, "ClusterNetworkPolicy", cur.ClusterNetworkPolicies, proposed.ClusterNetworkPolicies)
	errs = append(errs, p.errs...)
	for _, k := range slices.Sorted(maps.Keys(p.deletes)) {
		errs = append(errs, fmt.Errorf("%s: cannot delete %s: not in the current objects", p.deletes[k], k))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	next.sort()
	return next, nil
}

// proposal is the work of one Propose.
type proposal struct {
	proposed, next *State
	deletes        map[string]string // not yet found in cur
	errs           []error
}

// propose merges one kind's list.
func propose[T metav1.Object](p *proposal, kind string, cur, proposed []T) []T {
	byKey := map[string]T{}
	inCur := map[string]bool{}
	var order []string
	for _, o := range cur {
		k := Key(kind, o.GetNamespace(), o.GetName())
		byKey[k], inCur[k] = o, true
		order = append(order, k)
	}
	for _, o := range proposed {
		k := Key(kind, o.GetNamespace(), o.GetName())
		src := p.proposed.Sources[k]
		switch v := o.GetAnnotations()[DeleteAnnotation]; v {
		case "true":
			p.deletes[k] = src
			continue
		case "", "false":
		default:
			p.errs = append(p.errs, fmt.Errorf("%s: %s: metadata.annotations[%s]: Invalid value: %q: want \"true\" or \"false\"", src, k, DeleteAnnotation, v))
			continue
		}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = o
		p.next.Sources[k] = src
	}
	var out []T
	for _, k := range order {
		if _, del := p.deletes[k]; del && inCur[k] {
			delete(p.deletes, k)
			delete(p.next.Sources, k)
			continue
		}
		out = append(out, byKey[k])
	}
	return out
}
