package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyBench is a cluster small enough for every section to take well under
// a second.
var tinyBench = []string{"--pods", "200", "--namespaces", "10", "--policies", "20", "--changes", "20"}

// runBench runs the bench command in-process (so the race detector sees
// it) and returns its output parsed as JSON.
func runBench(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	cmd := benchCmd()
	cmd.SilenceUsage = true
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	require.NoError(t, cmd.Execute(), stderr.String())
	var rep map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	return rep, stderr.String()
}

// field returns the value at a dotted path ("engine.podChange.p50Micros";
// a number selects an array element), failing when it is absent.
func field(t *testing.T, v any, path string) any {
	t.Helper()
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			v, ok = x[k]
			require.Truef(t, ok, "no %q in the report (at %q)", path, k)
		case []any:
			i, err := strconv.Atoi(k)
			require.Truef(t, err == nil && i >= 0 && i < len(x), "no element %q in %q", k, path)
			v = x[i]
		default:
			t.Fatalf("%q: %q is not an object", path, k)
		}
	}
	return v
}

// number returns the number at path.
func number(t *testing.T, rep map[string]any, path string) float64 {
	t.Helper()
	n, ok := field(t, rep, path).(float64)
	require.Truef(t, ok, "%q is not a number: %v", path, field(t, rep, path))
	return n
}

// positive checks that each path holds a number above zero.
func positive(t *testing.T, rep map[string]any, paths ...string) {
	t.Helper()
	for _, p := range paths {
		assert.Greaterf(t, number(t, rep, p), 0.0, "%s", p)
	}
}

func checkEngine(t *testing.T, rep map[string]any) {
	positive(t, rep,
		"engine.compileSeconds", "engine.heapMiB", "engine.heapWithSnapshotMiB",
		"engine.ruleLists", "engine.rules", "engine.addressSets", "engine.setMembers", "engine.portSets", "engine.portSetMembers",
		"engine.nodeViewCompileSeconds", "engine.nodeViewEndpoints",
		"engine.baseline.compileSeconds", "engine.baseline.heapMiB", "engine.baseline.endpoints",
		"engine.podChange.p50Micros", "engine.podChange.p99Micros", "engine.podChange.maxMicros", "engine.podChange.membersPerChange",
	)
	assert.Equal(t, 200.0, number(t, rep, "engine.endpoints"), "every pod is local")
	assert.Equal(t, 2.0, number(t, rep, "engine.nodeViewEndpoints"), "200 pods over 100 nodes")
	assert.Equal(t, 0.0, number(t, rep, "engine.baseline.ruleLists"))
	assert.Equal(t, 0.0, number(t, rep, "engine.baseline.setMembers"))
	assert.Equal(t, 20.0, number(t, rep, "engine.podChange.count"))
	assert.Equal(t, "ns-1/pod-1", field(t, rep, "engine.podChange.pod"))
	assert.LessOrEqual(t, number(t, rep, "engine.podChange.p50Micros"), number(t, rep, "engine.podChange.p99Micros"))
	assert.LessOrEqual(t, number(t, rep, "engine.podChange.p99Micros"), number(t, rep, "engine.podChange.maxMicros"))
	assert.Less(t, number(t, rep, "engine.baseline.heapMiB"), number(t, rep, "engine.heapMiB"))
	positive(t, rep, "machine.cpus", "totalSeconds")
	assert.Len(t, field(t, rep, "machine.loadAverageStart"), 3)
	assert.Len(t, field(t, rep, "machine.loadAverageEnd"), 3)
	assert.Equal(t, 200.0, number(t, rep, "config.pods"))
}

func checkBackend(t *testing.T, rep map[string]any) {
	positive(t, rep,
		"backend.coldSyncSeconds", "backend.coldSyncChanges", "backend.kernel.sets", "backend.kernel.elements",
		"backend.noopResyncSeconds",
		"backend.podChange.p50Micros", "backend.podChange.p99Micros", "backend.podChange.maxMicros", "backend.podChange.touchedSetMembersMax",
		"backend.podChangeLarge.pods", "backend.podChangeLarge.endpoints", "backend.podChangeLarge.compileSeconds",
		"backend.podChangeLarge.coldSyncSeconds", "backend.podChangeLarge.kernel.elements",
		"backend.podChangeLarge.p50Micros", "backend.podChangeLarge.p99Micros", "backend.podChangeLarge.p50Ratio",
		"backend.baseline.coldSyncSeconds", "backend.baseline.coldSyncChanges",
	)
	assert.Equal(t, 0.0, number(t, rep, "backend.noopResyncChanges"), "a no-op resync changes nothing")
	assert.Equal(t, 20.0, number(t, rep, "backend.podChange.count"))
	assert.Equal(t, 10.0, number(t, rep, "backend.podChangeLarge.factor"))
	assert.Equal(t, 2000.0, number(t, rep, "backend.podChangeLarge.pods"))
	assert.Greater(t, number(t, rep, "backend.podChangeLarge.kernel.elements"), number(t, rep, "backend.kernel.elements"))
	assert.Contains(t, field(t, rep, "backend.podChangeLarge.note"), "under 100k")
	assert.Less(t, number(t, rep, "backend.baseline.kernel.elements"), number(t, rep, "backend.kernel.elements"))
	assert.Equal(t, true, field(t, rep, "backend.cleanedUp"))
}

func checkDatapath(t *testing.T, rep map[string]any) {
	checkRun := func(r string) {
		t.Helper()
		positive(t, rep, r+".latencyMedianMicros", r+".latencyP90Micros", r+".referenceLatencyMedianMicros",
			r+".referenceLatencyP90Micros", r+".connsPerSecond", r+".referenceConnsPerSecond", r+".conns",
			r+".referenceConns", r+".connsSeconds", r+".connsRatio")
		assert.Equal(t, 50.0, number(t, rep, r+".latencySamples")+number(t, rep, r+".latencyInterrupted"))
		assert.Equal(t, 0.0, number(t, rep, r+".latencyFailed"), "%s: the path is open", r)
		assert.InDelta(t, number(t, rep, r+".latencyMedianMicros")-number(t, rep, r+".referenceLatencyMedianMicros"),
			number(t, rep, r+".overheadMedianMicros"), 0.02)
		assert.InDelta(t, number(t, rep, r+".connsPerSecond")/number(t, rep, r+".referenceConnsPerSecond"),
			number(t, rep, r+".connsRatio"), 0.001)
	}
	for _, r := range []string{"datapath.control", "datapath.conntrack", "datapath.noPolicy"} {
		checkRun(r)
	}
	runs, ok := field(t, rep, "datapath.runs").([]any)
	require.True(t, ok)
	require.Len(t, runs, 2)
	for i, k := range []float64{0, 20} {
		r := "datapath.runs." + strconv.Itoa(i)
		checkRun(r)
		assert.Equal(t, k, number(t, rep, r+".policies"))
		positive(t, rep, r+".ruleLists", r+".endpoints", r+".compileSeconds", r+".syncSeconds")
		assert.Equal(t, 202.0, number(t, rep, r+".endpoints"), "the synthetic pods and the two real ones")
		assert.Equal(t, true, field(t, rep, r+".deniedPortBlocked"), "the policy is enforced")
		assert.InDelta(t, number(t, rep, r+".pairedOverheadMedianMicros")-number(t, rep, "datapath.noPolicy.pairedOverheadMedianMicros"),
			number(t, rep, r+".pairedOverheadOverNoPolicyMicros"), 0.02)
		assert.InDelta(t, number(t, rep, r+".connsRatio")/number(t, rep, "datapath.conntrack.connsRatio"),
			number(t, rep, r+".connsRatioOverConntrack"), 0.001)
	}
	assert.Greater(t, number(t, rep, "datapath.runs.1.ruleLists"), number(t, rep, "datapath.runs.0.ruleLists"))
	notes, ok := field(t, rep, "datapath.notes").([]any)
	require.True(t, ok)
	assert.NotEmpty(t, notes)
}

func TestBench(t *testing.T) {
	if os.Geteuid() != 0 {
		rep, _ := runBench(t, tinyBench...)
		checkEngine(t, rep)
		assert.Contains(t, field(t, rep, "backend.skipped"), "needs root")
		assert.Equal(t, "not requested (--datapath)", field(t, rep, "datapath.skipped"))
		t.Skip("the backend and datapath sections need root")
	}
	rep, stderr := runBench(t, append(tinyBench, "--nodes", "100", "--backend", "nftables",
		"--datapath", "--datapath-policies", "0,20", "--datapath-samples", "50", "--datapath-duration", "200ms")...)
	assert.Empty(t, stderr, "progress only with --verbose")
	checkEngine(t, rep)
	checkBackend(t, rep)
	checkDatapath(t, rep)
	assert.NotContains(t, rep["backend"], "skipped")
	assert.NotContains(t, rep["datapath"], "skipped")
}

func TestBenchEngineOnly(t *testing.T) {
	rep, stderr := runBench(t, append(tinyBench, "--backend", "none", "--verbose")...)
	checkEngine(t, rep)
	assert.Equal(t, "--backend none", field(t, rep, "backend.skipped"))
	assert.Equal(t, "not requested (--datapath)", field(t, rep, "datapath.skipped"))
	assert.NotContains(t, rep["backend"], "coldSyncSeconds")
	assert.Contains(t, stderr, "bench: ")
	assert.Contains(t, stderr, "engine: full compile")
}

func TestBenchBinary(t *testing.T) {
	r := netpolctl(t, "bench", "--pods", "50", "--namespaces", "5", "--policies", "6", "--changes", "5", "--backend", "none")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.Greater(t, number(t, rep, "engine.compileSeconds"), 0.0)
	assert.True(t, strings.HasPrefix(r.stdout, "{\n  \""), "pretty JSON")
}

func TestBenchBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--backend", "iptables"}, []string{`--backend "iptables": want nftables or none`}},
		{[]string{"--pods", "0", "--changes", "0"}, []string{"--pods 0", "--changes 0"}},
		{[]string{"--datapath", "--datapath-policies", "-1", "--datapath-samples", "0"}, []string{"--datapath-policies -1", "--datapath-samples 0"}},
		{[]string{"extra"}, []string{"unknown command"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := netpolctl(t, append([]string{"bench"}, tc.args...)...)
			assert.Equal(t, 1, r.code)
			assert.Empty(t, r.stdout)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
		})
	}
}
