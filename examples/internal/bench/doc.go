// Package bench measures Palisade against the targets of DESIGN.md
// (Performance) and returns the figures as one Report, for netpolctl bench.
//
// Every figure is measured beside its baseline in the same run, on a
// synthetic cluster (policytest.Synthetic):
//   - engine: the full compile (every pod local) and its live heap, beside
//     the same pods without policy; one node's view; one pod's label change
//     (UpsertPod + Delta).
//   - backend (nftables, root): cold Sync, no-op resync and the Apply of a
//     one-pod change, at the configured size and at ten times the pods,
//     beside the cold Sync without policy.
//   - datapath (root): first-packet latency and new connections per second
//     between two real pods whose policies make both ends run through rule
//     chains, for several policy counts, each interleaved with the same
//     between two pods of a second lab node with no filter; plus a control
//     run (no table anywhere), connection tracking alone, and the backend
//     with no policy.
//
// Everything it programs lives in the network namespaces of a lab
// (backend/backendtest/lab): the host's packet filter and interfaces are
// never touched, and Run removes the table and the lab before it returns,
// on error and on cancellation too. Every loop is bounded in count and
// time.
package bench
