package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// labRuns are the backend, node count and topology of each lab run.
func labRuns() [][3]string {
	var out [][3]string
	for _, topo := range []string{"routed", "bridge"} {
		for _, be := range []string{"nftables", "iptables"} {
			for _, nodes := range []string{"1", "2"} {
				out = append(out, [3]string{be, nodes, topo})
			}
		}
	}
	return out
}

// TestLabAgreesWithSimulate runs the demo, as one state, as steps and with
// cluster-wide policies (demo-admin, node peers included), through
// real kernels (each kernel backend in lab node namespaces, one and two
// nodes, routed and bridged pods) and checks every verdict equals
// simulate's.
func TestLabAgreesWithSimulate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netpolctl lab needs root: it creates network namespaces and packet filters")
	}
	for _, input := range []struct {
		name string
		args []string
	}{
		{"files", []string{"-f", demo, "--flows", demo + "/flows.txt"}},
		{"steps", []string{"--steps", demo + "/steps", "--flows", demo + "/flows.txt"}},
		{"cluster-policies", []string{"-f", demo, "-f", demoAdmin, "--flows", demoAdmin + "/flows.txt"}},
	} {
		args := append(input.args, "-o", "jsonl")
		sim := netpolctl(t, append([]string{"simulate"}, args...)...)
		require.Equal(t, 0, sim.code, sim.stderr)
		want := parseJSONL(t, sim.stdout)
		for _, run := range labRuns() {
			t.Run(input.name+"/"+run[0]+"/nodes="+run[1]+"/"+run[2], func(t *testing.T) {
				lab := netpolctl(t, append([]string{"lab", "--backend", run[0], "--nodes", run[1], "--topology", run[2]}, args...)...)
				require.Equal(t, 0, lab.code, lab.stderr)
				got := parseJSONL(t, lab.stdout)
				require.Len(t, got, len(want))
				for i := range want {
					assert.Equal(t, want[i].short(), got[i].short(), "flow %d", i)
				}
			})
		}
	}
}

// TestLabHeld runs the demo's steps with --held: the new-connection lines
// equal simulate's, and from step 1 on each flow allowed at step 0 (TCP
// and UDP) has a held line whose verdict is simulate's for that flow at
// that step (established connections follow the policy) until it is first
// denied; with --established keep, held connections all stay open.
func TestLabHeld(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netpolctl lab needs root: it creates network namespaces and packet filters")
	}
	args := []string{"--steps", demo + "/steps", "--flows", demo + "/flows.txt", "-o", "jsonl"}
	sim := netpolctl(t, append([]string{"simulate"}, args...)...)
	require.Equal(t, 0, sim.code, sim.stderr)
	want := parseJSONL(t, sim.stdout)
	type key struct {
		step               int
		src, dst, protocol string
		port               int
	}
	keyOf := func(l line) key { return key{l.Step, l.Src, l.Dst, l.Protocol, l.Port} }
	simVerdict := map[key]string{}
	absent := map[key]bool{} // an end of the flow does not exist at that step
	var heldAtStart []key    // flows allowed at step 0, with step 0
	for _, l := range want {
		simVerdict[keyOf(l)] = l.Verdict
		absent[keyOf(l)] = strings.HasPrefix(l.Reason, "source ") || strings.HasPrefix(l.Reason, "destination ")
		if l.Step == 0 && l.Verdict == "allow" && l.Protocol != "SCTP" {
			heldAtStart = append(heldAtStart, keyOf(l))
		}
	}
	require.NotEmpty(t, heldAtStart)
	steps := want[len(want)-1].Step + 1
	require.Greater(t, steps, 1)

	runs := [][4]string{{"nftables", "2", "keep", "routed"}}
	for _, r := range labRuns() {
		runs = append(runs, [4]string{r[0], r[1], "follow", r[2]})
	}
	for _, run := range runs {
		t.Run(run[0]+"/nodes="+run[1]+"/"+run[2]+"/"+run[3], func(t *testing.T) {
			lab := netpolctl(t, append([]string{"lab", "--held", "--backend", run[0], "--nodes", run[1], "--established", run[2], "--topology", run[3]}, args...)...)
			require.Equal(t, 0, lab.code, lab.stderr)
			var fresh []line
			held := map[key]string{}
			for _, l := range parseJSONL(t, lab.stdout) {
				switch l.Conn {
				case "":
					fresh = append(fresh, l)
				case "held":
					require.Positive(t, l.Step, "no held line at step 0: %s", l.short())
					held[keyOf(l)] = l.Verdict
				default:
					t.Fatalf("conn %q: %s", l.Conn, l.short())
				}
			}
			require.Len(t, fresh, len(want))
			for i := range want {
				assert.Equal(t, want[i].short(), fresh[i].short(), "flow %d", i)
			}
			cut := 0
			for _, k0 := range heldAtStart {
				for step := 1; step < steps; step++ {
					k := k0
					k.step = step
					got, ok := held[k]
					require.True(t, ok, "no held line for %v", k)
					wantV := simVerdict[k]
					if run[2] == "keep" && !absent[k] {
						wantV = "allow" // open connections survive changes
					}
					assert.Equal(t, wantV, got, "held %v", k)
					if got == "deny" {
						cut++
						break // lines after the first deny are not compared
					}
				}
			}
			if run[2] == "follow" {
				assert.Positive(t, cut, "the demo's steps deny some held connections")
			} else {
				assert.Zero(t, cut, "keep: no held connection cut")
			}
		})
	}
}

func TestLabRefusesBadArguments(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netpolctl lab needs root")
	}
	for _, args := range [][]string{
		{"lab", "-f", demo, "--flows", demo + "/flows.txt", "--nodes", "3"},
		{"lab", "-f", demo, "--flows", demo + "/flows.txt", "--backend", "pf"},
		{"lab", "-f", demo, "--flows", demo + "/flows.txt", "--established", "sometimes"},
		{"lab", "-f", demo, "--flows", demo + "/flows.txt", "--topology", "vxlan"},
	} {
		r := netpolctl(t, args...)
		assert.NotEqual(t, 0, r.code)
		assert.NotEmpty(t, r.stderr)
	}
}

func TestRenderPrintsOurTable(t *testing.T) {
	r := netpolctl(t, "render", "-f", demo, "--node", "node-2")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "table inet palisade {")
	assert.Contains(t, r.stdout, "pods role=frontend in namespace shop")
	assert.Contains(t, r.stdout, "10.244.2.31") // db-0 is on node-2

	r = netpolctl(t, "render", "-f", demo, "--backend", "iptables")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "# ipset restore")
	assert.Contains(t, r.stdout, "NetworkPolicy shop/db-from-frontend ingress rule 0")

	// Cluster-wide policies: every rule named by kind, policy and rule.
	r = netpolctl(t, "render", "-f", demo, "-f", demoAdmin, "--node", "node-1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "AdminNetworkPolicy/protect-vault ingress rule 1 'nobody-else': deny")
	assert.Contains(t, r.stdout, "ClusterNetworkPolicy/cluster-dns egress rule 0 'to-kube-dns': allow")
	r = netpolctl(t, "render", "-f", demo, "-f", demoAdmin, "--node", "node-1", "--backend", "iptables")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "AdminNetworkPolicy reports-to-frontends ingress rule 0 shop-decides: pass")
	assert.Contains(t, r.stdout, "BaselineAdminNetworkPolicy default ingress rule 0 default-deny: deny")
}
