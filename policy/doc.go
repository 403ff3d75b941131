// Package policy is Palisade's calculation engine: Kubernetes objects in,
// the IR (package ir) out. Backends program the IR; they never see a
// Kubernetes type or a selector.
//
// Data flow:
//
//	Namespace, Pod, NetworkPolicy ──Upsert*/Delete*──▶ Engine
//	    │ each selector compiled once, indexed (package selector): a label
//	    │ change moves set members, it does not rebuild rules
//	    ▼
//	address sets (pod IPs a peer matches; ipBlocks minus their excepts)
//	port sets (named ports resolved per pod) · rule lists per (policy,
//	direction) · endpoints (the local pods, their tiers in order)
//	    │
//	    ├─ Snapshot()   the full IR, read-only: no side effect, any caller
//	    ├─ Checkpoint() the full IR, and the next Delta starts from it
//	    └─ Delta()      the change since the last Delta or Checkpoint
//	    ▼
//	backend.Backend: Sync(snapshot) / Apply(delta)
//
// A program keeping a backend in step runs one loop:
//
//	be.Sync(ctx, e.Checkpoint())              // once, full state
//	for each burst of events:
//		if be.Apply(ctx, e.Delta()) fails {
//			be.Sync(ctx, e.Checkpoint())      // full sync repairs it
//		}
//
// Delta and Checkpoint are the only calls that end a delta; Snapshot,
// Problems and SharedAddresses only read. Generations chain: a delta's
// Base is the Generation of the previous Delta or Checkpoint, and applying
// every delta to the checkpoint they start from gives Snapshot exactly
// (a fuzz test holds it).
//
// What it guarantees:
//   - NetworkPolicy semantics as the Kubernetes API defines them; which
//     pods are endpoints is Config's choice (a node's, or all).
//   - Bad input never opens traffic: a NetworkPolicy that fails validation
//     is reported (*ValidationError, naming object and field) and enforced
//     in its safe form, isolating what it selects and allowing nothing.
//   - Objects passed in are copied from, never retained or modified.
//   - An Engine is safe for concurrent use; calls are serialized.
//   - A change costs what it touches, not the size of the cluster.
package policy
