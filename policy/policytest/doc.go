// Package policytest holds test tooling for NetworkPolicy enforcement that
// any suite can reuse: small object builders, an in-memory Cluster whose
// changes can be fed to a policy engine step by step, the standard
// three-namespace model of the Kubernetes network-policy e2e suite, truth
// tables of expected pod-to-pod reachability, and that suite's scenarios as
// plain data.
//
// Nothing here depends on Palisade's engine or on a backend: a scenario is
// Kubernetes objects plus expected matrices, so the engine's unit tests, the
// memory backend and a kernel backend conformance suite can all run the very
// same scenarios and compare what they observe with the same expectations.
//
// # The model
//
// StandardModel builds namespaces x, y and z (labelled ns=<name> and
// kubernetes.io/metadata.name=<name>), each with pods a, b and c (labelled
// pod=<name>). Every pod has one container per port (80, 81) and protocol
// (TCP, UDP, SCTP), the container port named like upstream's:
// "serve-80-tcp", "serve-81-udp", and so on. Pod IPs are deterministic:
// 10.0.<n>.<m> for IPv4 and fd00::<n>:<m> for IPv6, where n numbers the
// namespace (x=1, y=2, z=3) and m the pod (a=1, b=2, c=3); x/a is 10.0.1.1 and
// fd00::1:1. A model has one or both families (the first is status.podIP).
// Every pod runs on node "node-1" unless Model.Node says otherwise.
//
// # Scenarios
//
// Scenarios returns every scenario of the upstream suite
// (kubernetes/kubernetes test/e2e/network/netpol/network_policy.go), each as
// ordered steps: a mutation of the cluster (create, update or delete a
// policy, relabel a pod or a namespace) and the matrices to check after it.
// The expected matrices are transcribed by hand from the upstream
// expectations, never computed. A scenario assumes the standard pods (x/a …
// z/c) in any family. Where upstream derives an ipBlock from a pod's IP, the
// mutation reads the IP from the cluster and adds one block per family the
// cluster has, so the same expectations hold in IPv4, IPv6 and dual-stack
// clusters. Extras returns a few scenarios upstream does not have (endPort,
// SCTP allowed), with expectations derived by hand from the API semantics.
//
// A runner loads Model.Cluster into the engine under test, then for each step
// clones the cluster, applies the step's Mutate, feeds the difference with
// Load (the incremental path: upserts of new and changed objects, deletes of
// removed ones), and for each Check builds the observed matrix with Observe
// and compares it with Compare.
//
// # Loopback
//
// Upstream's expectations sometimes deny a pod's connection to itself (an
// ExpectPeer over a whole namespace covers the diagonal), but upstream never
// checks the diagonal: its comparison ignores loopback, because CNIs disagree
// on it (kubernetes/kubernetes#95879). The scenarios keep upstream's values
// as written. Palisade's semantics are definite: a pod's traffic to itself
// never leaves the pod and is always allowed. A runner for Palisade therefore
// compares against Expected with AllowLoopback applied (CompareOptions
// LoopbackAllowed), which checks the diagonal too; a runner that wants
// upstream's exact behaviour sets IgnoreLoopback instead.
package policytest
