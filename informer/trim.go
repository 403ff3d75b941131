package informer

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrimPod is a cache.TransformFunc that keeps of a Pod only what the policy
// engine reads, so that a cluster-wide pod cache costs a fraction of its
// full size (see the package doc for measured figures):
//   - metadata: namespace, name, uid, resourceVersion, labels,
//     creationTimestamp, deletionTimestamp;
//   - spec: nodeName, hostNetwork, and each container's name and ports;
//   - status: phase, podIP, podIPs.
//
// Everything else (annotations, owner references, managed fields, volumes,
// images, env, conditions, container statuses) is dropped. A
// Config.Engine built with policy.Config.IsLocal sees trimmed pods too.
// TrimPod returns any other object unchanged, and a trimmed pod trims to
// itself. It builds a new Pod, never modifying its argument.
func TrimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         p.Namespace,
			Name:              p.Name,
			UID:               p.UID,
			ResourceVersion:   p.ResourceVersion,
			Labels:            p.Labels,
			CreationTimestamp: p.CreationTimestamp,
			DeletionTimestamp: p.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{
			NodeName:    p.Spec.NodeName,
			HostNetwork: p.Spec.HostNetwork,
		},
		Status: corev1.PodStatus{
			Phase:  p.Status.Phase,
			PodIP:  p.Status.PodIP,
			PodIPs: p.Status.PodIPs,
		},
	}
	if len(p.Spec.Containers) > 0 {
		out.Spec.Containers = make([]corev1.Container, len(p.Spec.Containers))
		for i, c := range p.Spec.Containers {
			out.Spec.Containers[i] = corev1.Container{Name: c.Name, Ports: c.Ports}
		}
	}
	return out, nil
}
