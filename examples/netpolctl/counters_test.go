package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/nftables"
)

// decided matches a decision of simulate's trace that names a rule.
var decided = regexp.MustCompile(`^(allowed|denied) by (\S+) rule (\d+)`)

// TestLabCounters runs the demo through the lab with --counters at rule
// detail, with each kernel backend, with and without the verdict log's
// rules beside the counted ones: the flow lines are simulate's, and
// the rules (and isolated defaults) the kernel counted are exactly those
// that simulate says decided a flow (Pass rules aside, which decide
// nothing in simulate's trace).
func TestLabCounters(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netpolctl lab needs root: it creates network namespaces and packet filters")
	}
	args := []string{"-f", demo, "--flows", demo + "/flows.txt", "-o", "jsonl"}
	sim := netpolctl(t, append([]string{"simulate"}, args...)...)
	require.Equal(t, 0, sim.code, sim.stderr)
	want := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(sim.stdout))
	for sc.Scan() {
		var r struct{ Egress, Ingress string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		for _, d := range []struct{ dir, text string }{{"egress", r.Egress}, {"ingress", r.Ingress}} {
			if m := decided.FindStringSubmatch(d.text); m != nil {
				want[fmt.Sprintf("%s %s rule %s", m[2], d.dir, m[3])] = true
			}
			if strings.HasPrefix(d.text, "denied (isolated") {
				want["isolated "+d.dir] = true
			}
			if strings.HasPrefix(d.text, "denied") {
				break // the packet never reaches the ingress check
			}
		}
	}
	require.NotEmpty(t, want)
	for _, run := range [][2]string{{"nftables", "false"}, {"iptables", "false"}, {"nftables", "true"}, {"iptables", "true"}} {
		be, logging := run[0], run[1]
		// With --log-verdicts, log rules sit beside the counted ones and
		// must change nothing.
		t.Run(be+"/log-verdicts="+logging, func(t *testing.T) {
			lab := netpolctl(t, append([]string{"lab", "--backend", be, "--log-verdicts=" + logging, "--counters", "--counters-detail", "rule"}, args...)...)
			require.Equal(t, 0, lab.code, lab.stderr)
			var flows []string
			got := map[string]bool{}
			sc := bufio.NewScanner(strings.NewReader(lab.stdout))
			for sc.Scan() {
				var c struct {
					Node     *int           `json:"node"`
					Counters *counterRecord `json:"counters"`
				}
				require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
				if c.Counters == nil {
					require.Empty(t, got, "a flow line after the counters: %s", sc.Text())
					flows = append(flows, sc.Text())
					continue
				}
				r := c.Counters
				require.NotNil(t, c.Node)
				assert.Equal(t, 0, *c.Node)
				if r.Packets == 0 || r.Action == "pass" {
					continue
				}
				switch r.Scope {
				case "rule":
					origin := r.Kind + "/" + r.Policy
					if r.Namespace != "" {
						origin = r.Kind + "/" + r.Namespace + "/" + r.Policy
					}
					got[fmt.Sprintf("%s %s rule %d", origin, r.Direction, *r.Rule)] = true
				case "default":
					got["isolated "+r.Direction] = true
				default:
					t.Errorf("unexpected counters line: %s", sc.Text())
				}
			}
			assert.Len(t, parseJSONL(t, strings.Join(flows, "\n")), len(strings.Split(strings.TrimSpace(sim.stdout), "\n")))
			assert.Equal(t, want, got)
		})
	}
}

// TestCountersCommand reads a namespace that a backend programmed, by path
// and by a process in it, with each backend.
func TestCountersCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netpolctl counters needs root: it reads a packet filter")
	}
	snap, _ := backendtest.CountersSnapshot()
	for _, name := range []string{"nftables", "iptables"} {
		t.Run(name, func(t *testing.T) {
			ns := backendtest.NewNetNS(t, "programs "+name)
			var be backend.Backend
			var err error
			if name == "nftables" {
				be, err = nftables.New(nftables.Config{NetNS: int(ns)})
			} else {
				be, err = iptables.New(iptables.Config{NetNS: int(ns)})
			}
			require.NoError(t, err)
			_, err = be.Sync(context.Background(), snap)
			require.NoError(t, err)
			path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))

			out := netpolctl(t, "counters", "--netns", path, "--backend", name, "-o", "jsonl", "--detail", "rule")
			require.Equal(t, 0, out.code, out.stderr)
			var scopes []string
			sc := bufio.NewScanner(strings.NewReader(out.stdout))
			for sc.Scan() {
				var r counterRecord
				require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
				scopes = append(scopes, r.Scope)
				assert.Zero(t, r.Packets, "nothing sent: %s", sc.Text())
				if r.Scope == "rule" && r.Policy == "guard" {
					assert.Equal(t, "Admin", r.Tier)
				}
			}
			assert.Equal(t, []string{"rule", "rule", "rule", "rule", "default", "default"}, scopes)

			out = netpolctl(t, "counters", "--netns", path, "--backend", name)
			require.Equal(t, 0, out.code, out.stderr)
			assert.Contains(t, out.stdout, "SCOPE")
			assert.Contains(t, out.stdout, "AdminNetworkPolicy/guard")
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"counters"}, "exactly one of --netns PATH and --pid PID"},
		{[]string{"counters", "--netns", "/x", "--pid", "1"}, "exactly one of"},
		{[]string{"counters", "--pid", "1", "--detail", "all"}, `--detail "all"`},
		{[]string{"counters", "--pid", "1", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"counters", "--netns", "/nonexistent/ns"}, "network namespace"},
		{[]string{"counters", "--pid", "1", "--backend", "ebpf"}, `--backend "ebpf"`},
	} {
		out := netpolctl(t, tc.args...)
		assert.NotEqual(t, 0, out.code, tc.args)
		assert.Contains(t, out.stderr, tc.want, tc.args)
	}
}
