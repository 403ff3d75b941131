package policy_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/policy"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

func TestPodAt(t *testing.T) {
	e := policy.New(policy.Config{NodeName: "n1"})
	old := pt.Pod("shop", "old", pt.WithIPs("10.0.0.1", "fd00::1"), pt.OnNode("n2"))
	old.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	young := pt.Pod("shop", "young", pt.WithIPs("10.0.0.1"), pt.OnNode("n1"))
	young.CreationTimestamp = metav1.NewTime(time.Unix(200, 0))
	require.NoError(t, e.UpsertPod(old))
	require.NoError(t, e.UpsertPod(young))
	require.NoError(t, e.UpsertPod(pt.Pod("kube-system", "proxy", pt.WithIPs("192.168.0.1"), pt.HostNetwork())))

	for addr, want := range map[string]string{
		"10.0.0.1":        "shop/young", // the most recently created pod owns a shared address
		"::ffff:10.0.0.1": "shop/young",
		"fd00::1":         "shop/old", // a pod of another node
		"192.168.0.1":     "",         // hostNetwork: the node's address
		"10.9.9.9":        "",
	} {
		got, ok := e.PodAt(netip.MustParseAddr(addr))
		assert.Equal(t, want != "", ok, addr)
		assert.Equal(t, want, got, addr)
	}
	e.DeletePod("shop", "young")
	got, ok := e.PodAt(netip.MustParseAddr("10.0.0.1"))
	assert.True(t, ok)
	assert.Equal(t, "shop/old", got, "the address goes back to the pod left")
}
