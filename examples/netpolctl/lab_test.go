package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLabAgreesWithSimulate runs the demo, as one state, as steps and with
// cluster-wide policies (demo-admin, node peers included), through
// real kernels (nftables in lab node namespaces, one and two nodes) and
// checks every verdict equals simulate's, with each kernel backend.
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
		for _, run := range [][2]string{{"nftables", "1"}, {"nftables", "2"}, {"iptables", "1"}, {"iptables", "2"}} {
			t.Run(input.name+"/"+run[0]+"/nodes="+run[1], func(t *testing.T) {
				lab := netpolctl(t, append([]string{"lab", "--backend", run[0], "--nodes", run[1]}, args...)...)
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

func TestLabRefusesBadArguments(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netpolctl lab needs root")
	}
	for _, args := range [][]string{
		{"lab", "-f", demo, "--flows", demo + "/flows.txt", "--nodes", "3"},
		{"lab", "-f", demo, "--flows", demo + "/flows.txt", "--backend", "pf"},
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
	assert.Regexp(t, `AdminNetworkPolicy/protect-vault ingress rule 1 \W*nobody-else\W*: deny`, r.stdout)
	assert.Regexp(t, `ClusterNetworkPolicy/cluster-dns egress rule 0 \W*to-kube-dns\W*: allow`, r.stdout)
	r = netpolctl(t, "render", "-f", demo, "-f", demoAdmin, "--node", "node-1", "--backend", "iptables")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "AdminNetworkPolicy reports-to-frontends ingress rule 0 shop-decides: pass")
	assert.Contains(t, r.stdout, "BaselineAdminNetworkPolicy default ingress rule 0 default-deny: deny")
}
