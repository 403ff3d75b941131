package policy

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// Kinds of the cluster-wide policies, as in their IR origins.
const (
	kindAdminNetworkPolicy         = "AdminNetworkPolicy"
	kindBaselineAdminNetworkPolicy = "BaselineAdminNetworkPolicy"
	kindClusterNetworkPolicy       = "ClusterNetworkPolicy"
)

var errNotImplemented = errors.New("not implemented")

func (e *engine) upsertAdminNetworkPolicy(anp *v1alpha1.AdminNetworkPolicy) error {
	if anp == nil {
		return nil
	}
	return errNotImplemented
}

func (e *engine) upsertBaselineAdminNetworkPolicy(banp *v1alpha1.BaselineAdminNetworkPolicy) error {
	if banp == nil {
		return nil
	}
	return errNotImplemented
}

func (e *engine) upsertClusterNetworkPolicy(cnp *v1beta1.ClusterNetworkPolicy) error {
	if cnp == nil {
		return nil
	}
	return errNotImplemented
}

func (e *engine) upsertNode(node *corev1.Node) {}

func (e *engine) deleteNode(name string) {}
