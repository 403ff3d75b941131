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

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/informer"
)

// scratchNetNSPath is a fresh network namespace for the test
// (backendtest.NewNetNS) as a path, /proc/self/fd/N, as --netns accepts.
func scratchNetNSPath(t *testing.T) string {
	return "/proc/self/fd/" + strconv.Itoa(int(backendtest.NewNetNS(t, "programs nftables")))
}

// TestFailClosedThroughNetNS programs the fail-closed isolation through
// --netns on a fresh namespace with the agent's backend.
func TestFailClosedThroughNetNS(t *testing.T) {
	o := &options{nodeName: "node-a", backend: "nftables", tableName: "palisade-agent-test", netns: scratchNetNSPath(t)}
	be, closeBackend, err := newBackend(o)
	if err != nil {
		t.Skipf("nftables unavailable: %v", err)
	}
	defer closeBackend()
	defer func() { _ = be.Cleanup(context.Background()) }()
	v, ok := be.(backend.Verifier)
	require.True(t, ok, "the agent's backends can tell whether their rules are there")

	installed, err := v.Installed(context.Background())
	require.NoError(t, err)
	require.False(t, installed, "fresh namespace")
	client := fake.NewClientset(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "a"},
		Spec:       corev1.PodSpec{NodeName: "node-a"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}},
	})
	res, err := informer.FailClosed(context.Background(), client, be, o.nodeName)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Endpoints)
	installed, err = v.Installed(context.Background())
	require.NoError(t, err)
	assert.True(t, installed, "table installed in the --netns namespace")
}
