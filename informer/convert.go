package informer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// The AdminNetworkPolicy and BaselineAdminNetworkPolicy CRDs of the
// network-policy-api v0.1.x releases serve v1alpha1 with an older peer
// shape than the v1alpha1 Go types the engine takes:
//
//	v0.1.x:  namespaces: {namespaceSelector: S}          (or sameLabels / notSameLabels)
//	         pods: {namespaces: {namespaceSelector: S}, podSelector: P}
//	types:   namespaces: S
//	         pods: {namespaceSelector: S, podSelector: P}
//
// A lenient conversion would read the old shape as an empty selector, i.e.
// every namespace: an Allow from one namespace would allow from all. So
// the conversion is strict (an unknown field anywhere is an error), and
// the old shape is rewritten to the new one first. sameLabels and
// notSameLabels have no equivalent: in an Allow rule the peer is dropped
// (it allows less), in a Deny rule it becomes every namespace (it denies
// more), and in a Pass rule (neither is safe) the object is refused.

// UpgradeV01Peers rewrites the v0.1.x peers of an AdminNetworkPolicy or
// BaselineAdminNetworkPolicy object (JSON-shaped: maps, slices, strings,
// numbers) into the shape of the v1alpha1 Go types, as the controller does
// before decoding (see the notes above): obj is never modified; the copy,
// notes on peers not kept as written, and an error naming the peer when
// the object cannot be enforced safely are returned. An object already in
// the current shape comes back unchanged, with no notes.
func UpgradeV01Peers(obj map[string]any) (map[string]any, []string, error) {
	return upgradePeers(obj)
}

// upgradePeers rewrites the v0.1.x peers of an AdminNetworkPolicy or
// BaselineAdminNetworkPolicy object (a deep copy: obj is never modified)
// into the current shape. It returns the copy, notes on what could not be
// kept as written, and an error when the object cannot be enforced safely.
func upgradePeers(obj map[string]any) (map[string]any, []string, error) {
	obj = runtime.DeepCopyJSON(obj)
	var notes []string
	for _, dir := range []struct{ rules, peers string }{{"ingress", "from"}, {"egress", "to"}} {
		rules, _, _ := unstructured.NestedSlice(obj, "spec", dir.rules)
		for i, r := range rules {
			rule, ok := r.(map[string]any)
			if !ok {
				continue
			}
			action, _ := rule["action"].(string)
			peers, _ := rule[dir.peers].([]any)
			var kept []any
			for j, p := range peers {
				peer, ok := p.(map[string]any)
				if !ok {
					kept = append(kept, p)
					continue
				}
				path := fmt.Sprintf("spec.%s[%d].%s[%d]", dir.rules, i, dir.peers, j)
				keep, note, err := upgradePeer(peer, action, path)
				if err != nil {
					return nil, nil, err
				}
				if note != "" {
					notes = append(notes, note)
				}
				if keep {
					kept = append(kept, peer)
				}
			}
			if peers != nil {
				rule[dir.peers] = kept
				if kept == nil {
					rule[dir.peers] = []any{}
				}
			}
		}
		if rules != nil {
			if err := unstructured.SetNestedSlice(obj, rules, "spec", dir.rules); err != nil {
				return nil, nil, err
			}
		}
	}
	return obj, notes, nil
}

// upgradePeer rewrites one peer in place; keep is false when it must go.
func upgradePeer(peer map[string]any, action, path string) (keep bool, note string, err error) {
	ns, nsOld := oldNamespaces(peer["namespaces"])
	var pns map[string]any
	podsOld := false
	if pods, ok := peer["pods"].(map[string]any); ok {
		pns, podsOld = oldNamespaces(pods["namespaces"])
	}
	same := func(m map[string]any) bool { return m["sameLabels"] != nil || m["notSameLabels"] != nil }
	if (nsOld && same(ns)) || (podsOld && same(pns)) {
		switch action {
		case "Allow":
			return false, path + ": sameLabels/notSameLabels are not supported: the peer is dropped from this Allow rule", nil
		case "Deny":
			note = path + ": sameLabels/notSameLabels are not supported: this Deny rule applies to every namespace instead"
			if nsOld && same(ns) {
				ns = map[string]any{"namespaceSelector": map[string]any{}}
			}
			if podsOld && same(pns) {
				pns = map[string]any{"namespaceSelector": map[string]any{}}
			}
		default:
			return false, "", fmt.Errorf("%s: sameLabels/notSameLabels in a %s rule are not supported and cannot be enforced safely", path, action)
		}
	}
	if nsOld {
		peer["namespaces"] = selectorOrEmpty(ns["namespaceSelector"])
	}
	if podsOld {
		pods := peer["pods"].(map[string]any)
		delete(pods, "namespaces")
		pods["namespaceSelector"] = selectorOrEmpty(pns["namespaceSelector"])
	}
	return true, note, nil
}

// oldNamespaces reports whether v is a v0.1.x namespaces peer
// ({namespaceSelector | sameLabels | notSameLabels}), returning it.
func oldNamespaces(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	for _, k := range []string{"namespaceSelector", "sameLabels", "notSameLabels"} {
		if _, ok := m[k]; ok {
			return m, true
		}
	}
	return nil, false
}

func selectorOrEmpty(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

// convertStrict decodes obj into into, failing on any field the type does
// not have (a lenient decode would drop it silently).
func convertStrict(obj map[string]any, into any) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}
