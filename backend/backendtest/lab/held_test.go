package lab

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Held connections echo across checks, and ForgetProbes removes the
// probes' conntrack entries only: the held connections' entries stay.
func TestHeldSurviveForgetProbes(t *testing.T) { forTopologies(t, testHeldSurviveForgetProbes) }

func testHeldSurviveForgetProbes(t *testing.T, topo Topology) {
	l := newLab(t, Config{Topology: topo})
	addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(t, l, "x/b", 0, "10.244.0.11", "fd00::11")
	f := newTestFilter(t, nodeNS(t, l, 0))
	f.dropInvalid(t) // a ct expression: the node now tracks connections

	var ps []Probe
	for _, dst := range []string{"10.244.0.11", "fd00::11"} {
		ps = append(ps, Probe{Src: "x/a", Dst: ip(dst), Port: 80, Protocol: TCP}, Probe{Src: "x/a", Dst: ip(dst), Port: 53, Protocol: UDP})
	}
	held, res := l.Hold(context.Background(), ps)
	for i, r := range res {
		require.NoError(t, r.Err)
		require.True(t, r.Connected, "%s: %s", describe(ps[i]), r.Detail)
		require.NotNil(t, held[i])
	}
	entries := func() int {
		n := 0
		for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
			fs, err := l.nodes[0].nl.ConntrackTableList(netlink.ConntrackTable, fam)
			require.NoError(t, err)
			for _, f := range fs {
				// Only the probes' protocols: a bridge's own IGMP reports are tracked too.
				if f.Forward.Protocol == unix.IPPROTO_TCP || f.Forward.Protocol == unix.IPPROTO_UDP {
					n++
				}
			}
		}
		return n
	}
	require.Equal(t, len(ps), entries(), "one entry per held connection")

	assertVerdicts(t, l.Probe(context.Background(), ps), all)
	require.Equal(t, 2*len(ps), entries(), "probes add an entry each")
	require.NoError(t, l.ForgetProbes())
	assert.Equal(t, len(ps), entries(), "the held connections' entries stay")
	require.NoError(t, l.ForgetProbes(), "nothing to forget")

	for i, r := range l.CheckHeld(context.Background(), held) {
		assert.True(t, r.Connected, "%s: %s", describe(ps[i]), r.Detail)
	}

	_, res = l.Hold(context.Background(), []Probe{{Src: "x/a", Dst: ip("10.244.0.11"), Port: 9, Protocol: SCTP}})
	assert.True(t, errors.Is(res[0].Err, errors.ErrUnsupported), "SCTP cannot be held: %v", res[0].Err)

	require.NoError(t, held[0].Close())
	assert.ErrorIs(t, held[0].Check(context.Background()).Err, ErrClosed)
	require.NoError(t, l.Close())
	assert.ErrorIs(t, held[1].Check(context.Background()).Err, ErrClosed, "Close closes every held connection")
}

// A held connection whose packets start being dropped fails its Check, and
// reports that first failure from then on.
func TestHeldFailsWhenDropped(t *testing.T) { forTopologies(t, testHeldFailsWhenDropped) }

func testHeldFailsWhenDropped(t *testing.T, topo Topology) {
	l := newLab(t, Config{Topology: topo})
	addPod(t, l, "x/a", 0, "10.244.0.10")
	addPod(t, l, "x/b", 0, "10.244.0.11")
	f := newTestFilter(t, nodeNS(t, l, 0))
	ps := []Probe{{Src: "x/a", Dst: ip("10.244.0.11"), Port: 80, Protocol: TCP}, {Src: "x/a", Dst: ip("10.244.0.11"), Port: 53, Protocol: UDP}}
	held, res := l.Hold(context.Background(), ps)
	for _, r := range res {
		require.True(t, r.Connected, r.Detail)
	}
	f.dropPort(t, unix.IPPROTO_TCP, 80)
	f.dropPort(t, unix.IPPROTO_UDP, 53)
	for _, r := range l.CheckHeld(context.Background(), held) {
		assert.False(t, r.Connected)
		assert.Equal(t, timeout, r.Detail)
	}
	f.remove(t)
	for _, r := range l.CheckHeld(context.Background(), held) {
		assert.False(t, r.Connected)
		assert.Contains(t, r.Detail, "failed earlier")
	}
}
