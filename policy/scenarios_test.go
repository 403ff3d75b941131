package policy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/policytest"
)

// familyModes are the clusters every scenario runs in.
var familyModes = []struct {
	name     string
	families []policytest.Family
}{
	{"ipv4", []policytest.Family{policytest.IPv4}},
	{"ipv6", []policytest.Family{policytest.IPv6}},
	{"dual-stack", []policytest.Family{policytest.IPv4, policytest.IPv6}},
}

// TestUpstreamScenarios runs every scenario of the upstream e2e suite (and
// the extras) through the engine and the memory backend, in IPv4, IPv6 and
// dual-stack clusters. After each step it checks every expected matrix
// through the incremental path (the step's changes fed to a long-lived
// engine, its Delta applied to a long-lived backend) and checks that a fresh
// engine loaded with the step's whole state, synced from its Snapshot, gives
// the same matrices.
func TestUpstreamScenarios(t *testing.T) {
	scenarios := append(policytest.Scenarios(), policytest.Extras()...)
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			for _, mode := range familyModes {
				t.Run(mode.name, func(t *testing.T) {
					runScenario(t, policytest.StandardModel(mode.families...), sc)
				})
			}
		})
	}
}

func runScenario(t *testing.T, model policytest.Model, sc policytest.Scenario) {
	ctx := context.Background()
	pods := policytest.StandardPods()
	base, err := model.Cluster()
	require.NoError(t, err)

	eng := policy.New(policy.Config{})
	be := memory.New(memory.Config{})
	require.NoError(t, policytest.Load(eng, nil, base), "loading the model")
	require.NoError(t, be.Apply(ctx, eng.Delta()), "applying the model's delta")

	// With no policy, everything is allowed.
	checkMatrix(t, "model, no policy", base, pods, model.Families,
		policytest.Check{Port: 80, Protocol: "TCP", Expected: policytest.NewReachability(pods, true)}, be)

	cur := base
	for i, step := range sc.Steps {
		next := cur.Clone()
		if step.Mutate != nil {
			step.Mutate(next)
		}
		label := fmt.Sprintf("step %d (%s)", i+1, step.Name)

		// Incremental path.
		require.NoError(t, policytest.Load(eng, cur, next), "%s: feeding the changes", label)
		assert.Empty(t, eng.Problems(), "%s: every scenario object is valid", label)
		require.NoError(t, be.Apply(ctx, eng.Delta()), "%s: applying the delta", label)

		// Full path: a fresh engine and a fresh backend, from the step's
		// whole state.
		full := policy.New(policy.Config{})
		require.NoError(t, policytest.Load(full, nil, next), "%s: loading from scratch", label)
		fullBE := memory.New(memory.Config{})
		_, err := fullBE.Sync(ctx, full.Snapshot())
		require.NoError(t, err, "%s: syncing the full snapshot", label)

		require.NotEmpty(t, step.Checks, "%s: a step checks something", label)
		for _, ch := range step.Checks {
			incremental := checkMatrix(t, label+" incremental", next, pods, model.Families, ch, be)
			fromScratch := checkMatrix(t, label+" full", next, pods, model.Families, ch, fullBE)
			for fam, obs := range incremental {
				cmp := policytest.Compare(obs, fromScratch[fam], policytest.CompareOptions{})
				assert.True(t, cmp.OK(), "%s %s %s: incremental (expected side) and full (observed side) differ\n%s",
					label, ch, fam, cmp)
			}
		}
		cur = next
	}
}

// checkMatrix observes ch's whole matrix through be in every family the
// check runs in, compares it with the expected matrix (a pod's traffic to
// itself counts as allowed, see policytest's package doc) and returns the
// observed matrices by family.
func checkMatrix(t *testing.T, label string, c *policytest.Cluster, pods []string, families []policytest.Family,
	ch policytest.Check, be *memory.Backend) map[policytest.Family]*policytest.Reachability {
	t.Helper()
	proto, ok := ir.ParseProtocol(string(ch.Protocol))
	require.True(t, ok, "%s: protocol %q", label, ch.Protocol)
	require.NoError(t, ch.Expected.Err(), "%s %s: expected matrix", label, ch)
	fams := ch.Families(families)
	require.NotEmpty(t, fams, "%s %s: no family to check in", label, ch)

	out := make(map[policytest.Family]*policytest.Reachability, len(fams))
	for _, fam := range fams {
		obs := policytest.Observe(c, pods, fam, ch.Protocol, ch.Port, func(f policytest.Flow) bool {
			return be.Evaluate(memory.Flow{Src: f.Src, Dst: f.Dst, Protocol: proto, Port: uint16(f.Port)}).Allowed
		})
		cmp := policytest.Compare(ch.Expected, obs, policytest.CompareOptions{LoopbackAllowed: true})
		if !assert.True(t, cmp.OK(), "%s %s %s:\n%s", label, ch, fam, cmp) {
			t.Logf("%s %s %s: verdicts:\n%s", label, ch, fam, verdicts(be, c, fam, ch, proto, cmp.Mismatches))
		}
		out[fam] = obs
	}
	return out
}

// verdicts explains the first few mismatched flows with the backend's
// decision at each end.
func verdicts(be *memory.Backend, c *policytest.Cluster, fam policytest.Family, ch policytest.Check, proto ir.Protocol,
	ms []policytest.Mismatch) string {
	var b strings.Builder
	for i, m := range ms {
		if i == 5 {
			fmt.Fprintf(&b, "  … and %d more\n", len(ms)-i)
			break
		}
		fromNS, fromPod, _ := strings.Cut(m.From, "/")
		toNS, toPod, _ := strings.Cut(m.To, "/")
		src, _ := c.PodIP(fromNS, fromPod, fam)
		dst, _ := c.PodIP(toNS, toPod, fam)
		f := memory.Flow{Src: src, Dst: dst, Protocol: proto, Port: uint16(ch.Port)}
		v := be.Evaluate(f)
		fmt.Fprintf(&b, "  %s (%s): allowed=%t; egress at source: %s; ingress at destination: %s\n",
			m, f, v.Allowed, v.Egress, v.Ingress)
	}
	return b.String()
}

// TestClusterScenarios runs the cluster-wide policy scenarios the same way.
func TestClusterScenarios(t *testing.T) {
	for _, sc := range policytest.ClusterScenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			for _, mode := range familyModes {
				t.Run(mode.name, func(t *testing.T) {
					runScenario(t, policytest.StandardModel(mode.families...), sc)
				})
			}
		})
	}
}
