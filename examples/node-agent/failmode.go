package main

import (
	"context"
	"fmt"

	gnft "github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// nftBackend is the nftables backend plus what the fail-closed bootstrap
// needs to know: whether our table already exists.
type nftBackend struct {
	*nftables.Backend
	netnsFD int
	table   string
}

// tableExists reports whether the inet table of the agent exists in the
// target namespace.
func (b *nftBackend) tableExists() (bool, error) {
	var opts []gnft.ConnOption
	if b.netnsFD != 0 {
		opts = append(opts, gnft.WithNetNSFd(b.netnsFD))
	}
	c, err := gnft.New(opts...)
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	defer func() { _ = c.CloseLasting() }()
	tables, err := c.ListTablesOfFamily(gnft.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("nftables: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == b.table {
			return true, nil
		}
	}
	return false, nil
}

// failClosedBootstrap implements --fail-mode=closed for the window before
// the first full Sync. When our table exists (a previous run, an upgrade)
// it changes nothing: those rules keep enforcing until the first Sync
// replaces them atomically. On a node with no table of ours it isolates,
// in both directions, every pod the API server lists on this node right
// now: node-to-pod traffic (kubelet probes) and established connections
// stay allowed, everything else to and from those pods is dropped until
// the first full Sync programs the real policy.
func failClosedBootstrap(ctx context.Context, client kubernetes.Interface, be backend.Backend, o *options) error {
	log := klog.FromContext(ctx)
	nb, ok := be.(*nftBackend)
	if !ok {
		log.Info("Fail closed: the bootstrap isolation is implemented for nftables only; existing rules stay until the first sync", "backend", o.backend)
		return nil
	}
	exists, err := nb.tableExists()
	if err != nil {
		return err
	}
	if exists {
		log.Info("Fail closed: keeping the rules of the previous run until the first sync", "table", o.tableName)
		return nil
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", o.nodeName).String(),
	})
	if err != nil {
		return fmt.Errorf("list the pods of node %s: %w", o.nodeName, err)
	}
	snap := isolationSnapshot(o.nodeName, pods.Items)
	rep, err := be.Sync(ctx, snap)
	if err != nil {
		return err
	}
	log.Info("Fail closed: isolated this node's pods until the first sync",
		"endpoints", len(snap.Endpoints), "changes", rep.Changes)
	return nil
}

// isolationSnapshot is the IR that isolates every given pod of nodeName in
// both directions and allows nothing: a deny-all NetworkPolicy in each of
// their namespaces, compiled by the real engine.
func isolationSnapshot(nodeName string, pods []corev1.Pod) *ir.Snapshot {
	eng := policy.New(policy.Config{NodeName: nodeName})
	namespaces := map[string]bool{}
	for i := range pods {
		_ = eng.UpsertPod(&pods[i]) // an unusable IP is skipped
		namespaces[pods[i].Namespace] = true
	}
	for ns := range namespaces {
		_ = eng.UpsertNetworkPolicy(&networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "palisade-fail-closed"},
			Spec: networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			},
		})
	}
	return eng.Snapshot()
}
