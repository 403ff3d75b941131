package sim_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/sim"
)

func node(name string, addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func TestUseLabAddresses(t *testing.T) {
	orig := node("n-b",
		corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.0.2"},
		corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::2"},
		corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n-b"})
	steps := []sim.Step{
		{Name: "00", State: &manifest.State{Nodes: []*corev1.Node{
			node("n-a", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.0.1"}), orig}}},
		{Name: "01", State: &manifest.State{Nodes: []*corev1.Node{
			node("n-a"), node("n-b"), node("n-c")}}},
	}
	labIPs := func(i int) []netip.Addr {
		return []netip.Addr{netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), netip.MustParseAddr(fmt.Sprintf("fd00:18::%d", i+1))}
	}
	pl := sim.NewPlacement(steps, 2)
	assert.Equal(t, 0, pl.Node("n-a"))
	assert.Equal(t, 1, pl.Node("n-b"))
	assert.Equal(t, 0, pl.Node("n-c"), "a Node object alone is placed too")

	warnings := pl.UseLabAddresses(steps, labIPs)
	got := steps[0].State.Nodes[1]
	require.Len(t, got.Status.Addresses, 3)
	assert.Equal(t, "198.18.0.2", got.Status.Addresses[0].Address, "InternalIP of node 1, IPv4")
	assert.Equal(t, "fd00:18::2", got.Status.Addresses[1].Address, "InternalIP of node 1, IPv6")
	assert.Equal(t, "n-b", got.Status.Addresses[2].Address, "other address types are kept")
	assert.Equal(t, "192.168.0.2", orig.Status.Addresses[0].Address, "the input object is not modified")
	assert.Equal(t, "198.18.0.1", steps[0].State.Nodes[0].Status.Addresses[0].Address)

	require.Len(t, warnings, 1, "n-a and n-c share lab node 0 at step 01")
	assert.Contains(t, warnings[0], "step 01: nodes n-a, n-c share lab node 0")
}
