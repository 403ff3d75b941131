// Package matrix builds netpolctl's reachability matrix: who can reach whom
// among a set of pods, on the ports asked, and renders it for a terminal, as
// a self-contained HTML page, or as JSON.
//
// Compute draws the matrix of a cluster state: it enumerates the flows among
// the pods a selection picks (package reach: every ordered pair of distinct
// pods, each destination port, ports given by number or by name or taken
// from the pods' containers), decides each with the memory backend's
// evaluator and names, at each end, the tier, policy and rule that decided
// (or, when an isolated end matched no rule, the policies that isolate it).
//
// Build, underneath, takes any list of evaluated flows (Result): one per
// ordered pair of pods and destination port, each carrying its verdict and
// what decided at each end (the egress of the source, the ingress of the
// destination). Build sorts the pods by namespace and name (numbers in names
// compare as numbers: web-2 before web-10), groups them by namespace and
// folds the flows of each pair into one Cell whose verdict is allow (every
// port allowed), deny (none), partial (some) or none (no port to test: the
// destination exposes none); the diagonal, a pod to itself, is self unless
// flows were given for it.
//
// Guarantees: the renderers print every pod given to Build, each exactly once
// as a row and as a column, in the same order; the HTML page loads nothing
// from the network and every name in it (pods, namespaces, policies, rules)
// is escaped text, never markup; the output depends on the input only (no
// time, no randomness), so it can be compared across runs.
package matrix
