package informer

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
)

// installedBackend is a memory backend that reports its rules installed.
type installedBackend struct {
	*memory.Backend
	syncs int
}

func (b *installedBackend) Installed(context.Context) (bool, error) { return true, nil }
func (b *installedBackend) Drift(context.Context) ([]string, error) { return nil, nil }
func (b *installedBackend) Sync(ctx context.Context, s *ir.Snapshot) (backend.SyncReport, error) {
	b.syncs++
	return b.Backend.Sync(ctx, s)
}

func TestFailClosedIsolatesTheNodesPods(t *testing.T) {
	client := fake.NewClientset(
		makePod("x", "a", "10.0.0.1"),
		makePod("y", "b", "10.0.0.2"),
		makePod("y", "remote", "10.0.1.1", func(p *corev1.Pod) { p.Spec.NodeName = "node-b" }),
	)
	node := netip.MustParseAddr("192.168.0.10")
	mem := memory.New(memory.Config{NodeIPs: []netip.Addr{node}})
	res, err := FailClosed(bg, client, mem, "node-a")
	require.NoError(t, err)
	assert.False(t, res.Kept, "the memory backend cannot tell: it is isolated")
	assert.Equal(t, 2, res.Endpoints, "only this node's pods are endpoints")
	assert.Positive(t, res.Changes)

	flow := func(src, dst string) memory.Flow {
		return memory.Flow{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: ir.TCP, Port: 80}
	}
	assert.False(t, mem.Evaluate(flow("10.0.0.1", "10.0.0.2")).Allowed, "local pods isolated from each other")
	assert.False(t, mem.Evaluate(flow("10.0.1.1", "10.0.0.1")).Allowed, "ingress from a remote pod")
	assert.False(t, mem.Evaluate(flow("10.0.0.2", "8.8.8.8")).Allowed, "egress")
	assert.True(t, mem.Evaluate(flow(node.String(), "10.0.0.1")).Allowed, "kubelet probes still pass")
}

func TestFailClosedKeepsInstalledRules(t *testing.T) {
	be := &installedBackend{Backend: memory.New(memory.Config{})}
	res, err := FailClosed(bg, fake.NewClientset(makePod("x", "a", "10.0.0.1")), be, "node-a")
	require.NoError(t, err)
	assert.Equal(t, FailClosedResult{Kept: true}, res)
	assert.Zero(t, be.syncs, "rules in place are left alone")
}

func TestFailClosedRequiresItsArguments(t *testing.T) {
	_, err := FailClosed(bg, nil, nil, "")
	require.ErrorIs(t, err, ErrInvalidConfig)
	for _, arg := range []string{"client", "backend", "nodeName"} { // the message names them
		assert.Contains(t, err.Error(), arg)
	}
}
