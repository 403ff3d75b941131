package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// vethWiring wires a pod the way a simple CNI plugin would, from outside
// the lab: a veth pair made from the node's namespace, the pod's address on
// eth0 with a default route through the link, proxy ARP on the node side
// (written by a thread in the node's namespace) and a /32 route to the pod.
type vethWiring struct {
	t     testing.TB
	node  netns.NsHandle
	ips   []netip.Addr // what Wire configures
	reply []netip.Addr // what Wire returns, when not nil; else ips
	fail  error        // Wire fails with it after wiring, when set

	calls []string // "wire pod", "unwire pod"
	ns    map[string]netns.NsHandle
}

func (w *vethWiring) hostIf(pod string) string {
	return "w-" + strings.NewReplacer("/", "-").Replace(pod)
}

func (w *vethWiring) Wire(ctx context.Context, pod string, ns netns.NsHandle) ([]netip.Addr, error) {
	w.calls = append(w.calls, "wire "+pod)
	if w.ns == nil {
		w.ns = map[string]netns.NsHandle{}
	}
	w.ns[pod] = ns
	h, err := netlink.NewHandleAt(w.node)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: w.hostIf(pod)}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
	if err := h.LinkAdd(veth); err != nil {
		return nil, err
	}
	host, err := h.LinkByName(w.hostIf(pod))
	if err != nil {
		return nil, err
	}
	if err := h.LinkSetUp(host); err != nil {
		return nil, err
	}
	if err := InNamespace(w.node, func() error {
		// Proxy ARP answers after a random delay up to proxy_delay
		// (0.8 s by default): none, so probes see no ARP delay.
		return errors.Join(
			os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", w.hostIf(pod), "proxy_arp"), []byte("1"), 0),
			os.WriteFile(filepath.Join("/proc/sys/net/ipv4/neigh", w.hostIf(pod), "proxy_delay"), []byte("0"), 0))
	}); err != nil {
		return nil, err
	}
	ph, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer ph.Close()
	eth, err := ph.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	if err := ph.LinkSetUp(eth); err != nil {
		return nil, err
	}
	for _, ip := range w.ips {
		if err := ph.AddrAdd(eth, addr(ip, ip.BitLen())); err != nil {
			return nil, err
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: hostNet(ip), Scope: netlink.SCOPE_LINK}); err != nil {
			return nil, err
		}
	}
	if err := ph.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: defaultNet(w.ips[0]), Scope: netlink.SCOPE_LINK}); err != nil {
		return nil, err
	}
	if err := waitUp(h, w.hostIf(pod)); err != nil {
		return nil, err
	}
	if w.reply != nil {
		return w.reply, w.fail
	}
	return w.ips, w.fail
}

func (w *vethWiring) Unwire(pod string, ns netns.NsHandle) error {
	w.calls = append(w.calls, "unwire "+pod)
	if w.ns[pod] != ns {
		return fmt.Errorf("unwire %s: namespace %d, wired %d", pod, ns, w.ns[pod])
	}
	h, err := netlink.NewHandleAt(w.node)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(w.hostIf(pod))
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil // a DEL after a failed or partial ADD
	}
	if err != nil {
		return err
	}
	return h.LinkDel(link)
}

// A pod wired from outside the lab is probed, served and held like any
// other; RemovePod has its Wiring undo the wiring before the namespace goes.
func TestWiredPod(t *testing.T) {
	l := newLab(t, Config{})
	ctx := context.Background()
	addPod(t, l, "x/plain", 0, "10.244.0.10")
	for _, proto := range protocols { // x/plain's servers are not the wired pod's descriptors
		require.NoError(t, l.Serve("x/plain", proto, 80))
	}
	links, routes, fds := linkNames(t, nodeNS(t, l, 0)), routeCount(t, nodeNS(t, l, 0)), openFDs(t)

	w := &vethWiring{t: t, node: nodeNS(t, l, 0), ips: []netip.Addr{ip("10.244.0.50")}}
	require.NoError(t, l.AddPod(ctx, PodSpec{Name: "x/wired", Wiring: w}))
	assert.Equal(t, []string{"wire x/wired"}, w.calls)
	assert.Contains(t, linkNames(t, nodeNS(t, l, 0)), "w-x-wired", "the Wiring ran against the node's namespace")

	ps := append(probes("x/plain", ip("10.244.0.50"), 80), probes("x/wired", ip("10.244.0.10"), 80)...)
	ps = append(ps, probes("node:0", ip("10.244.0.50"), 8080)...)
	assertVerdicts(t, l.Probe(ctx, ps), all)
	held, res := l.Hold(ctx, []Probe{{Src: "x/plain", Dst: ip("10.244.0.50"), Port: 6379, Protocol: TCP}})
	require.True(t, res[0].Connected, res[0].Detail)
	assert.True(t, held[0].Check(ctx).Connected)

	require.NoError(t, l.RemovePod("x/wired"))
	assert.Equal(t, []string{"wire x/wired", "unwire x/wired"}, w.calls)
	assert.Equal(t, links, linkNames(t, nodeNS(t, l, 0)), "the Wiring's veth removed")
	assert.Equal(t, routes, routeCount(t, nodeNS(t, l, 0)))
	assert.False(t, held[0].Check(ctx).Connected, "the pod is gone")
	require.NoError(t, held[0].Close())
	assertNoNewFDs(t, fds)
	assert.ErrorIs(t, l.RemovePod("x/wired"), ErrNotFound)
	assert.Len(t, w.calls, 2, "unwired once")
}

// A failed Wire, or addresses the lab refuses, leave nothing: Unwire is
// called (as a runtime deletes after a failed add), nothing is registered,
// no descriptor stays open.
func TestWiredPodFailures(t *testing.T) {
	l := newLab(t, Config{})
	ctx := context.Background()
	addPod(t, l, "x/plain", 0, "10.244.0.10")
	links, fds := linkNames(t, nodeNS(t, l, 0)), openFDs(t)
	for _, tc := range []struct {
		name string
		ips  []string
		fail error
		want string
	}{
		{"wire fails", []string{"10.244.0.99"}, errors.New("plugin exploded"), "plugin exploded"},
		{"no address", nil, nil, "no IP address"},
		{"address in use", []string{"10.244.0.10"}, nil, "used by x/plain"},
		{"lab's own address", []string{"198.18.0.1"}, nil, "reserved by the lab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The pod gets .99; Wire reports what the case says.
			w := &vethWiring{t: t, node: nodeNS(t, l, 0), ips: []netip.Addr{ip("10.244.0.99")}, reply: []netip.Addr{}, fail: tc.fail}
			for _, s := range tc.ips {
				w.reply = append(w.reply, ip(s))
			}
			err := l.AddPod(ctx, PodSpec{Name: "x/wired", Wiring: w})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, []string{"wire x/wired", "unwire x/wired"}, w.calls)
			assert.Equal(t, links, linkNames(t, nodeNS(t, l, 0)))
			assertNoNewFDs(t, fds)
			res := l.Probe(ctx, []Probe{{Src: "x/wired", Dst: ip("10.244.0.10"), Port: 80, Protocol: TCP}})
			assert.ErrorIs(t, res[0].Err, ErrNotFound)
		})
	}

	w := &vethWiring{t: t, node: nodeNS(t, l, 0), ips: []netip.Addr{ip("10.244.0.50")}}
	err := l.AddPod(ctx, PodSpec{Name: "x/wired", IPs: w.ips, Wiring: w})
	require.Error(t, err, "IPs and a Wiring")
	assert.Empty(t, w.calls, "refused before wiring")
}

// Close unwires the wired pods it still holds.
func TestCloseUnwires(t *testing.T) {
	requireNetns(t)
	l, err := New(context.Background(), Config{})
	require.NoError(t, err)
	w := &vethWiring{t: t, node: nodeNS(t, l, 0), ips: []netip.Addr{ip("10.244.0.50")}}
	require.NoError(t, l.AddPod(context.Background(), PodSpec{Name: "x/wired", Wiring: w}))
	require.NoError(t, l.Close())
	assert.Equal(t, []string{"wire x/wired", "unwire x/wired"}, w.calls)
}

// A process started from InNamespace runs in that namespace; the caller's
// thread is back in its own afterwards.
func TestInNamespaceChildProcess(t *testing.T) {
	l := newLab(t, Config{})
	ns := nodeNS(t, l, 0)
	var out []byte
	require.NoError(t, InNamespace(ns, func() error {
		var err error
		out, err = exec.Command("readlink", "/proc/self/ns/net").Output()
		return err
	}))
	assert.Equal(t, nsID(t, ns), strings.TrimSpace(string(out)))
	mine, err := exec.Command("readlink", "/proc/self/ns/net").Output()
	require.NoError(t, err)
	self, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	assert.Equal(t, self, strings.TrimSpace(string(mine)), "a later child runs in the test's namespace")
}

// openFDs returns the process's open sockets and namespace descriptors as
// "fd -> target" (the target names the inode).
func openFDs(t testing.TB) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	out := map[string]bool{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && (strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "net:")) {
			out[e.Name()+" -> "+target] = true
		}
	}
	return out
}

// assertNoNewFDs checks that every socket and namespace descriptor open
// now was open at before: nothing leaked. (A descriptor may have closed
// meanwhile: the Go runtime closes unreachable ones on its own schedule.)
func assertNoNewFDs(t testing.TB, before map[string]bool) {
	t.Helper()
	for fd := range openFDs(t) {
		assert.True(t, before[fd], "descriptor left open: %s", fd)
	}
}
