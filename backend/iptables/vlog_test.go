package iptables

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

// The logging rules load in both variants, read back as ours (a restarted
// backend changes nothing, drift checks see none), name rules of the
// snapshot, and go away when logging is turned off.
func TestLoggingRules(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		ns := newNetNS(t)
		lg := verdictlog.Logging{Enabled: true, Group: 7, Rate: 50, Allowed: true}
		open := func(lg verdictlog.Logging) *Backend {
			b, err := New(Config{NetNS: int(ns), Mode: mode, Log: lg})
			require.NoError(t, err)
			t.Cleanup(func() { b.Close() })
			return b
		}
		b := open(lg)
		snap := testSnapshot()
		mustSync(t, b, snap)
		requireInSync(t, b, snap)

		lists := map[string]*ir.RuleList{}
		for i := range snap.RuleLists {
			lists[verdictlog.ListRef(snap.RuleLists[i].ID)] = &snap.RuleLists[i]
		}
		var allows, denies, isolated int
		for f := range 2 {
			save := sh(t, ns, b.bins.save[f], "-t", "filter")
			for _, m := range regexp.MustCompile(`-m hashlimit --hashlimit-upto 50/sec --hashlimit-burst 50 --hashlimit-name palisade-log -j NFLOG --nflog-prefix "?([^" ]+)"? --nflog-group 7`).FindAllStringSubmatch(save, -1) {
				ref, err := verdictlog.ParsePrefix(m[1])
				require.NoError(t, err)
				switch {
				case ref.Isolated():
					isolated++
				case ref.Allow:
					allows++
				default:
					denies++
				}
				if !ref.Isolated() {
					assert.NotNil(t, lists[ref.List], "prefix %q names no list", m[1])
				}
			}
		}
		assert.Positive(t, allows)
		assert.Positive(t, denies)
		assert.Positive(t, isolated)

		b2 := open(lg)
		n, repairs := mustSync(t, b2, snap)
		assert.Zero(t, n, "a restart with the same logging changes nothing")
		assert.Empty(t, repairs)
		changed, err := b2.Changed(context.Background())
		require.NoError(t, err)
		assert.False(t, changed)

		b3 := open(verdictlog.Logging{})
		n, _ = mustSync(t, b3, snap)
		assert.Positive(t, n)
		for f := range 2 {
			assert.NotContains(t, sh(t, ns, b.bins.save[f], "-t", "filter"), "NFLOG")
		}
		require.NoError(t, b3.Cleanup(context.Background()))
	})
}

func TestLogRateBound(t *testing.T) {
	_, err := New(Config{Runner: &recorder{}, Log: verdictlog.Logging{Enabled: true, Rate: verdictlog.MaxRate + 1}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Logging.Rate 1000001")
}
