package nftables

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

var logCfg = verdictlog.Logging{Enabled: true, Group: 7, Rate: 50}

// Every logging rule's prefix parses back and names a rule of the snapshot
// with the verdict it logs; allowed connections are logged only when asked.
func TestRenderLogging(t *testing.T) {
	snap := testSnapshot()
	lists := map[string]*ir.RuleList{}
	for i := range snap.RuleLists {
		lists[verdictlog.ListRef(snap.RuleLists[i].ID)] = &snap.RuleLists[i]
	}
	prefixRE := regexp.MustCompile(`log prefix "([^"]*)" group 7`)
	for _, tc := range []struct {
		name       string
		lg         verdictlog.Logging
		wantAllows bool
	}{
		{"deny only", logCfg, false},
		{"all", verdictlog.Logging{Enabled: true, Group: 7, Rate: 50, Allowed: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RenderConfig(snap, Config{Log: tc.lg})
			require.NoError(t, err)
			assert.Contains(t, out, "limit log-budget-50 {\n\t\trate 50/second burst 50 packets\n\t}")
			assert.Contains(t, out, `limit name "log-budget-50" log prefix`)
			var allows, denies, isolated int
			for _, m := range prefixRE.FindAllStringSubmatch(out, -1) {
				ref, err := verdictlog.ParsePrefix(m[1])
				require.NoError(t, err)
				if ref.Isolated() {
					isolated++
					continue
				}
				rl := lists[ref.List]
				require.NotNil(t, rl, "prefix %q names no list", m[1])
				assert.Equal(t, rl.Direction, ref.Direction)
				found := false
				for _, r := range rl.Rules {
					if r.Index == ref.Rule {
						found = true
						assert.Equal(t, r.Action == ir.Allow, ref.Allow, "prefix %q", m[1])
						assert.NotEqual(t, ir.Pass, r.Action, "a Pass rule is logged: %q", m[1])
					}
				}
				assert.True(t, found, "prefix %q names no rule of %s", m[1], rl.ID)
				if ref.Allow {
					allows++
				} else {
					denies++
				}
			}
			assert.Positive(t, denies)
			assert.Positive(t, isolated)
			assert.Equal(t, tc.wantAllows, allows > 0)
		})
	}
	out, err := Render(snap)
	require.NoError(t, err)
	assert.NotContains(t, out, "log prefix", "logging is off by default")
}

// A list marked LogAllowed logs its Allow rules without Logging.Allowed.
func TestRenderLogAllowedList(t *testing.T) {
	snap := testSnapshot()
	var marked *ir.RuleList
	for i := range snap.RuleLists {
		rl := &snap.RuleLists[i]
		for _, r := range rl.Rules {
			if r.Action == ir.Allow && marked == nil {
				marked = rl
			}
		}
	}
	require.NotNil(t, marked)
	marked.LogAllowed = true
	out, err := RenderConfig(snap, Config{Log: logCfg})
	require.NoError(t, err)
	all := regexp.MustCompile(`"pal:a:`).FindAllString(out, -1)
	ours := regexp.MustCompile(`"pal:a:[ie]:`+verdictlog.ListRef(marked.ID)+`:`).FindAllString(out, -1)
	assert.NotEmpty(t, ours)
	assert.Equal(t, len(all), len(ours), "only the marked list logs allowed connections")
}

// The installed nft lists and re-parses the logging rules, and a restarted
// backend reads them back as its own: no change, no repair.
func TestNftListsLogging(t *testing.T) {
	ns := newNetNS(t)
	lg := logCfg
	lg.Allowed = true
	b, err := New(Config{NetNS: int(ns), TableName: "palisade-test", Log: lg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	snap := testSnapshot()
	mustSync(t, b, snap)
	var chains []string
	for name := range b.st.m.chains {
		chains = append(chains, name)
	}
	requireNftReads(t, ns, b.cfg.TableName, chains)
	out, err := nftCmd(t, ns, "", "list", "table", "inet", b.cfg.TableName)
	require.NoError(t, err, out)
	assert.Contains(t, out, "limit log-budget-50 {")
	assert.Regexp(t, `limit name "log-budget-50" log prefix "pal:d:[ie]:[0-9a-f]{16}:[0-9]+" group 7`, out)
	assert.Regexp(t, `log prefix "pal:a:`, out)
	assert.Regexp(t, `log prefix "pal:d:i::isolated" group 7`, out)

	b2, err := New(Config{NetNS: int(ns), TableName: "palisade-test", Log: lg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b2.Close() })
	rep, err := b2.Sync(context.Background(), snap)
	require.NoError(t, err)
	assert.Zero(t, rep.Changes, "the logging rules read back differ from what was programmed")

	// A new budget is a new limit object; the old one goes.
	lg60 := lg
	lg60.Rate = 60
	b4, err := New(Config{NetNS: int(ns), TableName: "palisade-test", Log: lg60})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b4.Close() })
	rep, err = b4.Sync(context.Background(), snap)
	require.NoError(t, err)
	assert.Positive(t, rep.Changes)
	out, err = nftCmd(t, ns, "", "list", "table", "inet", b.cfg.TableName)
	require.NoError(t, err, out)
	assert.Contains(t, out, `limit name "log-budget-60" log prefix`)
	assert.NotContains(t, out, "log-budget-50")

	// Turning logging off removes the logging rules, and only them.
	b3, err := New(Config{NetNS: int(ns), TableName: "palisade-test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b3.Close() })
	rep, err = b3.Sync(context.Background(), snap)
	require.NoError(t, err)
	assert.Positive(t, rep.Changes)
	out, err = nftCmd(t, ns, "", "list", "table", "inet", b.cfg.TableName)
	require.NoError(t, err, out)
	assert.NotContains(t, out, "log prefix")
	assert.NotContains(t, out, "log-budget", "the unused limit is deleted")
}

func TestLogRateBound(t *testing.T) {
	_, err := New(Config{Log: verdictlog.Logging{Enabled: true, Rate: verdictlog.MaxRate + 1}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Logging.Rate 1000001")
}
