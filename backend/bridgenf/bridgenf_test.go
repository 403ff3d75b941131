package bridgenf_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/bridgenf"
)

func newLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds a lab of network namespaces and changes br_netfilter settings in them")
	}
	l, err := lab.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	return l
}

func addPod(t *testing.T, l *lab.Lab, name string, ips ...string) {
	t.Helper()
	p := lab.PodSpec{Name: name}
	for _, s := range ips {
		p.IPs = append(p.IPs, netip.MustParseAddr(s))
	}
	require.NoError(t, l.AddPod(context.Background(), p))
}

func check(t *testing.T, l *lab.Lab, cfg bridgenf.Config) bridgenf.Status {
	t.Helper()
	ns, err := l.NodeNS(0)
	require.NoError(t, err)
	cfg.NetNS = int(ns)
	st, err := bridgenf.Check(cfg)
	require.NoError(t, err)
	return st
}

// A bridged node with dual-stack pods: OK with br_netfilter on; either
// setting off is reported, naming the bridge and the setting; Enable
// repairs both.
func TestCheckBridgedNode(t *testing.T) {
	l := newLab(t, lab.Config{Topology: lab.Bridge})
	st := check(t, l, bridgenf.Config{})
	assert.Empty(t, st.Bridges, "a bridge without ports bridges nothing")
	assert.True(t, st.OK())

	addPod(t, l, "x/a", "10.244.0.10", "fd00::10")
	st = check(t, l, bridgenf.Config{})
	assert.Equal(t, []string{lab.BridgeName}, st.Bridges)
	assert.True(t, st.Loaded)
	assert.True(t, st.IPv6, "the bridge routes a pod's IPv6 address")
	assert.True(t, st.OK(), st.Reason())
	assert.Empty(t, st.Reason())

	require.NoError(t, l.SetBridgeNetfilter(0, false))
	st = check(t, l, bridgenf.Config{})
	assert.False(t, st.OK())
	assert.False(t, st.CallIPTables)
	assert.False(t, st.CallIP6Tables)
	assert.Contains(t, st.Reason(), "bridge cni0 has ports")
	assert.Contains(t, st.Reason(), "net.bridge.bridge-nf-call-iptables and net.bridge.bridge-nf-call-ip6tables is 0")

	ns, err := l.NodeNS(0)
	require.NoError(t, err)
	require.NoError(t, bridgenf.Enable(bridgenf.Config{NetNS: int(ns)}))
	st = check(t, l, bridgenf.Config{})
	assert.True(t, st.OK(), st.Reason())
	assert.True(t, st.CallIPTables && st.CallIP6Tables)
	require.NoError(t, bridgenf.Enable(bridgenf.Config{NetNS: int(ns)}), "nothing to do")
}

// IPv4-only bridged pods do not need the IPv6 setting, unless the caller
// requires it.
func TestCheckIPv4Only(t *testing.T) {
	l := newLab(t, lab.Config{Topology: lab.Bridge})
	addPod(t, l, "x/a", "10.244.0.10")
	ns, err := l.NodeNS(0)
	require.NoError(t, err)
	require.NoError(t, l.SetBridgeNetfilter(0, false))
	// IPv4 on, IPv6 off: write one setting from inside the namespace.
	require.NoError(t, bridgenf.Enable(bridgenf.Config{NetNS: int(ns)}))
	require.NoError(t, bridgenf.WriteIn(ns, bridgenf.CallIP6TablesPath, "0"))

	st := check(t, l, bridgenf.Config{})
	assert.False(t, st.IPv6)
	assert.True(t, st.OK(), st.Reason())
	st = check(t, l, bridgenf.Config{RequireIPv6: true})
	assert.False(t, st.OK())
	reason := st.Reason()
	assert.Contains(t, reason, "net.bridge.bridge-nf-call-ip6tables is 0")
	assert.False(t, strings.Contains(reason, "bridge-nf-call-iptables "), reason)
}

// Routed pods never depend on br_netfilter.
func TestCheckRoutedNode(t *testing.T) {
	l := newLab(t, lab.Config{Topology: lab.Routed})
	addPod(t, l, "x/a", "10.244.0.10", "fd00::10")
	require.NoError(t, l.SetBridgeNetfilter(0, false))
	st := check(t, l, bridgenf.Config{RequireIPv6: true})
	assert.Empty(t, st.Bridges)
	assert.True(t, st.OK())
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		st   bridgenf.Status
		want string
	}{
		{bridgenf.Status{}, ""},
		{bridgenf.Status{Bridges: []string{"cni0"}, Loaded: true, CallIPTables: true}, ""},
		{bridgenf.Status{Bridges: []string{"cni0"}, Loaded: true, CallIPTables: true, IPv6: true},
			"bridge cni0 has ports but net.bridge.bridge-nf-call-ip6tables is 0: traffic between pods on it bypasses the packet filter (set it to 1)"},
		{bridgenf.Status{Bridges: []string{"br0", "cni0"}},
			"bridge br0, cni0 has ports but the kernel has no br_netfilter: traffic between pods on it bypasses the packet filter (load the br_netfilter module)"},
	} {
		assert.Equal(t, tc.want, tc.st.Reason(), "%+v", tc.st)
		assert.Equal(t, tc.want == "", tc.st.OK(), "%+v", tc.st)
	}
}

func TestCheckBadNamespace(t *testing.T) {
	_, err := bridgenf.Check(bridgenf.Config{NetNS: 1 << 20})
	assert.Error(t, err)
	err = bridgenf.Enable(bridgenf.Config{NetNS: 1 << 20})
	assert.Error(t, err)
	assert.False(t, errors.Is(err, bridgenf.ErrNotLoaded))
}
