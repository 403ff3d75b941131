// Package source gives netpolctl's commands (simulate, explain, diff,
// matrix) their cluster state from one of two places, chosen by one flag
// set (Flags):
//
//   - files: -f PATH (repeatable), read by package manifest;
//   - a live cluster: --kubeconfig PATH (with --context NAME), or, when
//     neither -f nor --kubeconfig is given and the process runs in a pod
//     (KUBERNETES_SERVICE_HOST is set), the in-cluster configuration.
//
// A live cluster is listed once through client-go: Namespaces, Pods, Nodes,
// NetworkPolicies, and the cluster-wide policy kinds of
// policy.networking.k8s.io that discovery says are served (converted as
// the node agent converts them, informer.DecodeAdminNetworkPolicy and
// friends). The result is a manifest.State like the one files give, so the
// same engine decides the same way whatever the source.
//
// Guarantees: an error never yields a partial state (a kind that cannot be
// listed, or a cluster-wide policy that cannot be read, fails the whole
// load, since a missing Deny would turn into a wrong allow); errors say
// which API server and which resource (an RBAC refusal names the resource
// and verb), or which file, object and field.
package source
