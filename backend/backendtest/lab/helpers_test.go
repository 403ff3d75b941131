package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireNetns skips the test unless it runs as root where network
// namespaces can be created.
func requireNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the lab creates network namespaces and veth pairs")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // thread discarded
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			errc <- err
			runtime.UnlockOSThread()
			return
		}
		ns.Close()
		if err := netns.Set(orig); err != nil {
			errc <- err
			return // thread discarded
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// newLab builds a lab closed at the end of the test.
func newLab(t testing.TB, cfg Config) *Lab {
	t.Helper()
	requireNetns(t)
	l, err := New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	return l
}

func addPod(t testing.TB, l *Lab, name string, node int, ips ...string) {
	t.Helper()
	p := PodSpec{Name: name, Node: node}
	for _, s := range ips {
		p.IPs = append(p.IPs, ip(s))
	}
	require.NoError(t, l.AddPod(context.Background(), p))
}

var protocols = []Protocol{TCP, UDP, SCTP}

// probes returns src→dst probes for every protocol and port.
func probes(src string, dst netip.Addr, ports ...uint16) []Probe {
	var out []Probe
	for _, proto := range protocols {
		for _, port := range ports {
			out = append(out, Probe{Src: src, Dst: dst, Port: port, Protocol: proto})
		}
	}
	return out
}

func describe(p Probe) string {
	return fmt.Sprintf("%s -> %s %s/%d", p.Src, p.Dst, p.Protocol, p.Port)
}

// assertVerdicts checks every result against want(probe).
func assertVerdicts(t *testing.T, res []Result, want func(Probe) bool) {
	t.Helper()
	for _, r := range res {
		if !assert.NoError(t, r.Err, describe(r.Probe)) {
			continue
		}
		assert.Equal(t, want(r.Probe), r.Connected, "%s (detail %q)", describe(r.Probe), r.Detail)
	}
}

func all(Probe) bool { return true }

// assertConnects checks that every probe connects, probing a failed one
// again up to twice: on a loaded machine a first packet can outlast the
// probe's timeout while neighbours and routes of a just-moved pod settle.
// A probe that never connects fails the test.
func assertConnects(ctx context.Context, t *testing.T, l *Lab, ps []Probe) {
	t.Helper()
	res := l.Probe(ctx, ps)
	for attempt := 0; attempt < 2; attempt++ {
		var again []Probe
		for _, r := range res {
			if r.Err != nil || !r.Connected {
				again = append(again, r.Probe)
			}
		}
		if len(again) == 0 {
			return
		}
		res = l.Probe(ctx, again)
	}
	assertVerdicts(t, res, all)
}

// fdCount counts the process's open sockets and namespace descriptors:
// what the lab opens. (Other descriptors come and go on their own: the Go
// runtime reads the cgroup CPU limit files now and then.)
func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && (strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "net:")) {
			n++
		}
	}
	return n
}

// nsRefs returns every network namespace the process refers to, through a
// descriptor or a thread, as "net:[inode]" strings with their holders.
func nsRefs(t testing.TB) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	fds, _ := filepath.Glob("/proc/self/fd/*")
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, p := range append(fds, tasks...) {
		if target, err := os.Readlink(p); err == nil && len(target) > 4 && target[:4] == "net:" {
			refs[target] = append(refs[target], p)
		}
	}
	return refs
}

// nsID is the "net:[inode]" of a handle.
func nsID(t testing.TB, h netns.NsHandle) string {
	t.Helper()
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", int(h)))
	require.NoError(t, err)
	return target
}

// nodeNS is node i's namespace; the test stops if there is none (never
// hand netns.None(), "the current namespace", to netlink or nftables).
func nodeNS(t testing.TB, l *Lab, i int) netns.NsHandle {
	t.Helper()
	ns, err := l.NodeNS(i)
	require.NoError(t, err)
	return ns
}

// linkNames lists the interfaces of a namespace.
func linkNames(t testing.TB, ns netns.NsHandle) []string {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()
	links, err := h.LinkList()
	require.NoError(t, err)
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	sort.Strings(names)
	return names
}

// routeCount counts a namespace's main-table routes of both families.
func routeCount(t testing.TB, ns netns.NsHandle) int {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()
	rs, err := h.RouteList(nil, netlink.FAMILY_ALL)
	require.NoError(t, err)
	return len(rs)
}

// settle waits up to 3s for f to hold.
func settle(f func() bool) bool {
	for range 60 {
		if f() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return f()
}

// forTopologies runs test once per topology, as subtests.
func forTopologies(t *testing.T, test func(*testing.T, Topology)) {
	for _, topo := range []Topology{Routed, Bridge} {
		t.Run(string(topo), func(t *testing.T) { test(t, topo) })
	}
}
