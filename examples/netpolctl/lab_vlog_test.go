package main

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loggedLine is a lab line's verdict-log fields.
type loggedLine struct {
	Logged string `json:"logged"`
	Policy string `json:"policy"`
	Rule   string `json:"rule"`
}

func parseLogged(t *testing.T, out string) []loggedLine {
	t.Helper()
	var lines []loggedLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l loggedLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		lines = append(lines, l)
	}
	return lines
}

// TestLabLogVerdicts runs flows of every tier (Admin allow, deny and pass,
// NetworkPolicy rules and its isolated default, Baseline deny, cluster-wide
// node peers), IPv4 and IPv6, TCP, UDP and SCTP, through both kernel
// backends with one and two nodes, and the demo's steps (the incremental
// path), with --log-verdicts. Every verdict is simulate's; every denied
// probe is logged as denied, naming the policy and rule simulate names (or
// the isolated default); no allowed probe is logged as denied, and what is
// logged as allowed names a policy simulate says allowed it.
func TestLabLogVerdicts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netpolctl lab needs root: it creates network namespaces and packet filters")
	}
	for _, input := range []struct {
		name string
		args []string
	}{
		{"tiers", []string{"-f", demo, "-f", demoAdmin, "--flows", "testdata/vlog-flows.txt"}},
		{"steps", []string{"--steps", demo + "/steps", "--flows", demo + "/flows.txt"}},
	} {
		args := append(input.args, "-o", "jsonl")
		sim := netpolctl(t, append([]string{"simulate"}, args...)...)
		require.Equal(t, 0, sim.code, sim.stderr)
		want := parseJSONL(t, sim.stdout)
		for _, run := range [][2]string{{"nftables", "1"}, {"nftables", "2"}, {"iptables", "1"}, {"iptables", "2"}} {
			t.Run(input.name+"/"+run[0]+"/nodes="+run[1], func(t *testing.T) {
				r := netpolctl(t, append([]string{"lab", "--log-verdicts", "--backend", run[0], "--nodes", run[1]}, args...)...)
				require.Equal(t, 0, r.code, r.stderr)
				got := parseJSONL(t, r.stdout)
				logged := parseLogged(t, r.stdout)
				require.Len(t, got, len(want))
				var denies, allows int
				for i, w := range want {
					g, lg := got[i], logged[i]
					require.Equal(t, w.short(), g.short(), "flow %d", i)
					decided := w.Egress + " | " + w.Ingress
					probed := !strings.HasPrefix(w.Reason, "source ") && !strings.HasPrefix(w.Reason, "destination ")
					switch {
					case g.Verdict == "deny" && probed:
						denies++
						require.Equal(t, "deny", lg.Logged, "flow %d %s: a denied new connection must be logged as denied (%s)", i, g.short(), decided)
						if lg.Rule == "isolated" {
							assert.Empty(t, lg.Policy, "flow %d", i)
							assert.Contains(t, decided, "isolated by NetworkPolicy", "flow %d %s", i, g.short())
						} else {
							require.NotEmpty(t, lg.Policy, "flow %d", i)
							assert.Contains(t, decided, "denied by "+lg.Policy+" rule ", "flow %d %s", i, g.short())
							assert.Contains(t, decided, lg.Rule, "flow %d %s", i, g.short())
						}
					case g.Verdict == "allow":
						assert.NotEqual(t, "deny", lg.Logged, "flow %d %s: an allowed connection logged as denied", i, g.short())
						if lg.Logged == "allow" {
							allows++
							assert.Contains(t, decided, "allowed by "+lg.Policy+" rule ", "flow %d %s", i, g.short())
						}
					default:
						assert.Empty(t, lg.Logged, "flow %d %s: nothing was probed", i, g.short())
					}
				}
				assert.Positive(t, denies)
				assert.Positive(t, allows)
			})
		}
	}
}
