// Package policy is Palisade's calculation engine: Kubernetes objects in,
// the IR (package ir) out. Backends program the IR; they never see a
// Kubernetes type or a selector.
//
// Data flow:
//
//	Namespace, Pod, NetworkPolicy,
//	AdminNetworkPolicy, BaselineAdminNetworkPolicy,
//	ClusterNetworkPolicy, Node           ──Upsert*/Delete*──▶ Engine
//	    │ each selector compiled once, indexed (package selector): a label
//	    │ change moves set members, it does not rebuild rules
//	    ▼
//	address sets (pod IPs a peer matches; ipBlocks minus their excepts)
//	port sets (named ports resolved per pod) · rule lists per (policy,
//	direction) · node address sets (InternalIPs a nodes peer matches) ·
//	endpoints (the local pods, their tiers in order: Admin, NetworkPolicy,
//	Baseline)
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
// Problems, SharedAddresses and PodAt only read. Generations chain: a delta's
// Base is the Generation of the previous Delta or Checkpoint, and applying
// every delta to the checkpoint they start from gives Snapshot exactly
// (a fuzz test holds it).
//
// What it guarantees:
//   - NetworkPolicy semantics as the Kubernetes API defines them, and the
//     cluster-wide tiers of policy.networking.k8s.io (AdminNetworkPolicy and
//     BaselineAdminNetworkPolicy v1alpha1, ClusterNetworkPolicy v1beta1):
//     per direction the Admin tier first (lowest priority first; at equal
//     priority AdminNetworkPolicy before ClusterNetworkPolicy, then by name;
//     the first matching rule decides, Pass leaves the tier), then the
//     NetworkPolicy tier (an isolated pod is decided there), then the
//     Baseline tier (ClusterNetworkPolicies by priority, then the
//     BaselineAdminNetworkPolicy), then allow. Which pods are endpoints is
//     Config's choice (a node's, or all).
//   - Bad input never opens traffic: a NetworkPolicy that fails validation
//     is reported (*ValidationError, naming object and field) and enforced
//     in its safe form, isolating what it selects and allowing nothing; a
//     cluster-wide policy's invalid Allow rule matches nothing and its
//     invalid Deny or Pass rule denies everything at its position (see
//     cluster.go for every case).
//   - The annotation palisade.dev/log-allowed: "true" (LogAllowedAnnotation)
//     on a policy object, or on a Namespace for its NetworkPolicies, sets
//     ir.RuleList.LogAllowed on their rule lists: a backend's verdict log
//     (package backend/verdictlog) then records the connections they allow.
//     It changes no verdict.
//   - Objects passed in are copied from, never retained or modified.
//   - An Engine is safe for concurrent use; calls are serialized.
//   - A change costs what it touches, not the size of the cluster.
package policy
