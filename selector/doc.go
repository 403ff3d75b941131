// Package selector compiles Kubernetes label selectors and keeps, for each
// registered selector, the set of labelled objects it matches.
//
// # Selectors
//
// Compile turns a metav1.LabelSelector into an immutable Selector, validating
// it the way the API server does and reporting every problem as a field.Error.
// A nil LabelSelector selects nothing, an empty one selects everything (as
// metav1.LabelSelectorAsSelector). Selectors are conjunctions of requirements
// (In, NotIn, Exists, DoesNotExist, with Kubernetes semantics: NotIn and
// DoesNotExist match objects that lack the key); Nothing is a separate value
// that matches no object. Equal, And and WithKeyPrefix build selectors from
// code without validating keys, so that callers can match on labels stored
// under reserved prefixes that no Kubernetes label can use, e.g. a pod's
// namespace labels copied into the pod's label map under "\x00ns/":
//
//	peer := nsSel.WithKeyPrefix(prefix).And(podSel)
//
// Selector.String is canonical: selectors with the same requirements, in any
// order and with any duplicates, render the same, so the string is a
// deduplication key.
//
// # Index
//
// Index[K] holds labelled objects (keyed by any comparable K) and registered
// selectors (reference counted by canonical string, handled by ID), and keeps
// every selector's match set exactly equal to the objects its Matches accepts.
// Upsert and Delete return precisely the (selector, object) pairs whose
// membership flipped, sorted by selector ID; nothing else changes between
// calls. Their cost grows with the selectors anchored at the object's labels
// (plus those with no positive requirement), not with the number of selectors
// or objects; Add costs the objects in the selector's most selective bucket.
//
// Guarantees, checked by a randomized test and a fuzz target against a
// brute-force recomputation:
//   - after every call, MatchCount, Matches, Has and SelectorsOf agree with
//     Selector.Matches over the current labels of every object;
//   - the Changes returned by Upsert and Delete are exactly the flips, once
//     each, in ascending selector ID order;
//   - Compile never returns a partial selector: on any error it returns
//     Nothing.
//
// Neither Selector nor Index validate label keys or values outside Compile.
// An Index is not safe for concurrent use; Selectors are.
package selector
