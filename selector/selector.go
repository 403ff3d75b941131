package selector

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Operator is the relation a Requirement sets between a label key and its values.
type Operator string

const (
	// In matches objects that have the key with one of the values. Equality
	// (matchLabels k: v) is In with a single value.
	In Operator = "In"
	// NotIn matches objects that lack the key or have it with none of the values.
	NotIn Operator = "NotIn"
	// Exists matches objects that have the key, whatever its value.
	Exists Operator = "Exists"
	// DoesNotExist matches objects that lack the key.
	DoesNotExist Operator = "DoesNotExist"
)

// rank orders operators inside the canonical requirement order.
func (op Operator) rank() int {
	switch op {
	case In:
		return 0
	case NotIn:
		return 1
	case Exists:
		return 2
	default:
		return 3
	}
}

// Requirement is one term of a selector's conjunction. Values are sorted and
// deduplicated, non-empty for In and NotIn, and empty for Exists and
// DoesNotExist. Requirements are only produced by this package (Compile,
// Equal, And, WithKeyPrefix, Selector.Requirements), which keeps that shape.
type Requirement struct {
	Key    string
	Op     Operator
	Values []string
}

// matches reports whether labels satisfy r. Values of In/NotIn are sorted.
func (r *Requirement) matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Op {
	case In:
		return ok && containsSorted(r.Values, v)
	case NotIn:
		return !ok || !containsSorted(r.Values, v)
	case Exists:
		return ok
	default: // DoesNotExist
		return !ok
	}
}

func containsSorted(values []string, v string) bool {
	if len(values) <= 8 {
		for _, x := range values {
			if x == v {
				return true
			}
		}
		return false
	}
	_, found := slices.BinarySearch(values, v)
	return found
}

func compareRequirements(a, b Requirement) int {
	if c := strings.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Op.rank(), b.Op.rank()); c != 0 {
		return c
	}
	return slices.Compare(a.Values, b.Values)
}

func (r Requirement) clone() Requirement {
	r.Values = slices.Clone(r.Values)
	return r
}

// Selector is an immutable compiled label selector: a conjunction of
// requirements, or "nothing" (a selector that matches no object).
//
// The zero value is Everything(): it has no requirement and selects every
// object, including objects without labels. Selectors are small values that
// share their immutable contents; copying one is cheap, and they are safe for
// concurrent use. Compare selectors by String, not with ==.
type Selector struct {
	d *selData // nil: everything
}

type selData struct {
	reqs    []Requirement // canonical order, deduplicated, never empty unless nothing
	nothing bool
	str     string // canonical rendering, computed once
}

var nothingData = &selData{nothing: true, str: "<none>"}

// Everything returns the selector that matches every object (also the zero
// Selector).
func Everything() Selector { return Selector{} }

// Nothing returns the selector that matches no object.
func Nothing() Selector { return Selector{d: nothingData} }

// Equal returns the selector matching objects whose label key has exactly
// value. Neither key nor value is validated: any string, the empty string and
// keys with reserved non-printable prefixes included, is accepted.
func Equal(key, value string) Selector {
	return newSelector([]Requirement{{Key: key, Op: In, Values: []string{value}}})
}

// newSelector takes ownership of reqs (each with sorted, deduplicated values),
// sorts and deduplicates them and renders the canonical string. No requirement
// gives Everything.
func newSelector(reqs []Requirement) Selector {
	if len(reqs) == 0 {
		return Selector{}
	}
	slices.SortFunc(reqs, compareRequirements)
	reqs = slices.CompactFunc(reqs, func(a, b Requirement) bool { return compareRequirements(a, b) == 0 })
	reqs = slices.Clip(reqs)
	d := &selData{reqs: reqs}
	d.str = render(reqs)
	return Selector{d: d}
}

// IsEverything reports whether s has no requirement and is not Nothing, i.e.
// selects every object.
func (s Selector) IsEverything() bool { return s.d == nil }

// IsNothing reports whether s is Nothing, i.e. selects no object. A selector
// whose requirements contradict each other (a=x and a=y) is not Nothing: it
// merely matches no object.
func (s Selector) IsNothing() bool { return s.d != nil && s.d.nothing }

// Matches reports whether an object with the given labels is selected. A nil
// or empty labels map is an object without labels: it is matched by
// Everything and by selectors made only of NotIn and DoesNotExist
// requirements (Kubernetes semantics: NotIn and DoesNotExist match objects
// lacking the key). Nothing matches no object.
func (s Selector) Matches(labels map[string]string) bool {
	if s.d == nil {
		return true
	}
	if s.d.nothing {
		return false
	}
	for i := range s.d.reqs {
		if !s.d.reqs[i].matches(labels) {
			return false
		}
	}
	return true
}

// And returns the conjunction of s and o: an object is selected when both
// select it. Nothing absorbs (Nothing().And(x) is Nothing), Everything is
// neutral, and identical requirements appear once in the result.
func (s Selector) And(o Selector) Selector {
	switch {
	case s.IsNothing() || o.IsNothing():
		return Nothing()
	case s.IsEverything():
		return o
	case o.IsEverything():
		return s
	}
	reqs := make([]Requirement, 0, len(s.d.reqs)+len(o.d.reqs))
	reqs = append(reqs, s.d.reqs...)
	reqs = append(reqs, o.d.reqs...)
	// Values slices are shared, never mutated: selectors are immutable.
	return newSelector(reqs)
}

// WithKeyPrefix returns s with prefix prepended to every requirement's key,
// so that a selector written against one label map can be evaluated against
// labels stored under that prefix in another. Everything and Nothing are
// returned unchanged; an empty prefix returns s. The prefix is not validated.
func (s Selector) WithKeyPrefix(prefix string) Selector {
	if prefix == "" || s.d == nil || s.d.nothing {
		return s
	}
	reqs := make([]Requirement, len(s.d.reqs))
	for i, r := range s.d.reqs {
		r.Key = prefix + r.Key
		reqs[i] = r
	}
	// A common prefix keeps the relative order of keys: reqs stays canonical.
	d := &selData{reqs: reqs}
	d.str = render(reqs)
	return Selector{d: d}
}

// Requirements returns a copy of s's requirements in canonical order (by key,
// then operator In, NotIn, Exists, DoesNotExist, then values). It returns nil
// for Everything and for Nothing; use IsNothing to tell them apart.
func (s Selector) Requirements() []Requirement {
	if s.d == nil || s.d.nothing {
		return nil
	}
	out := make([]Requirement, len(s.d.reqs))
	for i, r := range s.d.reqs {
		out[i] = r.clone()
	}
	return out
}

// requirements returns the internal slice; callers must not modify it.
func (s Selector) requirements() []Requirement {
	if s.d == nil {
		return nil
	}
	return s.d.reqs
}

// String returns the canonical rendering of s, usable as a deduplication key:
// selectors built from the same requirements, in any order and with any
// duplicates, render identically, and different requirement sets render
// differently. Everything renders as "<all>", Nothing as "<none>". Otherwise
// requirements are joined by commas in canonical order: "k=v" (In with one
// value), "k in (a,b)", "k!=v" (NotIn with one value), "k notin (a,b)", "k"
// (Exists) and "!k" (DoesNotExist). A key or value that is empty (keys only)
// or holds a character outside [A-Za-z0-9._/-] is rendered Go-quoted
// (strconv.Quote), so reserved non-printable prefixes stay visible and the
// rendering stays unambiguous.
func (s Selector) String() string {
	if s.d == nil {
		return "<all>"
	}
	return s.d.str
}

func render(reqs []Requirement) string {
	var b strings.Builder
	for i, r := range reqs {
		if i > 0 {
			b.WriteByte(',')
		}
		switch r.Op {
		case In, NotIn:
			writeToken(&b, r.Key, false)
			if len(r.Values) == 1 {
				if r.Op == In {
					b.WriteByte('=')
				} else {
					b.WriteString("!=")
				}
				writeToken(&b, r.Values[0], true)
				continue
			}
			if r.Op == In {
				b.WriteString(" in (")
			} else {
				b.WriteString(" notin (")
			}
			for j, v := range r.Values {
				if j > 0 {
					b.WriteByte(',')
				}
				writeToken(&b, v, true)
			}
			b.WriteByte(')')
		case Exists:
			writeToken(&b, r.Key, false)
		default:
			b.WriteByte('!')
			writeToken(&b, r.Key, false)
		}
	}
	return b.String()
}

// writeToken writes s raw when it only holds characters legal in label keys
// and values, quoted otherwise. An empty value is written raw ("k="), an
// empty key quoted.
func writeToken(b *strings.Builder, s string, isValue bool) {
	plain := s != "" || isValue
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '/'
	}
	if plain {
		b.WriteString(s)
		return
	}
	b.WriteString(strconv.Quote(s))
}
