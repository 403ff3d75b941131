package main

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-net/palisade/backend/backendtest"
)

// scratchNetNSPath is a fresh network namespace for the test
// (backendtest.NewNetNS) as a path, /proc/self/fd/N, as --netns accepts.
func scratchNetNSPath(t *testing.T) string {
	return "/proc/self/fd/" + strconv.Itoa(int(backendtest.NewNetNS(t, "programs nftables")))
}

// TestFailClosedBootstrapInNetNS programs the fail-closed isolation through
// --netns on a fresh namespace, and leaves an existing table untouched.
func TestFailClosedBootstrapInNetNS(t *testing.T) {
	o := &options{nodeName: "node-a", backend: "nftables", tableName: "palisade-agent-test", netns: scratchNetNSPath(t)}
	be, closeBackend, err := newBackend(o)
	if err != nil {
		t.Skipf("nftables unavailable: %v", err)
	}
	defer closeBackend()
	nb := be.(*nftBackend)
	defer func() { _ = nb.Cleanup(context.Background()) }()

	exists, err := nb.tableExists()
	require.NoError(t, err)
	require.False(t, exists, "fresh namespace")

	client := fake.NewClientset(pod("x", "a", "10.0.0.1"))
	require.NoError(t, failClosedBootstrap(context.Background(), client, be, o))
	exists, err = nb.tableExists()
	require.NoError(t, err)
	assert.True(t, exists, "table installed on a fresh node")

	// A restart finds the table and changes nothing, whatever the API
	// server lists now: the kernel still holds exactly the first isolation.
	other := fake.NewClientset(pod("y", "b", "10.0.0.2"))
	require.NoError(t, failClosedBootstrap(context.Background(), other, be, o))
	rep, err := be.Sync(context.Background(), isolationSnapshot("node-a", []corev1.Pod{*pod("x", "a", "10.0.0.1")}))
	require.NoError(t, err)
	assert.Zero(t, rep.Changes, "the existing table was left alone")
}

func pod(ns, name, ip string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{NodeName: "node-a"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}
