package cni

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
)

var (
	podNetwork  = netip.MustParsePrefix("10.244.0.0/16")
	subnets     = [2]netip.Prefix{netip.MustParsePrefix("10.244.0.0/24"), netip.MustParsePrefix("10.244.1.0/24")}
	podNetwork6 = netip.MustParsePrefix("fd00:244::/48")
	subnets6    = [2]netip.Prefix{netip.MustParsePrefix("fd00:244::/64"), netip.MustParsePrefix("fd00:244:0:1::/64")}
)

func TestSubnetEnv(t *testing.T) {
	got := string(SubnetEnv(podNetwork, subnets[1], netip.Prefix{}, netip.Prefix{}, 1450, true))
	assert.Equal(t, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", got)
	got = string(SubnetEnv(podNetwork, subnets[1], podNetwork6, subnets6[1], 1500, false))
	assert.Equal(t, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n"+
		"FLANNEL_IPV6_NETWORK=fd00:244::/48\nFLANNEL_IPV6_SUBNET=fd00:244:0:1::1/64\n"+
		"FLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n", got)
}

// The configuration lists are what libcni reads and what the plugins
// expect: the state directories under the runtime's, no masquerading.
func TestConfLists(t *testing.T) {
	b, err := bridgeConfList("bridge", []netip.Prefix{subnets[0], subnets6[0]}, 1500, "/d/host-local")
	require.NoError(t, err)
	list, err := libcni.ConfListFromBytes(b)
	require.NoError(t, err)
	assert.Equal(t, "1.0.0", list.CNIVersion)
	require.Len(t, list.Plugins, 1)
	var br map[string]any
	require.NoError(t, json.Unmarshal(list.Plugins[0].Bytes, &br))
	assert.Equal(t, "bridge", br["type"])
	assert.Equal(t, BridgeName, br["bridge"])
	assert.Equal(t, false, br["ipMasq"])
	ipam := br["ipam"].(map[string]any)
	assert.Equal(t, "host-local", ipam["type"])
	assert.Equal(t, "/d/host-local", ipam["dataDir"])
	assert.Equal(t, []any{[]any{map[string]any{"subnet": "10.244.0.0/24"}}, []any{map[string]any{"subnet": "fd00:244::/64"}}}, ipam["ranges"])

	b, err = flannelConfList("cbr0", "/d/subnet.env", "/d/flannel", "/d/host-local")
	require.NoError(t, err)
	list, err = libcni.ConfListFromBytes(b)
	require.NoError(t, err)
	assert.Equal(t, "0.3.1", list.CNIVersion)
	var fl map[string]any
	require.NoError(t, json.Unmarshal(list.Plugins[0].Bytes, &fl))
	assert.Equal(t, "flannel", fl["type"])
	assert.Equal(t, "/d/subnet.env", fl["subnetFile"])
	assert.Equal(t, "/d/flannel", fl["dataDir"])
	assert.Equal(t, map[string]any{"dataDir": "/d/host-local"}, fl["ipam"])
	assert.NotContains(t, fl["delegate"], "ipam", "flannel refuses a delegate with ipam")
	assert.NotContains(t, fl["delegate"], "name", "flannel refuses a delegate with a name")
}

func TestNewRuntimeErrors(t *testing.T) {
	dir := t.TempDir()
	self, err := netns.Get()
	require.NoError(t, err)
	defer self.Close()
	ok := Config{NodeNS: self, Dir: dir, Mode: Bridge, Network: podNetwork, Subnet: subnets[0]}
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		want  string
	}{
		{"no dir", func(c *Config) { c.Dir = "" }, "Config.Dir"},
		{"no namespace", func(c *Config) { c.NodeNS = netns.None() }, "Config.NodeNS"},
		{"mode", func(c *Config) { c.Mode = "ptp" }, `Config.Mode: "ptp"`},
		{"no subnet", func(c *Config) { c.Subnet = netip.Prefix{} }, "Config.Network and Config.Subnet: both required"},
		{"outside", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.245.0.0/24") }, "Config.Subnet: 10.245.0.0/24 is not inside"},
		{"wider", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.0.0.0/8") }, "not inside"},
		{"host bits", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.244.0.1/24") }, "host bits"},
		{"IPv6 as IPv4", func(c *Config) { c.Network, c.Subnet = podNetwork6, subnets6[0] }, "Config.Network: fd00:244::/48 is not IPv4"},
		{"IPv6 subnet alone", func(c *Config) { c.Subnet6 = subnets6[0] }, "Config.Network6 and Config.Subnet6: both required"},
		{"IPv4 as IPv6", func(c *Config) { c.Network6, c.Subnet6 = podNetwork, subnets[0] }, "Config.Network6: 10.244.0.0/16 is not IPv6"},
		{"IPv6 outside", func(c *Config) { c.Network6, c.Subnet6 = podNetwork6, netip.MustParsePrefix("fd00:245::/64") }, "Config.Subnet6: fd00:245::/64 is not inside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.tweak(&c)
			_, err := NewRuntime(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Two lab nodes whose dual-stack pods the real plugins wire: node 0 with
// bridge and host-local, node 1 with flannel delegating to them; host-gw
// routes between the nodes' subnets. Pods reach each other on the same node
// (bridged) and across nodes; DEL releases every lease and cache entry.
func TestPluginsWireLabPods(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, and the plugins configure them")
	}
	if reason := MissingPlugins(DebianPluginDir); reason != "" {
		t.Skip(reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	flannel, err := FlannelPath(ctx)
	require.NoError(t, err)
	_, hostHadBridge := net.InterfaceByName(BridgeName)

	l, err := lab.New(ctx, lab.Config{Nodes: 2, ProbeTimeout: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	var rts [2]*Runtime
	var nodeNS [2]netns.NsHandle
	for i, mode := range []Mode{Bridge, Flannel} {
		nodeNS[i], err = l.NodeNS(i)
		require.NoError(t, err)
		dir := filepath.Join(t.TempDir(), "node"+string(rune('0'+i)))
		require.NoError(t, os.Mkdir(dir, 0o755))
		rts[i], err = NewRuntime(Config{NodeNS: nodeNS[i], Dir: dir, PluginDirs: []string{DebianPluginDir, filepath.Dir(flannel)},
			Mode: mode, Network: podNetwork, Subnet: subnets[i], Network6: podNetwork6, Subnet6: subnets6[i]})
		require.NoError(t, err)
		t.Cleanup(func() { rts[i].Close() })
	}
	for i := range 2 {
		require.NoError(t, HostGW(nodeNS[i], subnets[1-i], l.NodeIPs(1 - i)[0]))
		require.NoError(t, HostGW(nodeNS[i], subnets6[1-i], l.NodeIPs(1 - i)[1]))
	}
	env, err := os.ReadFile(rts[1].SubnetEnvPath())
	require.NoError(t, err)
	assert.Contains(t, string(env), "FLANNEL_SUBNET=10.244.1.1/24\n")
	assert.Contains(t, string(env), "FLANNEL_IPV6_SUBNET=fd00:244:0:1::1/64\n")

	pods := []struct {
		name string
		node int
	}{{"a/p0", 0}, {"b/p1", 0}, {"a/q0", 1}, {"b/q1", 1}}
	ips := map[string][]netip.Addr{} // IPv4, IPv6
	var hostVeths [2][]string
	for _, p := range pods {
		require.NoError(t, l.AddPod(ctx, lab.PodSpec{Name: p.name, Node: p.node, Wiring: rts[p.node]}))
		res, ok, err := rts[p.node].Result(p.name)
		require.NoError(t, err)
		require.True(t, ok)
		require.Len(t, res.IPs, 2)
		for f, c := range res.IPs {
			ip, _ := netip.AddrFromSlice(c.Address.IP)
			ip = ip.Unmap()
			ips[p.name] = append(ips[p.name], ip)
			assert.True(t, []netip.Prefix{subnets[p.node], subnets6[p.node]}[f].Contains(ip), "%s got %s, outside node %d's subnets", p.name, ip, p.node)
		}
		hostVeths[p.node] = append(hostVeths[p.node], checkResult(t, nodeNS[p.node], res.Interfaces, p.name))
	}
	for i := range 2 {
		br := bridgeOf(t, nodeNS[i])
		var brAddrs []string
		addrs, err := netlinkAt(t, nodeNS[i]).AddrList(br, netlink.FAMILY_ALL)
		require.NoError(t, err)
		for _, a := range addrs {
			if !a.IP.IsLinkLocalUnicast() {
				brAddrs = append(brAddrs, a.IPNet.String())
			}
		}
		assert.ElementsMatch(t, []string{gatewayOf(subnets[i]).String(), gatewayOf(subnets6[i]).String()}, brAddrs, "node %d's bridge is its pods' gateway", i)
		var want []netip.Addr
		for _, p := range pods {
			if p.node == i {
				want = append(want, ips[p.name]...)
			}
		}
		slices.SortFunc(want, netip.Addr.Compare)
		got, err := rts[i].Leases()
		require.NoError(t, err)
		assert.Equal(t, want, got, "host-local's leases on node %d", i)
	}
	for i := range 2 {
		var want []string
		for _, p := range pods {
			if p.node == i {
				want = append(want, p.name)
			}
		}
		assert.ElementsMatch(t, want, cachedPods(t, rts[i]), "libcni's cache of node %d", i)
	}
	if _, err := net.InterfaceByName(BridgeName); hostHadBridge != nil {
		assert.Error(t, err, "the plugins ran in the node namespaces, not the test's")
	}

	var probes []lab.Probe
	for _, src := range pods {
		for _, dst := range pods {
			for _, ip := range ips[dst.name] {
				if src != dst {
					probes = append(probes, lab.Probe{Src: src.name, Dst: ip, Port: 8080, Protocol: lab.TCP},
						lab.Probe{Src: src.name, Dst: ip, Port: 53, Protocol: lab.UDP})
				}
			}
		}
		for _, ip := range ips[src.name] {
			probes = append(probes, lab.Probe{Src: "node:" + string(rune('0'+src.node)), Dst: ip, Port: 10250, Protocol: lab.TCP})
		}
	}
	for _, r := range l.Probe(ctx, probes) {
		require.NoError(t, r.Err)
		assert.True(t, r.Connected, "%s -> %s %s/%d: %s", r.Probe.Src, r.Probe.Dst, r.Probe.Protocol, r.Probe.Port, r.Detail)
	}

	for _, p := range pods {
		require.NoError(t, l.RemovePod(p.name))
	}
	for i := range 2 {
		got, err := rts[i].Leases()
		require.NoError(t, err)
		assert.Empty(t, got, "host-local released node %d's addresses", i)
		results, _ := os.ReadDir(filepath.Join(rts[i].CacheDir(), "results"))
		assert.Empty(t, results, "libcni's cache of node %d", i)
		require.Len(t, hostVeths[i], 2)
		for _, name := range hostVeths[i] {
			_, err := netlinkAt(t, nodeNS[i]).LinkByName(name)
			assert.ErrorAs(t, err, new(netlink.LinkNotFoundError), "node %d keeps %s", i, name)
		}
	}
	scratch, _ := os.ReadDir(filepath.Join(filepath.Dir(rts[1].SubnetEnvPath()), "flannel"))
	assert.Empty(t, scratch, "flannel's delegate configs are gone")
}

// cachedPods reads libcni's cache of a runtime as another component of the
// node would (one JSON file per attachment): the pods named by their
// CNI_ARGS, each with a result, network and /proc netns path.
func cachedPods(t *testing.T, r *Runtime) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(r.CacheDir(), "results", r.Network()+"-*-eth0"))
	require.NoError(t, err)
	var pods []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var entry struct {
			ContainerID string           `json:"containerId"`
			NetworkName string           `json:"networkName"`
			IfName      string           `json:"ifName"`
			NetNS       string           `json:"netns"`
			CniArgs     [][2]string      `json:"cniArgs"`
			Result      *types100.Result `json:"result"`
		}
		require.NoError(t, json.Unmarshal(b, &entry), f)
		assert.Equal(t, r.Network(), entry.NetworkName, f)
		assert.Equal(t, "eth0", entry.IfName, f)
		assert.True(t, strings.HasPrefix(entry.NetNS, "/proc/"), f)
		require.NotNil(t, entry.Result, f)
		assert.NotEmpty(t, entry.Result.IPs, f)
		args := map[string]string{}
		for _, kv := range entry.CniArgs {
			args[kv[0]] = kv[1]
		}
		assert.Equal(t, entry.ContainerID, args["K8S_POD_INFRA_CONTAINER_ID"], f)
		pods = append(pods, args["K8S_POD_NAMESPACE"]+"/"+args["K8S_POD_NAME"])
	}
	return pods
}

// checkResult: the ADD result names the bridge, a host-side veth that is a
// port of that bridge in the node's namespace, and the pod's eth0 in its
// sandbox. It returns the host-side veth's name.
func checkResult(t *testing.T, nodeNS netns.NsHandle, ifs []*types100.Interface, pod string) string {
	t.Helper()
	br := bridgeOf(t, nodeNS)
	var names []string
	var veth string
	var sandbox bool
	for _, i := range ifs {
		names = append(names, i.Name)
		switch {
		case i.Sandbox != "":
			assert.Equal(t, "eth0", i.Name, pod)
			assert.True(t, strings.HasPrefix(i.Sandbox, "/proc/"), "%s sandbox %s", pod, i.Sandbox)
			sandbox = true
		case i.Name != BridgeName:
			link, err := netlinkAt(t, nodeNS).LinkByName(i.Name)
			require.NoError(t, err, "%s: host side %s", pod, i.Name)
			assert.Equal(t, "veth", link.Type(), "%s: %s", pod, i.Name)
			assert.Equal(t, br.Attrs().Index, link.Attrs().MasterIndex, "%s: %s is a port of %s", pod, i.Name, BridgeName)
			veth = i.Name
		}
	}
	assert.True(t, sandbox, "%s: no sandbox interface in %v", pod, names)
	assert.Contains(t, names, BridgeName, pod)
	require.NotEmpty(t, veth, "%s: no host-side veth in %v", pod, names)
	return veth
}

func bridgeOf(t *testing.T, ns netns.NsHandle) netlink.Link {
	t.Helper()
	br, err := netlinkAt(t, ns).LinkByName(BridgeName)
	require.NoError(t, err)
	require.Equal(t, "bridge", br.Type())
	return br
}

func netlinkAt(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	t.Cleanup(h.Close)
	return h
}
