package lab

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var (
	extV4 = ip("203.0.113.10") // TEST-NET-3: an external host
	extV6 = ip("2001:db8::10")
)

// Three dual-stack pods on one node, an external host per family, no packet
// filter: every probe must connect.
func TestOneNodeEverythingConnects(t *testing.T) { forTopologies(t, testOneNodeEverythingConnects) }

func testOneNodeEverythingConnects(t *testing.T, topo Topology) {
	l := newLab(t, Config{Topology: topo})
	ctx := context.Background()
	pods := map[string][]netip.Addr{
		"default/a": {ip("10.244.0.10"), ip("fd00:10:244::10")},
		"default/b": {ip("10.244.0.11"), ip("fd00:10:244::11")},
		"other/c":   {ip("10.244.0.12"), ip("fd00:10:244::12")},
	}
	for name, ips := range pods {
		require.NoError(t, l.AddPod(ctx, PodSpec{Name: name, IPs: ips}))
	}
	require.NoError(t, l.AddExternal(ctx, extV4))
	require.NoError(t, l.AddExternal(ctx, extV6))

	var ps []Probe
	for src := range pods {
		for dst, ips := range pods {
			if src == dst {
				continue
			}
			for _, a := range ips {
				ps = append(ps, probes(src, a, 80, 5353)...)
			}
		}
	}
	for _, ips := range pods {
		for _, a := range ips {
			ps = append(ps, probes("node:0", a, 8080)...)
			ps = append(ps, probes("default/a", a, 9000)...) // a pod to itself included
		}
		ps = append(ps, probes(extV4.String(), ips[0], 443)...)
		ps = append(ps, probes(extV6.String(), ips[1], 443)...)
	}
	ps = append(ps, probes("other/c", extV4, 53)...)
	ps = append(ps, probes("other/c", extV6, 53)...)
	ps = append(ps, probes("10.244.0.11", extV4, 54)...) // a pod named by its IP
	ps = append(ps, probes("default/b", l.NodeIPs(0)[0], 10250)...)
	ps = append(ps, probes("default/b", l.NodeIPs(0)[1], 10250)...)

	res := l.Probe(ctx, ps)
	require.Len(t, res, len(ps))
	for i := range ps {
		assert.Equal(t, ps[i], res[i].Probe, "results in input order")
	}
	assertVerdicts(t, res, all)
	for _, r := range res {
		if r.Connected {
			assert.Positive(t, r.Latency, describe(r.Probe))
			assert.Empty(t, r.Detail, describe(r.Probe))
		}
	}
}

// Two nodes: pod↔pod across the link over both families, node↔remote pod,
// external host from node 1's pods through node 0.
func TestTwoNodesCrossNode(t *testing.T) { forTopologies(t, testTwoNodesCrossNode) }

func testTwoNodesCrossNode(t *testing.T, topo Topology) {
	l := newLab(t, Config{Nodes: 2, Topology: topo})
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00:10:244::10")
	addPod(t, l, "x/b", 1, "10.244.1.10", "fd00:10:244:1::10")
	addPod(t, l, "y/v4only", 1, "10.244.1.11")
	require.NoError(t, l.AddExternal(context.Background(), extV4))
	require.NoError(t, l.AddExternal(context.Background(), extV6))

	var ps []Probe
	ps = append(ps, probes("x/a", ip("10.244.1.10"), 80, 81)...)
	ps = append(ps, probes("x/a", ip("fd00:10:244:1::10"), 80, 81)...)
	ps = append(ps, probes("x/b", ip("10.244.0.10"), 80, 81)...)
	ps = append(ps, probes("x/b", ip("fd00:10:244::10"), 80, 81)...)
	ps = append(ps, probes("y/v4only", ip("10.244.0.10"), 80)...)
	ps = append(ps, probes("node:0", ip("10.244.1.10"), 80)...)
	ps = append(ps, probes("node:1", ip("fd00:10:244::10"), 80)...)
	ps = append(ps, probes("node:1", ip("10.244.1.11"), 80)...)
	ps = append(ps, probes("x/b", extV4, 80)...)
	ps = append(ps, probes("x/b", extV6, 80)...)
	ps = append(ps, probes(extV4.String(), ip("10.244.1.11"), 80)...)
	assertVerdicts(t, l.Probe(context.Background(), ps), all)

	// A pod without an address of the destination's family cannot probe it.
	res := l.Probe(context.Background(), []Probe{{Src: "y/v4only", Dst: ip("fd00:10:244::10"), Port: 80, Protocol: TCP}})
	assert.Error(t, res[0].Err)
}

func TestProbeErrors(t *testing.T) {
	l := newLab(t, Config{})
	addPod(t, l, "x/a", 0, "10.244.0.10")
	dst := ip("10.244.0.10")
	for _, tc := range []struct {
		name string
		p    Probe
	}{
		{"unknown source", Probe{Src: "x/nope", Dst: dst, Port: 80, Protocol: TCP}},
		{"unknown source IP", Probe{Src: "192.0.2.1", Dst: dst, Port: 80, Protocol: TCP}},
		{"unknown destination", Probe{Src: "x/a", Dst: ip("10.244.9.9"), Port: 80, Protocol: TCP}},
		{"no destination", Probe{Src: "x/a", Port: 80, Protocol: TCP}},
		{"port 0", Probe{Src: "x/a", Dst: dst, Protocol: TCP}},
		{"bad protocol", Probe{Src: "x/a", Dst: dst, Port: 80, Protocol: "ICMP"}},
		{"no node 3", Probe{Src: "node:3", Dst: dst, Port: 80, Protocol: UDP}},
		{"family mismatch", Probe{Src: "node:0", Dst: ip("fd00::1"), Port: 80, Protocol: UDP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := l.Probe(context.Background(), []Probe{tc.p})
			require.Len(t, res, 1)
			assert.Error(t, res[0].Err)
			assert.False(t, res[0].Connected)
		})
	}
	assert.Empty(t, l.Probe(context.Background(), nil))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := l.Probe(ctx, probes("node:0", dst, 80))
	for _, r := range res {
		assert.ErrorIs(t, r.Err, context.Canceled)
	}
}

func TestAddPodValidation(t *testing.T) {
	l := newLab(t, Config{Nodes: 2})
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    PodSpec
		is   error
	}{
		{"empty name", PodSpec{IPs: []netip.Addr{ip("10.244.0.20")}}, nil},
		{"node-like name", PodSpec{Name: "node:1", IPs: []netip.Addr{ip("10.244.0.20")}}, nil},
		{"IP-literal name", PodSpec{Name: "10.0.0.1", IPs: []netip.Addr{ip("10.244.0.20")}}, nil},
		{"duplicate name", PodSpec{Name: "x/a", IPs: []netip.Addr{ip("10.244.0.20")}}, ErrExists},
		{"duplicate IP", PodSpec{Name: "x/b", IPs: []netip.Addr{ip("fd00::10")}}, ErrExists},
		{"IP twice", PodSpec{Name: "x/b", IPs: []netip.Addr{ip("10.244.0.20"), ip("10.244.0.20")}}, nil},
		{"no IP", PodSpec{Name: "x/b"}, nil},
		{"gateway IP", PodSpec{Name: "x/b", IPs: []netip.Addr{gatewayV4}}, nil},
		{"node IP", PodSpec{Name: "x/b", IPs: []netip.Addr{l.NodeIPs(1)[1]}}, nil},
		{"link-local IP", PodSpec{Name: "x/b", IPs: []netip.Addr{ip("169.254.3.3")}}, nil},
		{"multicast IP", PodSpec{Name: "x/b", IPs: []netip.Addr{ip("ff02::5")}}, nil},
		{"no such node", PodSpec{Name: "x/b", Node: 2, IPs: []netip.Addr{ip("10.244.0.20")}}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.AddPod(ctx, tc.p)
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
	assert.ErrorIs(t, l.AddExternal(ctx, ip("10.244.0.10")), ErrExists)
	assert.ErrorIs(t, l.RemovePod("x/nope"), ErrNotFound)
	assert.ErrorIs(t, l.Serve("x/nope", TCP, 80), ErrNotFound)
	assert.Error(t, l.Serve("x/a", "ICMP", 80))
	assert.Error(t, l.Serve("x/a", TCP, 0))
	for _, i := range []int{2, -1} {
		_, err := l.NodeNS(i)
		assert.ErrorIs(t, err, ErrNotFound)
	}
	assert.Nil(t, l.NodeIPs(2))
	_, err := New(ctx, Config{Nodes: 3})
	assert.Error(t, err)
}

func TestRemovePod(t *testing.T) { forTopologies(t, testRemovePod) }

func testRemovePod(t *testing.T, topo Topology) {
	l := newLab(t, Config{Nodes: 2, Topology: topo})
	ctx := context.Background()
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/b", 1, "10.244.1.10", "fd00::1:10")
	links := linkNames(t, nodeNS(t, l, 1))
	routes := routeCount(t, nodeNS(t, l, 0))
	fds := fdCount(t)
	addPod(t, l, "x/c", 1, "10.244.1.11", "fd00::1:11")
	assertVerdicts(t, l.Probe(ctx, probes("x/a", ip("10.244.1.11"), 80)), all)

	require.NoError(t, l.RemovePod("x/c"))
	assert.Equal(t, links, linkNames(t, nodeNS(t, l, 1)), "node-side veth removed")
	assert.Equal(t, routes, routeCount(t, nodeNS(t, l, 0)), "routes on the other node removed")
	assert.Equal(t, fds, fdCount(t), "no descriptor left")
	for _, r := range l.Probe(ctx, probes("x/a", ip("10.244.1.11"), 80)) {
		assert.ErrorIs(t, r.Err, ErrNotFound)
	}
	assert.ErrorIs(t, l.RemovePod("x/c"), ErrNotFound)
	assert.ErrorIs(t, l.RemovePod("node:0"), ErrNotFound)

	// The name and addresses are free again.
	addPod(t, l, "x/c", 0, "10.244.1.11", "fd00::1:11")
	assertVerdicts(t, l.Probe(ctx, append(probes("x/b", ip("10.244.1.11"), 80), probes("x/c", ip("fd00::1:10"), 80)...)), all)
}

// AddPod failing at any stage leaves nothing behind: no interface or route
// on either node, no descriptor, no registration.
func TestAddPodFailureCleansUp(t *testing.T) { forTopologies(t, testAddPodFailureCleansUp) }

func testAddPodFailureCleansUp(t *testing.T, topo Topology) {
	l := newLab(t, Config{Nodes: 2, Topology: topo})
	ctx := context.Background()
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/p", 1, "10.244.1.9", "fd00::1:9") // a bridge peer of x/b
	peer := l.byName["x/p"].ns
	for _, stage := range []string{"veth", "inside", "node", "remote"} {
		t.Run(stage, func(t *testing.T) {
			links := [2][]string{linkNames(t, nodeNS(t, l, 0)), linkNames(t, nodeNS(t, l, 1))}
			routes := [2]int{routeCount(t, nodeNS(t, l, 0)), routeCount(t, nodeNS(t, l, 1))}
			peerRoutes := routeCount(t, peer)
			fds := fdCount(t)

			l.failAddStage = stage
			err := l.AddPod(ctx, PodSpec{Name: "x/b", Node: 1, IPs: []netip.Addr{ip("10.244.1.10"), ip("fd00::1:10")}})
			l.failAddStage = ""
			require.Error(t, err)

			for i := range 2 {
				assert.Equal(t, links[i], linkNames(t, nodeNS(t, l, i)), "links of node %d", i)
				assert.Equal(t, routes[i], routeCount(t, nodeNS(t, l, i)), "routes of node %d", i)
			}
			assert.Equal(t, peerRoutes, routeCount(t, peer), "routes of the other pod of node 1")
			assert.Equal(t, fds, fdCount(t))
			res := l.Probe(ctx, []Probe{{Src: "x/b", Dst: ip("10.244.0.10"), Port: 80, Protocol: TCP}})
			assert.ErrorIs(t, res[0].Err, ErrNotFound)
		})
	}
	addPod(t, l, "x/b", 1, "10.244.1.10", "fd00::1:10")
	assertVerdicts(t, l.Probe(ctx, append(probes("x/b", ip("fd00::10"), 80), probes("x/b", ip("fd00::1:9"), 80)...)), all)
}

// Close removes every namespace, descriptor and goroutine, and is
// idempotent; the lab refuses work afterwards.
func TestCloseRemovesEverything(t *testing.T) { forTopologies(t, testCloseRemovesEverything) }

func testCloseRemovesEverything(t *testing.T, topo Topology) {
	requireNetns(t)
	ctx := context.Background()
	build := func() (*Lab, []string) {
		l, err := New(ctx, Config{Nodes: 2, Topology: topo})
		require.NoError(t, err)
		addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
		addPod(t, l, "x/b", 1, "10.244.1.10", "fd00::1:10")
		require.NoError(t, l.AddExternal(ctx, extV4))
		ps := append(probes("x/a", ip("fd00::1:10"), 80, 81), probes("x/b", ip("10.244.0.10"), 80)...)
		ps = append(ps, probes("x/b", extV4, 80)...)
		assertVerdicts(t, l.Probe(ctx, ps), all)
		var ids []string
		for _, ep := range l.byName {
			ids = append(ids, nsID(t, ep.ns))
		}
		require.Len(t, ids, 5) // 2 nodes, 2 pods, 1 external host
		return l, ids
	}
	// A first lab warms up what the runtime creates once (poller, threads).
	l, _ := build()
	require.NoError(t, l.Close())

	goroutines, fds := runtime.NumGoroutine(), fdCount(t)
	l, ids := build()
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close is idempotent")

	assert.True(t, settle(func() bool { return runtime.NumGoroutine() <= goroutines }),
		"goroutines: %d after Close, %d before the lab", runtime.NumGoroutine(), goroutines)
	assert.Equal(t, fds, fdCount(t), "descriptors")
	refs := nsRefs(t)
	for _, id := range ids {
		assert.Empty(t, refs[id], "namespace %s still referenced", id)
	}
	host, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	for id, holders := range refs {
		assert.Equal(t, host, id, "a namespace other than the host's is still held by %v", holders)
	}

	assert.ErrorIs(t, l.AddPod(ctx, PodSpec{Name: "x/c", IPs: []netip.Addr{ip("10.244.0.30")}}), ErrClosed)
	assert.ErrorIs(t, l.AddExternal(ctx, extV6), ErrClosed)
	assert.ErrorIs(t, l.RemovePod("x/a"), ErrClosed)
	assert.ErrorIs(t, l.Serve("x/a", TCP, 80), ErrClosed)
	_, err = l.NodeNS(0)
	assert.ErrorIs(t, err, ErrClosed)
	for _, r := range l.Probe(ctx, probes("x/a", ip("10.244.1.10"), 80)) {
		assert.ErrorIs(t, r.Err, ErrClosed)
	}
}

func TestServeIsIdempotent(t *testing.T) {
	l := newLab(t, Config{})
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	require.NoError(t, l.AddExternal(context.Background(), extV4))
	for range 2 {
		for _, target := range []string{"x/a", "fd00::10", extV4.String(), "node:0"} {
			for _, proto := range protocols {
				require.NoError(t, l.Serve(target, proto, 7000))
			}
		}
	}
	assertVerdicts(t, l.Probe(context.Background(), append(probes(extV4.String(), ip("10.244.0.10"), 7000), probes("x/a", l.NodeIPs(0)[1], 7000)...)), all)
}

// Sockets are opened in the named endpoint's namespace: they connect from
// its address, from any thread, with no namespace switch.
func TestSockets(t *testing.T) {
	l := newLab(t, Config{})
	addPod(t, l, "x/a", 0, "10.244.0.10")
	addPod(t, l, "x/b", 0, "10.244.0.11")
	require.True(t, l.Probe(context.Background(), []Probe{{Src: "x/a", Dst: ip("10.244.0.11"), Port: 80, Protocol: TCP}})[0].Connected)

	fds, err := l.Sockets("x/a", 3, unix.AF_INET, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	require.Len(t, fds, 3)
	for _, fd := range fds {
		require.NoError(t, unix.Connect(fd, &unix.SockaddrInet4{Port: 80, Addr: [4]byte{10, 244, 0, 11}}))
		sa, err := unix.Getsockname(fd)
		require.NoError(t, err)
		assert.Equal(t, [4]byte{10, 244, 0, 10}, sa.(*unix.SockaddrInet4).Addr)
		require.NoError(t, unix.Close(fd))
	}

	_, err = l.Sockets("x/a", -1, unix.AF_INET, unix.SOCK_STREAM, 0)
	assert.ErrorContains(t, err, "count -1 is negative")
	_, err = l.Sockets("x/nope", 1, unix.AF_INET, unix.SOCK_STREAM, 0)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = l.Sockets("x/a", 1, -1, unix.SOCK_STREAM, 0)
	assert.Error(t, err, "a bad domain is the kernel's error")
	require.NoError(t, l.Close())
	_, err = l.Sockets("x/a", 1, unix.AF_INET, unix.SOCK_STREAM, 0)
	assert.ErrorIs(t, err, ErrClosed)
}
