// Package ir defines Palisade's intermediate representation: what the policy
// engine produces and what every backend consumes. It holds resolved data only
// (IP prefixes, protocols, port ranges, (address, port) pairs, ordered rule
// lists) and imports no Kubernetes package, so a backend can be built, tested
// and fuzzed without a cluster.
//
// A Snapshot is the whole state: address sets and port sets (shared by every
// rule that uses the same peer or named port), rule lists (one per policy
// object and direction, shared by every endpoint that object selects, each
// rule carrying its origin), and endpoints (the local pods to enforce, with
// the ordered tiers that apply to each direction).
//
// A connection from S to D is allowed when the egress tiers of S's endpoint
// (if S is a local endpoint) and the ingress tiers of D's endpoint (if D is a
// local endpoint) both allow it. For one direction the tiers are evaluated in
// order: a first-match tier (Admin, Baseline) ends evaluation at its first
// matching Allow or Deny rule and moves on at a Pass rule or when nothing
// matches; the NetworkPolicy tier allows when any rule matches and denies
// otherwise. When no tier decides, the connection is allowed.
//
// An endpoint may name its interface on the node (Endpoint.Interface): a
// backend then drops every packet arriving on that interface whose source
// is not one of the endpoint's addresses (IPv6 fe80::/10 and :: excepted,
// for neighbour discovery), so that a connection's source address names
// its sender, which the rule above takes for granted. SourceChanges gives a
// backend what a delta changes there.
//
// A Delta carries the change between two generations; Snapshot.Apply applies
// one and the engine guarantees that applying every delta in order to an empty
// snapshot yields its full snapshot.
//
// The contract has one validator, CheckDelta: Snapshot.Validate checks the
// delta that builds a snapshot from nothing (Snapshot.FromNothing),
// Snapshot.Apply and every backend check each delta against what they hold
// (Held) with it, so the memory, nftables and iptables backends accept and
// reject exactly the same IR, and what they accept they can program. Errors
// wrap ErrInvalid (the IR breaks the contract) or ErrStaleBase (a delta from
// another generation); test them with errors.Is. irtest.ContractCases lists
// the edge cases every validator and backend is tested on.
package ir
