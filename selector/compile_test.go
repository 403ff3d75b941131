package selector

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// --- builders ---

type lsTweak func(*metav1.LabelSelector)

func makeLS(tweaks ...lsTweak) *metav1.LabelSelector {
	ls := &metav1.LabelSelector{}
	for _, t := range tweaks {
		t(ls)
	}
	return ls
}

func withMatchLabels(kv ...string) lsTweak {
	return func(ls *metav1.LabelSelector) {
		if ls.MatchLabels == nil {
			ls.MatchLabels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			ls.MatchLabels[kv[i]] = kv[i+1]
		}
	}
}

func withExpr(key string, op metav1.LabelSelectorOperator, values ...string) lsTweak {
	return func(ls *metav1.LabelSelector) {
		ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values})
	}
}

// errSpec is the part of a field.Error a test pins down.
type errSpec struct {
	Type  field.ErrorType
	Field string
	Value any
}

func specsOf(errs field.ErrorList) []errSpec {
	var out []errSpec
	for _, e := range errs {
		s := errSpec{Type: e.Type, Field: e.Field}
		if e.Type == field.ErrorTypeInvalid || e.Type == field.ErrorTypeNotSupported {
			s.Value = e.BadValue
		}
		out = append(out, s)
	}
	return out
}

func TestCompile(t *testing.T) {
	root := field.NewPath("spec", "podSelector")
	long := strings.Repeat("x", 64)
	tests := []struct {
		name string
		ls   *metav1.LabelSelector
		want string // canonical String of the result
		errs []errSpec
	}{
		{name: "nil selects nothing", ls: nil, want: "<none>"},
		{name: "empty selects everything", ls: makeLS(), want: "<all>"},
		{name: "empty maps and lists select everything", ls: &metav1.LabelSelector{MatchLabels: map[string]string{}, MatchExpressions: []metav1.LabelSelectorRequirement{}}, want: "<all>"},
		{name: "matchLabels", ls: makeLS(withMatchLabels("tier", "db", "app", "web")), want: "app=web,tier=db"},
		{name: "empty label value", ls: makeLS(withMatchLabels("app", "")), want: "app="},
		{name: "prefixed key", ls: makeLS(withMatchLabels("example.com/app", "web")), want: "example.com/app=web"},
		{name: "In", ls: makeLS(withExpr("tier", metav1.LabelSelectorOpIn, "b", "a", "b")), want: "tier in (a,b)"},
		{name: "In one value is equality", ls: makeLS(withExpr("app", metav1.LabelSelectorOpIn, "web")), want: "app=web"},
		{name: "NotIn", ls: makeLS(withExpr("tier", metav1.LabelSelectorOpNotIn, "z", "a")), want: "tier notin (a,z)"},
		{name: "NotIn one value", ls: makeLS(withExpr("tier", metav1.LabelSelectorOpNotIn, "a")), want: "tier!=a"},
		{name: "Exists", ls: makeLS(withExpr("team", metav1.LabelSelectorOpExists)), want: "team"},
		{name: "DoesNotExist", ls: makeLS(withExpr("legacy", metav1.LabelSelectorOpDoesNotExist)), want: "!legacy"},
		{
			name: "matchLabels and matchExpressions are ANDed",
			ls: makeLS(withMatchLabels("app", "web"),
				withExpr("tier", metav1.LabelSelectorOpIn, "a", "b"),
				withExpr("legacy", metav1.LabelSelectorOpDoesNotExist),
				withExpr("team", metav1.LabelSelectorOpExists)),
			want: "app=web,!legacy,team,tier in (a,b)",
		},
		{
			name: "matchLabels duplicate of an expression collapses",
			ls:   makeLS(withMatchLabels("app", "web"), withExpr("app", metav1.LabelSelectorOpIn, "web")),
			want: "app=web",
		},
		{
			name: "unknown operator",
			ls:   makeLS(withExpr("app", "Equals", "web")),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[0].operator", metav1.LabelSelectorOperator("Equals")}},
		},
		{
			name: "empty operator",
			ls:   makeLS(withExpr("app", "")),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[0].operator", metav1.LabelSelectorOperator("")}},
		},
		{
			name: "In without values",
			ls:   makeLS(withExpr("app", metav1.LabelSelectorOpIn)),
			want: "<none>",
			errs: []errSpec{{Type: field.ErrorTypeRequired, Field: "spec.podSelector.matchExpressions[0].values"}},
		},
		{
			name: "NotIn without values",
			ls:   makeLS(withMatchLabels("a", "b"), withExpr("app", metav1.LabelSelectorOpNotIn)),
			want: "<none>",
			errs: []errSpec{{Type: field.ErrorTypeRequired, Field: "spec.podSelector.matchExpressions[0].values"}},
		},
		{
			name: "Exists with values",
			ls:   makeLS(withExpr("app", metav1.LabelSelectorOpExists, "web")),
			want: "<none>",
			errs: []errSpec{{Type: field.ErrorTypeForbidden, Field: "spec.podSelector.matchExpressions[0].values"}},
		},
		{
			name: "DoesNotExist with values",
			ls:   makeLS(withExpr("team", metav1.LabelSelectorOpExists), withExpr("app", metav1.LabelSelectorOpDoesNotExist, "web")),
			want: "<none>",
			errs: []errSpec{{Type: field.ErrorTypeForbidden, Field: "spec.podSelector.matchExpressions[1].values"}},
		},
		{
			name: "bad expression key",
			ls:   makeLS(withExpr("bad key", metav1.LabelSelectorOpExists)),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[0].key", "bad key"}},
		},
		{
			name: "empty expression key",
			ls:   makeLS(withExpr("", metav1.LabelSelectorOpExists)),
			want: "<none>",
			errs: []errSpec{ // IsQualifiedName reports two problems, each an error (as upstream)
				{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[0].key", ""},
				{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[0].key", ""},
			},
		},
		{
			// The API server serves stored policies with such values
			// (AllowInvalidLabelValueInSelector): accepted, matching no label.
			name: "bad expression value is served by the API server",
			ls:   makeLS(withExpr("app", metav1.LabelSelectorOpIn, "ok", "not ok")),
			want: `app in ("not ok",ok)`,
		},
		{
			name: "too long expression value is served by the API server",
			ls:   makeLS(withExpr("app", metav1.LabelSelectorOpNotIn, long)),
			want: "app!=" + long,
		},
		{
			name: "63-character key and value",
			ls:   makeLS(withMatchLabels(strings.Repeat("k", 63), strings.Repeat("v", 63))),
			want: strings.Repeat("k", 63) + "=" + strings.Repeat("v", 63),
		},
		{
			name: "64-character key",
			ls:   makeLS(withMatchLabels(strings.Repeat("k", 64), "v")),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchLabels", strings.Repeat("k", 64)}},
		},
		{
			name: "64-character matchLabels value",
			ls:   makeLS(withMatchLabels("app", long)),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchLabels", long}},
		},
		{
			name: "DNS subdomain prefix",
			ls:   makeLS(withExpr("team.example.com/tier", metav1.LabelSelectorOpExists)),
			want: "team.example.com/tier",
		},
		{
			name: "prefix in upper case",
			ls:   makeLS(withExpr("Example.com/tier", metav1.LabelSelectorOpExists)),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[0].key", "Example.com/tier"}},
		},
		{
			name: "empty prefix",
			ls:   makeLS(withExpr("/tier", metav1.LabelSelectorOpExists)),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[0].key", "/tier"}},
		},
		{
			name: "value with a dot, dash and underscore inside",
			ls:   makeLS(withMatchLabels("app", "a.b-c_d")),
			want: "app=a.b-c_d",
		},
		{
			name: "value ending in a dash",
			ls:   makeLS(withMatchLabels("app", "web-")),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchLabels", "web-"}},
		},
		{
			name: "bad matchLabels key",
			ls:   makeLS(withMatchLabels("-app", "web")),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchLabels", "-app"}},
		},
		{
			name: "reserved prefix key is not a label key",
			ls:   makeLS(withMatchLabels("\x00ns/app", "web")),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchLabels", "\x00ns/app"}},
		},
		{
			name: "bad matchLabels value",
			ls:   makeLS(withMatchLabels("app", "web!")),
			want: "<none>",
			errs: []errSpec{{field.ErrorTypeInvalid, "spec.podSelector.matchLabels", "web!"}},
		},
		{
			name: "every problem is collected",
			ls: makeLS(
				withMatchLabels("b@d", "ok", "good", "b@d"),
				withExpr("app", metav1.LabelSelectorOpIn, "web"),
				withExpr("k", "Bogus", "v"),
				withExpr("x y", metav1.LabelSelectorOpExists, "v", "w w"),
				withExpr("tier", metav1.LabelSelectorOpNotIn),
			),
			want: "<none>",
			errs: []errSpec{
				{field.ErrorTypeInvalid, "spec.podSelector.matchLabels", "b@d"}, // key b@d
				{field.ErrorTypeInvalid, "spec.podSelector.matchLabels", "b@d"}, // value of good
				{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[1].operator", metav1.LabelSelectorOperator("Bogus")},
				{Type: field.ErrorTypeForbidden, Field: "spec.podSelector.matchExpressions[2].values"},
				{field.ErrorTypeInvalid, "spec.podSelector.matchExpressions[2].key", "x y"},
				{Type: field.ErrorTypeRequired, Field: "spec.podSelector.matchExpressions[3].values"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel, errs := Compile(tc.ls, root)
			assert.Equal(t, tc.errs, specsOf(errs))
			assert.Equal(t, tc.want, sel.String())
			if len(errs) > 0 {
				assert.True(t, sel.IsNothing(), "an invalid selector must compile to Nothing")
			}
		})
	}
}

func TestCompileNilPath(t *testing.T) {
	_, errs := Compile(makeLS(withExpr("app", metav1.LabelSelectorOpIn)), nil)
	require.Len(t, errs, 1)
	assert.Equal(t, "matchExpressions[0].values", errs[0].Field)
}

func TestCompileDoesNotAliasInput(t *testing.T) {
	ls := makeLS(withExpr("tier", metav1.LabelSelectorOpIn, "b", "a"))
	sel, errs := Compile(ls, nil)
	require.Empty(t, errs)
	ls.MatchExpressions[0].Values[0] = "zzz"
	ls.MatchExpressions[0].Values[1] = "zzz"
	assert.Equal(t, "tier in (a,b)", sel.String())
	assert.True(t, sel.Matches(map[string]string{"tier": "a"}))
}

// TestCompileAgainstUpstream compares Compile with apimachinery on random
// selectors: validity and every error agree with the API server's
// validation of a stored NetworkPolicy, and valid selectors match exactly
// the label sets metav1.LabelSelectorAsSelector's do (an invalid value in an
// expression, which LabelSelectorAsSelector refuses, is compared as a valid
// value no label holds).
func TestCompileAgainstUpstream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"a", "b", "example.com/c", "bad key"}
	values := []string{"x", "y", "", "bad value"}
	ops := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn,
		metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist, "Bogus"}
	pick := func(s []string, n int) string { return s[rng.IntN(n)] }
	for iter := range 3000 {
		var ls *metav1.LabelSelector
		if iter%50 != 0 {
			ls = &metav1.LabelSelector{}
			for range rng.IntN(3) {
				withMatchLabels(pick(keys, len(keys)), pick(values, len(values)))(ls)
			}
			for range rng.IntN(4) {
				op := ops[rng.IntN(len(ops))]
				var vs []string
				for range rng.IntN(3) {
					vs = append(vs, pick(values, len(values)))
				}
				withExpr(pick(keys, len(keys)), op, vs...)(ls)
			}
		}
		sel, errs := Compile(ls, field.NewPath("sel"))
		upstreamErrs := metavalidation.ValidateLabelSelector(ls, metavalidation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: true}, field.NewPath("sel"))
		require.ElementsMatch(t, upstreamErrs, errs, "selector %+v", ls)
		if len(errs) > 0 {
			require.True(t, sel.IsNothing())
			continue
		}
		if ls != nil {
			ls = ls.DeepCopy()
			for i := range ls.MatchExpressions {
				for j, v := range ls.MatchExpressions[i].Values {
					if v == "bad value" {
						ls.MatchExpressions[i].Values[j] = "no-label-holds-this"
					}
				}
			}
		}
		up, err := metav1.LabelSelectorAsSelector(ls)
		require.NoError(t, err)
		for range 20 {
			lbls := map[string]string{}
			for _, k := range keys[:3] {
				if rng.IntN(2) == 0 {
					lbls[k] = pick(values, 3)
				}
			}
			require.Equal(t, up.Matches(labels.Set(lbls)), sel.Matches(lbls), "selector %s, labels %v", sel, lbls)
		}
	}
}
