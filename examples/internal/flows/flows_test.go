package flows_test

import (
	"cmp"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/policy/ir"
)

var addrCmp = gocmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func podEnd(ns, name string) flows.End { return flows.End{Namespace: ns, Name: name} }
func ipEnd(s string) flows.End         { return flows.End{IP: netip.MustParseAddr(s)} }

func TestParse(t *testing.T) {
	in := `# SRC DST PORT PROTOCOL
shop/web-1 shop/db-0 6379 TCP

   # an indented comment
shop/web-1	10.96.0.10   53 UDP   # tabs, spaces and a trailing comment
fd00::1 shop/db-0 1 SCTP
shop/a ::ffff:10.0.0.7 65535 UDP
203.0.113.7 2001:db8::1 443 TCP#no space before the comment
`
	got, err := flows.Parse("flows.txt", strings.NewReader(in))
	require.NoError(t, err)
	want := []flows.Flow{
		{Line: 2, Src: podEnd("shop", "web-1"), Dst: podEnd("shop", "db-0"), Port: 6379, Protocol: ir.TCP},
		{Line: 5, Src: podEnd("shop", "web-1"), Dst: ipEnd("10.96.0.10"), Port: 53, Protocol: ir.UDP},
		{Line: 6, Src: ipEnd("fd00::1"), Dst: podEnd("shop", "db-0"), Port: 1, Protocol: ir.SCTP},
		{Line: 7, Src: podEnd("shop", "a"), Dst: ipEnd("10.0.0.7"), Port: 65535, Protocol: ir.UDP},
		{Line: 8, Src: ipEnd("203.0.113.7"), Dst: ipEnd("2001:db8::1"), Port: 443, Protocol: ir.TCP},
	}
	if diff := gocmp.Diff(want, got, addrCmp, cmpopts.IgnoreFields(flows.End{}, "Text")); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	assert.Equal(t, netip.MustParseAddr("10.0.0.7"), got[3].Dst.IP, "a v4-mapped literal is its IPv4 address")
	assert.Equal(t, "::ffff:10.0.0.7", got[3].Dst.String(), "an end renders as the file wrote it")
	assert.Equal(t, "shop/web-1", got[0].Src.String())
	assert.Equal(t, "shop/web-1", got[0].Src.String())
	assert.Equal(t, "fd00::1", got[2].Src.String())

	got, err = flows.Parse("empty", strings.NewReader("\n# nothing\n\n"))
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{"a/b c/d 80", `got 3 fields`},
		{"a/b c/d 80 TCP extra", `got 5 fields`},
		{"a/b", `got 1 fields`},
		{"a/b c/d 0 TCP", `PORT: "0" is not a port number (1-65535)`},
		{"a/b c/d 65536 TCP", `PORT: "65536" is not a port number`},
		{"a/b c/d abc TCP", `PORT: "abc" is not a port number`},
		{"a/b c/d -1 TCP", `PORT: "-1" is not a port number`},
		{"a/b c/d 80 ICMP", `PROTOCOL: "ICMP" is not TCP, UDP or SCTP`},
		{"a/b c/d 80 6", `PROTOCOL: "6" is not TCP, UDP or SCTP`},
		{"a/b/c d/e 80 TCP", `SRC: "a/b/c" is not namespace/pod`},
		{"/b d/e 80 TCP", `SRC: "/b" is not namespace/pod`},
		{"a/ d/e 80 TCP", `SRC: "a/" is not namespace/pod`},
		{"web-1 d/e 80 TCP", `SRC: "web-1" is neither namespace/pod nor an IP address`},
		{"a/b 10.0.0.256 80 TCP", `DST: "10.0.0.256" is neither namespace/pod nor an IP address`},
		{"a/b fe80::1%eth0 80 TCP", `DST: "fe80::1%eth0" is neither namespace/pod nor an IP address`},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			_, err := flows.Parse("f.txt", strings.NewReader("# header\n"+tc.line+"\n"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "f.txt:2: ")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestParseReportsEveryBadLine: one error per bad line, each with its line
// number, and the good lines are still returned.
func TestParseReportsEveryBadLine(t *testing.T) {
	in := "a/b c/d 80 TCP\na/b c/d 0 TCP\n\n# ok\na/b c/d 80 XDP\na/b c/d 81 UDP\nnonsense\n"
	got, err := flows.Parse("flows.txt", strings.NewReader(in))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3, err.Error())
	assert.True(t, strings.HasPrefix(lines[0], "flows.txt:2: PORT"), lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "flows.txt:5: PROTOCOL"), lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "flows.txt:7: want"), lines[2])
	require.Len(t, got, 2)
	assert.Equal(t, []int{1, 6}, []int{got[0].Line, got[1].Line})
}

func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.txt")
	require.NoError(t, os.WriteFile(path, []byte("x/a y/b 80 TCP\nx/a y/b 80 TCPX\n"), 0o644))
	got, err := flows.ReadFile(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+":2: PROTOCOL")
	assert.Len(t, got, 1)

	_, err = flows.ReadFile(filepath.Join(t.TempDir(), "missing.txt"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "missing.txt")
}

// Pod builders for Resolve.

type podTweak func(*corev1.Pod)

func mkPod(ns, name string, tweaks ...podTweak) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{NodeName: "node-1"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, tw := range tweaks {
		tw(p)
	}
	return p
}

// withIPs sets status.podIP to the first address and podIPs to all.
func withIPs(ips ...string) podTweak {
	return func(p *corev1.Pod) {
		p.Status.PodIP = ips[0]
		p.Status.PodIPs = nil
		for _, ip := range ips {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
		}
	}
}

func withPhase(ph corev1.PodPhase) podTweak { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func hostNetwork(p *corev1.Pod)             { p.Spec.HostNetwork = true }

func state(pods ...*corev1.Pod) *manifest.State {
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return &manifest.State{Pods: pods}
}

func TestResolve(t *testing.T) {
	st := state(
		mkPod("x", "dual", withIPs("10.0.0.1", "fd00::1")),
		mkPod("x", "dual6", withIPs("fd00::2", "10.0.0.2")), // IPv6 primary
		mkPod("x", "v4", withIPs("10.0.0.3")),
		mkPod("x", "v6", withIPs("fd00::4")),
		mkPod("x", "pending", withIPs("10.0.0.5"), withPhase(corev1.PodPending)),
		mkPod("x", "done", withIPs("10.0.0.6"), withPhase(corev1.PodSucceeded)),
		mkPod("x", "failed", withIPs("10.0.0.7"), withPhase(corev1.PodFailed)),
		mkPod("x", "no-ip"),
		mkPod("x", "host", withIPs("192.168.1.10"), hostNetwork),
		mkPod("x", "host2", withIPs("192.168.1.10"), hostNetwork),
		mkPod("x", "reused", withIPs("10.0.0.6")), // has the IP of the finished pod
		mkPod("y", "shares-node-ip", withIPs("192.168.1.10")),
	)
	tests := []struct {
		name           string
		src, dst       flows.End
		srcIP, dstIP   string
		srcPod, dstPod string
		absent         string
	}{
		{name: "pod to pod: source primary IPv4", src: podEnd("x", "dual"), dst: podEnd("x", "dual6"), srcIP: "10.0.0.1", dstIP: "10.0.0.2", srcPod: "x/dual", dstPod: "x/dual6"},
		{name: "pod to pod: source primary IPv6", src: podEnd("x", "dual6"), dst: podEnd("x", "dual"), srcIP: "fd00::2", dstIP: "fd00::1", srcPod: "x/dual6", dstPod: "x/dual"},
		{name: "destination lacks the source's family", src: podEnd("x", "dual"), dst: podEnd("x", "v6"), absent: "destination x/v6 has no IPv4 address"},
		{name: "source lacks the literal's family", src: podEnd("x", "v4"), dst: ipEnd("2001:db8::1"), absent: "source x/v4 has no IPv6 address"},
		{name: "IPv6 literal to dual-stack pod", src: ipEnd("2001:db8::1"), dst: podEnd("x", "dual"), srcIP: "2001:db8::1", dstIP: "fd00::1", dstPod: "x/dual"},
		{name: "pod to IPv4 literal", src: podEnd("x", "dual6"), dst: ipEnd("192.0.2.1"), srcIP: "10.0.0.2", dstIP: "192.0.2.1", srcPod: "x/dual6"},
		{name: "literal equal to a pod IP is that pod", src: ipEnd("fd00::1"), dst: podEnd("x", "dual6"), srcIP: "fd00::1", dstIP: "fd00::2", srcPod: "x/dual", dstPod: "x/dual6"},
		{name: "literal destination equal to a pod IP", src: podEnd("x", "v4"), dst: ipEnd("10.0.0.1"), srcIP: "10.0.0.3", dstIP: "10.0.0.1", srcPod: "x/v4", dstPod: "x/dual"},
		{name: "two literals", src: ipEnd("192.0.2.1"), dst: ipEnd("10.0.0.3"), srcIP: "192.0.2.1", dstIP: "10.0.0.3", dstPod: "x/v4"},
		{name: "two literals of different families", src: ipEnd("192.0.2.1"), dst: ipEnd("fd00::1"), absent: "192.0.2.1 and fd00::1 are of different families"},
		{name: "absent source pod", src: podEnd("x", "nope"), dst: podEnd("x", "v4"), absent: "source pod x/nope does not exist"},
		{name: "absent destination pod", src: podEnd("x", "v4"), dst: podEnd("z", "v4"), absent: "destination pod z/v4 does not exist"},
		{name: "succeeded pod", src: podEnd("x", "done"), dst: podEnd("x", "v4"), absent: "source pod x/done is Succeeded"},
		{name: "failed pod", src: podEnd("x", "v4"), dst: podEnd("x", "failed"), absent: "destination pod x/failed is Failed"},
		{name: "pending pod with an IP", src: podEnd("x", "pending"), dst: podEnd("x", "v4"), srcIP: "10.0.0.5", dstIP: "10.0.0.3", srcPod: "x/pending", dstPod: "x/v4"},
		{name: "pod without an IP", src: podEnd("x", "v4"), dst: podEnd("x", "no-ip"), absent: "destination pod x/no-ip has no IP"},
		{name: "finished pod's IP belongs to the running pod", src: ipEnd("10.0.0.6"), dst: podEnd("x", "v4"), srcIP: "10.0.0.6", dstIP: "10.0.0.3", srcPod: "x/reused", dstPod: "x/v4"},
		{name: "hostNetwork pod sends from its node's IP", src: podEnd("x", "host"), dst: podEnd("x", "v4"), srcIP: "192.168.1.10", dstIP: "10.0.0.3", srcPod: "x/host", dstPod: "x/v4"},
		{name: "to a hostNetwork pod", src: podEnd("x", "v4"), dst: podEnd("x", "host2"), srcIP: "10.0.0.3", dstIP: "192.168.1.10", srcPod: "x/v4", dstPod: "x/host2"},
		{name: "a literal shared with hostNetwork pods is the pod network's pod", src: ipEnd("192.168.1.10"), dst: podEnd("x", "v4"), srcIP: "192.168.1.10", dstIP: "10.0.0.3", srcPod: "y/shares-node-ip", dstPod: "x/v4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := flows.Flow{Line: 3, Src: tc.src, Dst: tc.dst, Port: 80, Protocol: ir.TCP}
			r := flows.Resolve(st, f)
			assert.Equal(t, f, r.Flow)
			assert.Equal(t, tc.absent, r.Absent)
			if tc.absent != "" {
				return
			}
			assert.Equal(t, tc.srcIP, r.SrcIP.String())
			assert.Equal(t, tc.dstIP, r.DstIP.String())
			assert.Equal(t, tc.srcPod, podName(r.SrcPod), "SrcPod")
			assert.Equal(t, tc.dstPod, podName(r.DstPod), "DstPod")
		})
	}
}

func TestResolveHostNetworkOnly(t *testing.T) {
	st := state(mkPod("kube-system", "agent", withIPs("192.168.1.10"), hostNetwork))
	r := flows.Resolve(st, flows.Flow{Src: ipEnd("192.168.1.10"), Dst: ipEnd("192.0.2.1"), Port: 1, Protocol: ir.UDP})
	assert.Empty(t, r.Absent)
	assert.Equal(t, "kube-system/agent", podName(r.SrcPod), "with no other owner the literal is the hostNetwork pod")
}

func podName(p *corev1.Pod) string {
	if p == nil {
		return ""
	}
	return p.Namespace + "/" + p.Name
}

func TestPodIPs(t *testing.T) {
	p := mkPod("x", "p")
	assert.Empty(t, flows.PodIPs(p))
	p.Status.PodIP = "fd00::1"
	p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}, {IP: "garbage"}, {IP: "::ffff:10.0.0.2"}, {IP: "fe80::1%eth0"}}
	want := []netip.Addr{netip.MustParseAddr("fd00::1"), netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	if diff := gocmp.Diff(want, flows.PodIPs(p), addrCmp); diff != "" {
		t.Errorf("PodIPs (-want +got):\n%s", diff)
	}
	p.Status.PodIP = ""
	p.Status.PodIPs = []corev1.PodIP{{IP: "fd00::9"}, {IP: "10.0.0.9"}}
	assert.Equal(t, "fd00::9", flows.PodIPs(p)[0].String(), "without podIP the first of podIPs is primary")
}
