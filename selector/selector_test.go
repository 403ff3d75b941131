package selector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const nsPrefix = "\x00ns/"

// mustCompile compiles a selector built from tweaks and fails the test on error.
func mustCompile(t testing.TB, tweaks ...lsTweak) Selector {
	t.Helper()
	sel, errs := Compile(makeLS(tweaks...), nil)
	require.Empty(t, errs)
	return sel
}

func lbl(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestMatches(t *testing.T) {
	web := Equal("app", "web")
	tierAB := mustCompile(t, withExpr("tier", metav1.LabelSelectorOpIn, "a", "b"))
	notAB := mustCompile(t, withExpr("tier", metav1.LabelSelectorOpNotIn, "a", "b"))
	team := mustCompile(t, withExpr("team", metav1.LabelSelectorOpExists))
	noLegacy := mustCompile(t, withExpr("legacy", metav1.LabelSelectorOpDoesNotExist))
	many := mustCompile(t, withExpr("v", metav1.LabelSelectorOpIn, "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"))
	tests := []struct {
		name   string
		sel    Selector
		labels map[string]string
		want   bool
	}{
		{"everything, nil labels", Everything(), nil, true},
		{"zero value is everything", Selector{}, lbl("a", "b"), true},
		{"nothing, nil labels", Nothing(), nil, false},
		{"nothing, labels", Nothing(), lbl("app", "web"), false},
		{"equal hit", web, lbl("app", "web", "x", "y"), true},
		{"equal other value", web, lbl("app", "db"), false},
		{"equal missing key", web, nil, false},
		{"equal empty value", Equal("app", ""), lbl("app", ""), true},
		{"equal empty value, missing key", Equal("app", ""), nil, false},
		{"in hit", tierAB, lbl("tier", "b"), true},
		{"in miss", tierAB, lbl("tier", "c"), false},
		{"in missing key", tierAB, nil, false},
		{"in many values hit", many, lbl("v", "7"), true},
		{"in many values miss", many, lbl("v", "11"), false},
		{"notin other value", notAB, lbl("tier", "c"), true},
		{"notin listed value", notAB, lbl("tier", "a"), false},
		{"notin missing key matches", notAB, nil, true},
		{"exists", team, lbl("team", ""), true},
		{"exists missing", team, lbl("tea", "x"), false},
		{"doesnotexist missing key", noLegacy, nil, true},
		{"doesnotexist present", noLegacy, lbl("legacy", ""), false},
		{"conjunction all hold", web.And(tierAB).And(noLegacy), lbl("app", "web", "tier", "a"), true},
		{"conjunction one fails", web.And(tierAB).And(noLegacy), lbl("app", "web", "tier", "a", "legacy", "1"), false},
		{"contradiction", web.And(Equal("app", "db")), lbl("app", "web"), false},
		{"reserved prefix key", Equal(nsPrefix+"kubernetes.io/metadata.name", "prod"), lbl(nsPrefix+"kubernetes.io/metadata.name", "prod"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.sel.Matches(tc.labels))
		})
	}
}

func TestAnd(t *testing.T) {
	web := Equal("app", "web")
	db := Equal("tier", "db")
	tests := []struct {
		name string
		got  Selector
		want string
	}{
		{"everything and everything", Everything().And(Everything()), "<all>"},
		{"everything is neutral (left)", Everything().And(web), "app=web"},
		{"everything is neutral (right)", web.And(Everything()), "app=web"},
		{"nothing absorbs (left)", Nothing().And(web), "<none>"},
		{"nothing absorbs (right)", web.And(Nothing()), "<none>"},
		{"nothing absorbs everything", Everything().And(Nothing()), "<none>"},
		{"order does not matter", db.And(web), "app=web,tier=db"},
		{"duplicates removed", web.And(db).And(web).And(db), "app=web,tier=db"},
		{"same key different values kept", web.And(Equal("app", "db")), "app=db,app=web"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.got.String())
		})
	}
	assert.True(t, Nothing().And(web).IsNothing())
	assert.True(t, Everything().And(Everything()).IsEverything())
	assert.Len(t, web.And(db).And(web).Requirements(), 2)
}

func TestWithKeyPrefix(t *testing.T) {
	nsSel := mustCompile(t, withMatchLabels("team", "x"), withExpr("env", metav1.LabelSelectorOpNotIn, "dev"))
	podSel := Equal("app", "web")
	peer := nsSel.WithKeyPrefix(nsPrefix).And(podSel)

	assert.Equal(t, []Requirement{
		{Key: nsPrefix + "env", Op: NotIn, Values: []string{"dev"}},
		{Key: nsPrefix + "team", Op: In, Values: []string{"x"}},
		{Key: "app", Op: In, Values: []string{"web"}},
	}, peer.Requirements())
	assert.True(t, peer.Matches(lbl("app", "web", nsPrefix+"team", "x")))
	assert.False(t, peer.Matches(lbl("app", "web", "team", "x")), "unprefixed namespace label must not count")
	assert.False(t, peer.Matches(lbl("app", "web", nsPrefix+"team", "x", nsPrefix+"env", "dev")))
	assert.Equal(t, `"\x00ns/env"!=dev,"\x00ns/team"=x,app=web`, peer.String())

	assert.True(t, Everything().WithKeyPrefix(nsPrefix).IsEverything())
	assert.True(t, Nothing().WithKeyPrefix(nsPrefix).IsNothing())
	assert.Equal(t, podSel.String(), podSel.WithKeyPrefix("").String())
	// The original is unchanged (immutability).
	assert.Equal(t, "env!=dev,team=x", nsSel.String())
}

func TestStringCanonical(t *testing.T) {
	same := []struct {
		name string
		a, b Selector
	}{
		{"matchLabels vs one-value In",
			mustCompile(t, withMatchLabels("app", "web")),
			mustCompile(t, withExpr("app", metav1.LabelSelectorOpIn, "web"))},
		{"requirement order",
			mustCompile(t, withExpr("a", metav1.LabelSelectorOpExists), withExpr("b", metav1.LabelSelectorOpDoesNotExist)),
			mustCompile(t, withExpr("b", metav1.LabelSelectorOpDoesNotExist), withExpr("a", metav1.LabelSelectorOpExists))},
		{"value order and duplicates",
			mustCompile(t, withExpr("t", metav1.LabelSelectorOpIn, "b", "a", "a")),
			mustCompile(t, withExpr("t", metav1.LabelSelectorOpIn, "a", "b"))},
		{"duplicate requirements",
			mustCompile(t, withMatchLabels("app", "web"), withExpr("app", metav1.LabelSelectorOpIn, "web"), withExpr("x", metav1.LabelSelectorOpExists), withExpr("x", metav1.LabelSelectorOpExists)),
			mustCompile(t, withExpr("x", metav1.LabelSelectorOpExists), withMatchLabels("app", "web"))},
		{"Equal vs Compile", Equal("app", "web"), mustCompile(t, withMatchLabels("app", "web"))},
		{"And vs Compile",
			Equal("app", "web").And(Equal("tier", "db")),
			mustCompile(t, withMatchLabels("tier", "db", "app", "web"))},
		{"empty vs Everything", mustCompile(t), Everything()},
		{"nil vs Nothing", func() Selector { s, _ := Compile(nil, nil); return s }(), Nothing()},
	}
	for _, tc := range same {
		t.Run("same/"+tc.name, func(t *testing.T) {
			assert.Equal(t, tc.a.String(), tc.b.String())
			assert.Equal(t, tc.a.Requirements(), tc.b.Requirements())
		})
	}

	// Pairwise different selectors render differently.
	distinct := []Selector{
		Everything(), Nothing(),
		Equal("a", "b"), Equal("a", ""), Equal("a", "b,c"), Equal("a,b", "c"), Equal("", "a"),
		Equal("a", "b").And(Equal("c", "d")), Equal("a", "b,c=d"), Equal("a=b", "c"),
		mustCompile(t, withExpr("a", metav1.LabelSelectorOpIn, "b", "c")),
		mustCompile(t, withExpr("a", metav1.LabelSelectorOpNotIn, "b", "c")),
		mustCompile(t, withExpr("a", metav1.LabelSelectorOpNotIn, "b")),
		mustCompile(t, withExpr("a", metav1.LabelSelectorOpExists)),
		mustCompile(t, withExpr("a", metav1.LabelSelectorOpDoesNotExist)),
		Equal("!a", ""), Equal("<all>", "x"), Equal(`"a"`, "x"), Equal("a", `"x"`),
		Equal(nsPrefix+"a", "b"), Equal("a", "b").WithKeyPrefix(nsPrefix),
		Equal("a", "b").WithKeyPrefix("\x01ns/"),
	}
	seen := map[string]int{}
	for i, s := range distinct {
		if j, dup := seen[s.String()]; dup && distinct[j].String() != Equal(nsPrefix+"a", "b").String() {
			t.Errorf("selectors %d and %d both render %q", j, i, s.String())
		}
		seen[s.String()] = i
	}
	// The two spellings of the prefixed selector are the same selector.
	assert.Equal(t, Equal(nsPrefix+"a", "b").String(), Equal("a", "b").WithKeyPrefix(nsPrefix).String())
	assert.Equal(t, "<all>", Everything().String())
	assert.Equal(t, "<none>", Nothing().String())
}

func TestRequirementsIsACopy(t *testing.T) {
	sel := mustCompile(t, withExpr("t", metav1.LabelSelectorOpIn, "a", "b"))
	r := sel.Requirements()
	r[0].Values[0] = "zzz"
	r[0].Key = "other"
	assert.Equal(t, "t in (a,b)", sel.String())
	assert.True(t, sel.Matches(lbl("t", "a")))
	assert.Nil(t, Everything().Requirements())
	assert.Nil(t, Nothing().Requirements())
}

func TestPredicates(t *testing.T) {
	assert.True(t, Everything().IsEverything())
	assert.False(t, Everything().IsNothing())
	assert.True(t, Nothing().IsNothing())
	assert.False(t, Nothing().IsEverything())
	assert.False(t, Equal("a", "b").IsEverything())
	assert.False(t, Equal("a", "b").IsNothing())
}
