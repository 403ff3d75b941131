package reach_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/reach"
)

func flowNames(seq func(func(reach.Flow) bool)) []string {
	var out []string
	for f := range seq {
		out = append(out, fmt.Sprintf("%s %s %d", f.Src, f.Dst, f.Port))
	}
	return out
}

func TestFlowsOfBoth(t *testing.T) {
	a := &manifest.State{Pods: []*corev1.Pod{
		makePod("n", "x", "10.0.0.1", withPorts(corev1.ContainerPort{ContainerPort: 80})),
		makePod("n", "y", "10.0.0.2", withPorts(corev1.ContainerPort{ContainerPort: 80})),
	}}
	a.Sort()
	assert.Equal(t, flowNames(reach.Flows(a, reach.Selection{})), flowNames(reach.FlowsOfBoth(a, a, reach.Selection{})), "same pods: Flows")

	b := &manifest.State{Pods: []*corev1.Pod{
		a.Pods[0],
		makePod("n", "y", "10.0.0.2", withPorts(corev1.ContainerPort{ContainerPort: 80}, corev1.ContainerPort{ContainerPort: 81})),
		makePod("n", "z", "10.0.0.3"),
	}}
	b.Sort()
	assert.Equal(t, []string{"n/x n/y 80", "n/y n/x 80", "n/x n/y 81", "n/z n/x 80", "n/z n/y 80", "n/z n/y 81"},
		flowNames(reach.FlowsOfBoth(a, b, reach.Selection{})))
}

func denyAll(ns string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-all"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
}

// clusterOf builds pods pods spread over nss namespaces, one container port
// (80) each.
func clusterOf(pods, nss int) *manifest.State {
	st := &manifest.State{}
	for i := range pods {
		st.Pods = append(st.Pods, makePod(fmt.Sprintf("ns-%02d", i%nss), fmt.Sprintf("p-%04d", i),
			fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), withPorts(corev1.ContainerPort{Name: "http", ContainerPort: 80})))
	}
	st.Sort()
	return st
}

func TestDiff(t *testing.T) {
	cur := clusterOf(6, 2)
	next, err := manifest.Propose(cur, &manifest.State{NetworkPolicies: []*networkingv1.NetworkPolicy{denyAll("ns-00")}}, nil)
	require.NoError(t, err)
	before, err := reach.Compile(cur, nil)
	require.NoError(t, err)
	after, err := reach.Compile(next, nil)
	require.NoError(t, err)
	changes := reach.Diff(reach.Evaluator{State: cur, Backend: before}, reach.Evaluator{State: next, Backend: after},
		reach.FlowsOfBoth(cur, next, reach.Selection{}))
	var got []string
	for _, c := range changes {
		got = append(got, fmt.Sprintf("%s %s %s->%s", c.Flow.Src, c.Flow.Dst, c.Before.Result.Verdict, c.After.Result.Verdict))
		assert.Equal(t, "http", c.Flow.PortName)
		assert.Equal(t, "ingress: denied (isolated by NetworkPolicy/ns-00/deny-all; no rule matched)", c.After.By())
		assert.NotEmpty(t, c.After.Traces, "explained")
	}
	// ns-00 holds p-0000, p-0002, p-0004: every flow into them is cut.
	assert.Len(t, got, 3*5)
	for _, g := range got {
		assert.True(t, strings.Contains(g, " ns-00/") && strings.HasSuffix(g, "allow->deny"), g)
	}
	assert.Nil(t, reach.Diff(reach.Evaluator{State: cur, Backend: before}, reach.Evaluator{State: cur, Backend: before},
		reach.Flows(cur, reach.Selection{})), "no change")
}

// isolatedCluster is clusterOf with every namespace isolated by a default
// deny and one allow from its own namespace.
func isolatedCluster(pods, nss int) *manifest.State {
	st := clusterOf(pods, nss)
	for i := range nss {
		ns := fmt.Sprintf("ns-%02d", i)
		st.NetworkPolicies = append(st.NetworkPolicies, denyAll(ns), &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "same-ns"},
			Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}},
			}}},
		})
	}
	st.Sort()
	return st
}

// BenchmarkDiff is `netpolctl diff` over 1000 pods in 50 namespaces, one
// container port each (999,000 flows), every namespace isolated by a
// default deny with one allow from its own namespace, and a proposal
// that deletes one namespace's allow: the enumeration and the two
// evaluations of every flow. Beside it, the baseline: enumerating the
// same flows and evaluating each once in one state.
func BenchmarkDiff(b *testing.B) {
	cur := isolatedCluster(1000, 50)
	next, err := manifest.Propose(cur, &manifest.State{}, map[string]string{"NetworkPolicy/ns-07/same-ns": "bench"})
	require.NoError(b, err)
	before, err := reach.Compile(cur, nil)
	require.NoError(b, err)
	after, err := reach.Compile(next, nil)
	require.NoError(b, err)
	evBefore, evAfter := reach.Evaluator{State: cur, Backend: before}, reach.Evaluator{State: next, Backend: after}
	b.Run("baseline=enumerate+evaluate-once", func(b *testing.B) {
		for b.Loop() {
			n := 0
			for f := range reach.Flows(cur, reach.Selection{}) {
				if evBefore.Allowed(f.Flow) {
					n++
				}
			}
			require.Equal(b, 50*20*19, n)
		}
	})
	b.Run("diff", func(b *testing.B) {
		for b.Loop() {
			changes := reach.Diff(evBefore, evAfter, reach.FlowsOfBoth(cur, next, reach.Selection{}))
			require.Len(b, changes, 20*19)
		}
	})
}
