package selector

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var supportedOperators = []metav1.LabelSelectorOperator{
	metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn,
	metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist,
}

// Compile converts a Kubernetes label selector into a Selector.
//
// A nil selector selects nothing (Nothing), as metav1.LabelSelectorAsSelector
// does; a non-nil selector without matchLabels and matchExpressions selects
// everything (Everything). matchLabels and matchExpressions are ANDed; each
// matchLabels entry k: v is the requirement k In (v).
//
// Compile validates its input the way the API server does and reports every
// problem, never only the first, as field errors under path (path may be nil):
//   - path.Child("matchLabels"): Invalid, for a key that is not a qualified
//     name or a value that is not a valid label value;
//   - path.Child("matchExpressions").Index(i).Child("operator"): NotSupported
//     ("Unsupported value"), for an operator other than In, NotIn, Exists,
//     DoesNotExist;
//   - ...Index(i).Child("values"): Required for In/NotIn without values,
//     Forbidden for Exists/DoesNotExist with values;
//   - ...Index(i).Child("key"): Invalid, for a key that is not a qualified name;
//   - ...Index(i).Child("values").Index(j): Invalid, for an invalid value.
//
// When the returned list is non-empty the Selector is Nothing, never a partial
// selector; what to do about an invalid selector is the caller's decision.
// Errors are reported in a deterministic order (matchLabels by sorted key,
// then matchExpressions in order). Compile does not retain ls.
func Compile(ls *metav1.LabelSelector, path *field.Path) (Selector, field.ErrorList) {
	if ls == nil {
		return Nothing(), nil
	}
	if len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0 {
		return Everything(), nil
	}
	var errs field.ErrorList
	reqs := make([]Requirement, 0, len(ls.MatchLabels)+len(ls.MatchExpressions))

	if len(ls.MatchLabels) > 0 {
		mlPath := path.Child("matchLabels")
		keys := make([]string, 0, len(ls.MatchLabels))
		for k := range ls.MatchLabels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := ls.MatchLabels[k]
			for _, msg := range validation.IsQualifiedName(k) {
				errs = append(errs, field.Invalid(mlPath, k, msg).WithOrigin("format=k8s-label-key"))
			}
			for _, msg := range validation.IsValidLabelValue(v) {
				errs = append(errs, field.Invalid(mlPath, v, msg).WithOrigin("format=k8s-label-value"))
			}
			reqs = append(reqs, Requirement{Key: k, Op: In, Values: []string{v}})
		}
	}

	for i, e := range ls.MatchExpressions {
		ePath := path.Child("matchExpressions").Index(i)
		var op Operator
		switch e.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
			op = Operator(e.Operator)
			if len(e.Values) == 0 {
				errs = append(errs, field.Required(ePath.Child("values"),
					"must be specified when `operator` is 'In' or 'NotIn'"))
			}
		case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			op = Operator(e.Operator)
			if len(e.Values) > 0 {
				errs = append(errs, field.Forbidden(ePath.Child("values"),
					"may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
			}
		default:
			errs = append(errs, field.NotSupported(ePath.Child("operator"), e.Operator, supportedOperators))
		}
		for _, msg := range validation.IsQualifiedName(e.Key) {
			errs = append(errs, field.Invalid(ePath.Child("key"), e.Key, msg).WithOrigin("format=k8s-label-key"))
		}
		for j, v := range e.Values {
			for _, msg := range validation.IsValidLabelValue(v) {
				errs = append(errs, field.Invalid(ePath.Child("values").Index(j), v, msg))
			}
		}
		if op == "" {
			continue
		}
		var values []string
		if op == In || op == NotIn {
			values = slices.Clone(e.Values)
			slices.Sort(values)
			values = slices.Clip(slices.Compact(values))
		}
		reqs = append(reqs, Requirement{Key: e.Key, Op: op, Values: values})
	}

	if len(errs) > 0 {
		return Nothing(), errs
	}
	return newSelector(reqs), nil
}
