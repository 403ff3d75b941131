package lab

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without a packet filter, the lab carries a forged source like any other
// (no reverse-path filter on its nodes): the baseline against which a
// backend's source validation is tested. Both topologies, both families,
// same node and across nodes.
func TestForgeArrivesUnfiltered(t *testing.T) {
	for _, topo := range []Topology{Routed, Bridge} {
		t.Run(string(topo), func(t *testing.T) {
			l := newLab(t, Config{Nodes: 2, Topology: topo})
			addPod(t, l, "x/a", 0, "10.244.0.10", "fd00::10")
			addPod(t, l, "x/b", 0, "10.244.0.11", "fd00::11")
			addPod(t, l, "x/c", 1, "10.244.1.10", "fd00::1:10")
			ctx := context.Background()
			for _, f := range []Forgery{
				{Src: "x/a", From: ip("10.244.0.11"), Dst: ip("10.244.1.10"), Port: 7001},
				{Src: "x/a", From: ip("10.244.1.10"), Dst: ip("10.244.0.11"), Port: 7001},
				{Src: "x/a", From: ip("203.0.113.9"), Dst: ip("10.244.0.11"), Port: 7001},
				{Src: "x/a", From: ip("10.244.0.10"), Dst: ip("10.244.0.11"), Port: 7002},
				{Src: "x/a", From: ip("fd00::1:10"), Dst: ip("fd00::11"), Port: 7001},
				{Src: "x/a", From: ip("fd00::10"), Dst: ip("fd00::1:10"), Port: 7001},
			} {
				arrived, err := l.Forge(ctx, f)
				require.NoError(t, err, "%+v", f)
				assert.True(t, arrived, "%s from %s to %s", f.Src, f.From, f.Dst)
			}
		})
	}
}

func TestForgeErrors(t *testing.T) {
	l := newLab(t, Config{})
	addPod(t, l, "x/a", 0, "10.244.0.10")
	addPod(t, l, "x/b", 0, "10.244.0.11")
	ctx := context.Background()
	for _, f := range []Forgery{
		{Src: "x/z", From: ip("10.244.0.11"), Dst: ip("10.244.0.11"), Port: 7001},
		{Src: "x/a", From: ip("10.244.0.11"), Dst: ip("10.244.0.99"), Port: 7001},
		{Src: "x/a", From: ip("fd00::1"), Dst: ip("10.244.0.11"), Port: 7001},
		{Src: "x/a", From: ip("10.244.0.12"), Dst: ip("10.244.0.11"), Port: 0},
	} {
		_, err := l.Forge(ctx, f)
		assert.Error(t, err, "%+v", f)
	}
	// A port the lab serves is refused rather than half-observed.
	res := l.Probe(ctx, []Probe{{Src: "x/a", Dst: ip("10.244.0.11"), Port: 7003, Protocol: UDP}})
	require.True(t, res[0].Connected)
	_, err := l.Forge(ctx, Forgery{Src: "x/a", From: ip("10.244.0.12"), Dst: ip("10.244.0.11"), Port: 7003})
	assert.ErrorContains(t, err, "address already in use")
}
