package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPercentile(t *testing.T) {
	ds := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n)
		}
		return out
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ds(7), 50, 7},
		{ds(7), 100, 7},
		{ds(4, 1, 3, 2), 50, 2}, // nearest rank: ceil(0.5*4) = 2nd
		{ds(4, 1, 3, 2), 100, 4},
		{ds(4, 1, 3, 2), 1, 1},
		{ds(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 90, 9},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, percentile(tc.in, tc.p), "%v p%v", tc.in, tc.p)
	}
}

func TestConfigValidate(t *testing.T) {
	assert.NoError(t, Default().Validate())
	c := Default()
	c.Pods, c.Backend, c.Datapath, c.DatapathPolicies = MaxPods+1, "iptables", true, nil
	err := c.Validate()
	for _, want := range []string{"--pods", "--backend", "--datapath-policies"} {
		assert.ErrorContains(t, err, want)
	}
}

func TestFlipper(t *testing.T) {
	o, err := generate(t.Context(), Default().synthetic(10, 0), nil)
	assert.NoError(t, err)
	f, err := newFlipper(o)
	assert.NoError(t, err)
	assert.Equal(t, "ns-1/pod-1", f.id())
	a, b, c := f.next(), f.next(), f.next()
	assert.NotEqual(t, a.Labels["role"], b.Labels["role"])
	assert.Equal(t, a, c)
	assert.Equal(t, o.pods[1].Labels["role"], b.Labels["role"], "every other call restores the pod as loaded")
}
