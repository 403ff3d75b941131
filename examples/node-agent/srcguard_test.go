package main

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/palisade-net/palisade/backend/backendtest"
)

// cniCache is a cached result as libcni writes it (kind cniCacheV1): the
// bridge plugin lists the bridge, the host-side veth and the pod's eth0.
func cniCache(ns, name string, ifaces [][2]string, ips ...string) string {
	s := `{"kind":"cniCacheV1","containerId":"c1","ifName":"eth0","networkName":"cbr0",` +
		`"cniArgs":[["IgnoreUnknown","1"],["K8S_POD_NAMESPACE","` + ns + `"],["K8S_POD_NAME","` + name + `"]],` +
		`"result":{"cniVersion":"1.0.0","interfaces":[`
	for i, f := range ifaces {
		if i > 0 {
			s += ","
		}
		s += `{"name":"` + f[0] + `","mac":"02:00:00:00:00:0` + strconv.Itoa(i) + `","sandbox":"` + f[1] + `"}`
	}
	s += `],"ips":[`
	for i, ip := range ips {
		if i > 0 {
			s += ","
		}
		s += `{"interface":2,"address":"` + ip + `"}`
	}
	return s + `]}}`
}

func TestInterfaceDiscovery(t *testing.T) {
	ns := backendtest.NewNetNS(t, "makes veths and a bridge")
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "cni0"}}))
	for _, v := range []string{"veth-a", "veth-b", "veth-c"} {
		require.NoError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v}, PeerName: v + "p"}))
		l, err := h.LinkByName(v)
		require.NoError(t, err)
		require.NoError(t, h.LinkSetUp(l))
	}
	nsPath := "/proc/self/fd/" + strconv.Itoa(int(ns))

	t.Run("cni", func(t *testing.T) {
		dir := t.TempDir()
		write := func(file, body string, age time.Duration) {
			p := filepath.Join(dir, file)
			require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
			mt := time.Now().Add(-age)
			require.NoError(t, os.Chtimes(p, mt, mt))
		}
		sb := "/var/run/netns/cni-1"
		write("cbr0-a-eth0", cniCache("x", "a", [][2]string{{"cni0", ""}, {"veth-a", ""}, {"eth0", sb}}, "10.244.0.10/24", "fd00::10/64"), 0)
		// An older sandbox of b with another address, and b's current one.
		write("cbr0-b0-eth0", cniCache("x", "b", [][2]string{{"cni0", ""}, {"veth-c", ""}, {"eth0", sb}}, "10.244.0.99/24"), time.Hour)
		write("cbr0-b1-eth0", cniCache("x", "b", [][2]string{{"cni0", ""}, {"veth-b", ""}, {"eth0", sb}}, "10.244.0.11/24"), 0)
		// No pod named; two host-side veths; an interface that is not there.
		write("cbr0-n-eth0", cniCache("", "", [][2]string{{"veth-c", ""}}, "10.244.0.12/24"), 0)
		write("cbr0-d-eth0", cniCache("x", "d", [][2]string{{"veth-c", ""}, {"veth-a", ""}}, "10.244.0.13/24"), 0)
		write("cbr0-e-eth0", cniCache("x", "e", [][2]string{{"veth-gone", ""}}, "10.244.0.14/24"), 0)
		write("garbage", "{", 0)

		s, err := newIfaceSource(sourceCNI, dir, nsPath)
		require.NoError(t, err)
		defer s.close()
		changed, err := s.scan()
		require.NoError(t, err)
		assert.True(t, changed)
		addrs := func(ss ...string) []netip.Addr {
			var out []netip.Addr
			for _, a := range ss {
				out = append(out, netip.MustParseAddr(a))
			}
			return out
		}
		assert.Equal(t, "veth-a", s.Interface("x/a", addrs("10.244.0.10", "fd00::10")), "the veth, not the bridge nor eth0")
		assert.Equal(t, "", s.Interface("x/a", addrs("10.244.0.10", "fd00::99")), "an IP the result does not hold")
		assert.Equal(t, "veth-b", s.Interface("x/b", addrs("10.244.0.11")), "the attachment holding the pod's IP")
		assert.Equal(t, "veth-c", s.Interface("x/b", addrs("10.244.0.99")))
		for _, pod := range []string{"x/d", "x/e", "x/z"} {
			assert.Equal(t, "", s.Interface(pod, addrs("10.244.0.13")), pod)
		}
		changed, err = s.scan()
		require.NoError(t, err)
		assert.False(t, changed, "nothing changed")
		require.NoError(t, os.Remove(filepath.Join(dir, "cbr0-a-eth0")))
		changed, err = s.scan()
		require.NoError(t, err)
		assert.True(t, changed)
		assert.Equal(t, "", s.Interface("x/a", addrs("10.244.0.10")))
	})

	t.Run("route", func(t *testing.T) {
		for _, r := range []struct{ dev, dst string }{{"veth-a", "10.244.0.10/32"}, {"veth-a", "fd00::10/128"}, {"veth-b", "10.244.0.11/32"}, {"cni0", "10.244.0.12/32"}} {
			l, err := h.LinkByName(r.dev)
			require.NoError(t, err)
			if r.dev == "cni0" {
				require.NoError(t, h.LinkSetUp(l))
			}
			p := netip.MustParsePrefix(r.dst)
			require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK,
				Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}), r.dst)
		}
		s, err := newIfaceSource(sourceRoute, "", nsPath)
		require.NoError(t, err)
		defer s.close()
		_, err = s.scan()
		require.NoError(t, err)
		a := func(ss ...string) []netip.Addr {
			var out []netip.Addr
			for _, x := range ss {
				out = append(out, netip.MustParseAddr(x))
			}
			return out
		}
		assert.Equal(t, "veth-a", s.Interface("x/a", a("10.244.0.10", "fd00::10")))
		assert.Equal(t, "", s.Interface("x/a", a("10.244.0.10", "10.244.0.11")), "two veths")
		assert.Equal(t, "", s.Interface("x/c", a("10.244.0.12")), "a bridge, not a veth")
		assert.Equal(t, "", s.Interface("x/d", a("10.244.0.13")), "no host route")
	})
}
