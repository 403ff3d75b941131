package selector

import (
	"cmp"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validationOptions are those the API server uses for a NetworkPolicy it
// already stores (networking validation, ValidationOptionsForNetworking):
// values in matchExpressions are not checked, because objects created
// before they were may be updated and served with them. Such a value
// matches no label (labels themselves are validated), so accepting it
// never widens a selector; refusing it would turn a policy the API server
// serves into "isolate, allow nothing".
var validationOptions = metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: true}

// Compile converts a Kubernetes label selector into a Selector.
//
// A nil selector selects nothing (Nothing), as metav1.LabelSelectorAsSelector
// does; a non-nil selector without matchLabels and matchExpressions selects
// everything (Everything). matchLabels and matchExpressions are ANDed; each
// matchLabels entry k: v is the requirement k In (v).
//
// Compile validates its input with the API server's own validation
// (metav1validation.ValidateLabelSelector, with the options the API server
// applies to a stored NetworkPolicy), so it accepts exactly the selectors
// the API server serves, and reports every problem as field errors under
// path (path may be nil):
//   - path.Child("matchLabels"): Invalid, for a key that is not a qualified
//     name (at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both
//     ends, with an optional DNS subdomain prefix and '/') or a value that is
//     not a valid label value (at most 63 characters, the same alphabet,
//     alphanumeric at both ends, or empty);
//   - path.Child("matchExpressions").Index(i).Child("operator"): Invalid, for
//     an operator other than In, NotIn, Exists, DoesNotExist;
//   - ...Index(i).Child("values"): Required for In/NotIn without values,
//     Forbidden for Exists/DoesNotExist with values;
//   - ...Index(i).Child("key"): Invalid, for a key that is not a qualified name.
//
// Values of matchExpressions are not validated (see validationOptions): an
// In value that is not a valid label value matches nothing, a NotIn one
// excludes nothing.
//
// When the returned list is non-empty the Selector is Nothing, never a partial
// selector; what to do about an invalid selector is the caller's decision.
// Errors are reported in a deterministic order (matchLabels by value, then
// matchExpressions in order). Compile does not retain ls.
func Compile(ls *metav1.LabelSelector, path *field.Path) (Selector, field.ErrorList) {
	if ls == nil {
		return Nothing(), nil
	}
	if len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0 {
		return Everything(), nil
	}
	if errs := metav1validation.ValidateLabelSelector(ls, validationOptions, path); len(errs) > 0 {
		// matchLabels errors come first, in map order: sort them.
		ml := path.Child("matchLabels").String()
		n := 0
		for n < len(errs) && errs[n].Field == ml {
			n++
		}
		slices.SortStableFunc(errs[:n], func(a, b *field.Error) int {
			return cmp.Or(cmp.Compare(fmt.Sprint(a.BadValue), fmt.Sprint(b.BadValue)), cmp.Compare(a.Detail, b.Detail))
		})
		return Nothing(), errs
	}
	reqs := make([]Requirement, 0, len(ls.MatchLabels)+len(ls.MatchExpressions))
	for k, v := range ls.MatchLabels {
		reqs = append(reqs, Requirement{Key: k, Op: In, Values: []string{v}})
	}
	for _, e := range ls.MatchExpressions {
		op := Operator(e.Operator)
		var values []string
		if op == In || op == NotIn {
			values = slices.Clone(e.Values)
			slices.Sort(values)
			values = slices.Clip(slices.Compact(values))
		}
		reqs = append(reqs, Requirement{Key: e.Key, Op: op, Values: values})
	}
	return newSelector(reqs), nil
}
