package informer

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// FailClosedResult says what FailClosed did.
type FailClosedResult struct {
	// Kept is true when the backend reported its rules already installed
	// (a previous run, an upgrade): nothing was changed, and those rules
	// keep enforcing until the controller's first Sync replaces them.
	Kept bool
	// Endpoints is the number of pods isolated; zero when Kept.
	Endpoints int
	// Changes is what the isolating Sync changed; zero when Kept.
	Changes int
}

// FailClosed closes the window before a Controller's first full Sync on a
// node whose packet filter holds no rules of ours yet. Call it before
// Controller.Run, with the Backend the controller will program.
//
// When the Backend implements backend.Verifier and reports its rules
// installed, FailClosed changes nothing (Kept). Otherwise it lists, once,
// the pods the API server has on nodeName and Syncs the backend with their
// isolation in both directions: traffic from the node itself (kubelet
// probes) and established connections stay allowed, everything else to and
// from those pods is dropped until the first full Sync programs the real
// policy. A Backend that cannot tell (no Verifier) is isolated too, which
// is closed, at the cost of interrupting until that Sync what a previous
// run allowed.
//
// An empty nodeName or a nil client or backend is an error; a node with no
// pods gets an empty isolation (Endpoints 0).
func FailClosed(ctx context.Context, client kubernetes.Interface, be backend.Backend, nodeName string) (FailClosedResult, error) {
	var errs []error
	if client == nil {
		errs = append(errs, errors.New("client is required"))
	}
	if be == nil {
		errs = append(errs, errors.New("backend is required"))
	}
	if nodeName == "" {
		errs = append(errs, errors.New("nodeName is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return FailClosedResult{}, fmt.Errorf("informer: fail closed: %w: %w", ErrInvalidConfig, err)
	}
	if v, ok := be.(backend.Verifier); ok {
		installed, err := v.Installed(ctx)
		if err != nil {
			return FailClosedResult{}, fmt.Errorf("informer: fail closed: %w", err)
		}
		if installed {
			return FailClosedResult{Kept: true}, nil
		}
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", nodeName).String(),
	})
	if err != nil {
		return FailClosedResult{}, fmt.Errorf("informer: fail closed: list the pods of node %s: %w", nodeName, err)
	}
	snap := isolation(nodeName, pods.Items)
	rep, err := be.Sync(ctx, snap)
	if err != nil {
		return FailClosedResult{}, fmt.Errorf("informer: fail closed: %w", err)
	}
	return FailClosedResult{Endpoints: len(snap.Endpoints), Changes: rep.Changes}, nil
}

// isolation is the IR that isolates every given pod of nodeName in both
// directions and allows nothing: a deny-all NetworkPolicy in each of their
// namespaces, compiled by the real engine.
func isolation(nodeName string, pods []corev1.Pod) *ir.Snapshot {
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
