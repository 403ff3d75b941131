// Package reach enumerates and decides the flows among a selection of pods:
// what netpolctl's matrix and diff commands show.
//
// A Selection picks pods (by namespace and/or label selector) and ports
// (given, or each destination pod's container ports). Flows yields every
// ordered pair of distinct selected pods, once per destination port, in a
// fixed order (source namespace/name, destination namespace/name,
// protocol, port). Evaluator decides each flow with the memory backend,
// the reference evaluator, so the caller gets the verdict and the tier,
// policy and rule that decided at each end.
//
// Guarantees:
//   - Only pods that can take part in a flow are selected: not hostNetwork
//     (such a pod speaks with its node's address and is neither an enforced
//     endpoint nor a pod peer), with an IP, and not Succeeded or Failed.
//   - A pod's flow to itself is not enumerated (always allowed).
//   - With no ports given, a destination offers each of its containers'
//     ports once per (port, protocol), protocol TCP when unset; a pod
//     without container ports receives no flow. A named container port is
//     tried by its number; Flow.PortName keeps its name.
//   - Bad input (a label selector that does not parse, a port out of
//     range, an unknown protocol) is an error naming the flag and the
//     item; a namespace that does not exist selects nothing.
package reach
