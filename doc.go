// Package palisade enforces Kubernetes network policy on a node. It is a
// library: a CNI plugin or node agent imports it, feeds it cluster objects,
// and gets the node's packet filter programmed.
//
// # Data flow
//
//	API server ──informer──▶ policy.Engine ──IR snapshot/delta──▶ backend.Backend ──▶ kernel
//	YAML files ────────────▶       │                                   └─ backend/memory: evaluates flows
//	                        selector.Index (incremental matches)
//
// Objects go in, IR comes out, backends render it. Backends never see
// Kubernetes types or selectors.
//
// # Packages
//
//   - selector: compiled label selectors and an inverted index that keeps
//     every selector's match set current as labels change.
//   - policy: the Engine (Namespaces, Pods, NetworkPolicies in; full IR
//     snapshots and incremental deltas out; validation), and policy/ir, the
//     intermediate representation (address sets, named-port sets, rule lists
//     with origins, endpoints with ordered tiers).
//   - backend: the Backend interface (Sync, Apply, Cleanup); backend/memory,
//     the in-memory model and reference evaluator; backend/nftables (netlink,
//     one private table); backend/iptables (own chains and ipsets);
//     backend/backendtest, a conformance suite and a lab of network
//     namespaces for testing any backend against real traffic;
//     backend/verdictlog, the kernel backends' verdict log (NFLOG, rate
//     limited in the kernel) read back as records naming tier, policy and
//     rule.
//   - informer: client-go informers feeding the engine, with coalesced,
//     rate-limited syncs to a backend (see its doc for embedding it in a
//     CNI daemon).
//   - examples: netpolctl (simulate, explain, lab, render, bench), a demo
//     cluster, the node agent (a deployable DaemonSet) and the end-to-end
//     suite with a real API server.
//
// # Embedding
//
// A minimal loop: keep the engine fed from your informers or your own store,
// and hand its deltas to a backend. The memory backend stands in for the
// kernel here; a node agent uses backend/nftables.
//
//	engine := policy.New(policy.Config{NodeName: "node-1"})
//	be := memory.New(memory.Config{})
//
//	engine.UpsertNamespace(ns)
//	if err := engine.UpsertPod(pod); err != nil {
//		log.Print(err) // a field the engine could not use; the rest applies
//	}
//	if err := engine.UpsertNetworkPolicy(np); err != nil {
//		log.Print(err) // invalid: it isolates what it selects and allows nothing
//	}
//
//	if _, err := be.Sync(ctx, engine.Checkpoint()); err != nil { ... } // full state, once
//	for range changes {
//		if err := be.Apply(ctx, engine.Delta()); err != nil {
//			be.Sync(ctx, engine.Checkpoint()) // a missed delta is repaired by a full sync
//		}
//	}
//	_ = engine.Snapshot() // reading the state, any time, changes nothing
//
//	v := be.Evaluate(memory.Flow{Src: a, Dst: b, Protocol: ir.TCP, Port: 6379})
//	fmt.Println(v.Allowed, v.Ingress) // allowed by NetworkPolicy/shop/db-from-frontend rule 0
package palisade
