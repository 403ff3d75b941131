package sim_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/policy"
)

const demo = "../../demo"

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

// checkingProber wraps MemoryProber and fails the test when it is handed a
// flow that cannot be sent.
type checkingProber struct {
	t        *testing.T
	inner    sim.MemoryProber
	prepared []string
}

func (p *checkingProber) Prepare(ctx context.Context, st sim.Step) error {
	p.prepared = append(p.prepared, st.Name)
	return p.inner.Prepare(ctx, st)
}

func (p *checkingProber) Probe(ctx context.Context, st sim.Step, fl []flows.Resolved) ([]sim.Result, error) {
	for _, f := range fl {
		if f.Absent != "" {
			p.t.Errorf("step %d: flow on line %d passed to the prober although absent (%s)", st.Index, f.Line, f.Absent)
		}
	}
	return p.inner.Probe(ctx, st, fl)
}

// run loads in and runs it with the memory backend, returning the results
// of every step and the warnings.
func run(t *testing.T, in sim.Input) ([][]sim.Result, []string, error) {
	t.Helper()
	steps, fl, err := in.Load()
	if err != nil {
		return nil, nil, err
	}
	mem := memory.New(memory.Config{})
	pr := &checkingProber{t: t, inner: sim.MemoryProber{Backend: mem}}
	var out [][]sim.Result
	var warnings []string
	err = sim.Run(context.Background(), in, steps, fl, []sim.Node{{Engine: policy.New(policy.Config{}), Backend: mem}}, pr,
		func(msg string) { warnings = append(warnings, msg) },
		func(rs []sim.Result) error { out = append(out, rs); return nil })
	if err == nil {
		var names []string
		for _, s := range steps {
			names = append(names, s.Name)
		}
		assert.Equal(t, names, pr.prepared, "Prepare once per step, in order")
	}
	return out, warnings, err
}

// find returns the result of the flow src → dst port in rs.
func find(t *testing.T, rs []sim.Result, src, dst string, port uint16) sim.Result {
	t.Helper()
	for _, r := range rs {
		if r.Src == src && r.Dst == dst && r.Port == port {
			return r
		}
	}
	t.Fatalf("no result for %s -> %s %d", src, dst, port)
	return sim.Result{}
}

func TestRunSteps(t *testing.T) {
	out, warnings, err := run(t, sim.Input{StepsDir: demo + "/steps", FlowsFile: demo + "/flows.txt"})
	require.NoError(t, err)
	assert.Empty(t, warnings)
	require.Len(t, out, 3)
	fl, err := flows.ReadFile(demo + "/flows.txt")
	require.NoError(t, err)
	for step, rs := range out {
		require.Len(t, rs, len(fl))
		for i, r := range rs {
			assert.Equal(t, step, r.Step)
			assert.Equal(t, fl[i].Src.String(), r.Src, "input order")
			assert.Equal(t, fl[i].Dst.String(), r.Dst, "input order")
			assert.Contains(t, []string{sim.Allow, sim.Deny}, r.Verdict)
		}
	}
	web3 := []string{sim.Deny, sim.Allow, sim.Allow}
	web1 := []string{sim.Allow, sim.Allow, sim.Deny}
	for step := range 3 {
		r := find(t, out[step], "shop/web-3", "shop/db-0", 6379)
		assert.Equal(t, web3[step], r.Verdict, "web-3 at step %d", step)
		if step == 0 {
			assert.Equal(t, "source pod shop/web-3 does not exist", r.Reason)
			assert.Empty(t, r.SrcIP)
		} else {
			assert.Equal(t, "10.244.1.13", r.SrcIP)
			assert.Equal(t, "10.244.2.31", r.DstIP)
		}
		assert.Equal(t, web1[step], find(t, out[step], "shop/web-1", "shop/db-0", 6379).Verdict, "web-1 at step %d", step)
	}
	r := find(t, out[2], "shop/web-1", "shop/db-0", 6379)
	assert.Equal(t, "denied (isolated by NetworkPolicy, no rule matched)", r.Ingress)
	assert.Equal(t, "allowed by NetworkPolicy/shop/app-egress rule 0", r.Egress, "web-1 keeps tier=app")
}

func TestRunFiles(t *testing.T) {
	out, _, err := run(t, sim.Input{Files: []string{demo + "/cluster.yaml", demo + "/policies.yaml"}, FlowsFile: demo + "/flows.txt"})
	require.NoError(t, err)
	require.Len(t, out, 1)
	r := find(t, out[0], "shop/web-1", "shop/db-0", 6379)
	assert.Equal(t, sim.Result{
		Step: 0, Src: "shop/web-1", Dst: "shop/db-0", Port: 6379, Protocol: "TCP", Verdict: sim.Allow,
		SrcIP: "10.244.1.11", DstIP: "10.244.2.31",
		Egress:  "allowed by NetworkPolicy/shop/app-egress rule 0",
		Ingress: "allowed by NetworkPolicy/shop/db-from-frontend rule 0",
	}, r)
	assert.Equal(t, sim.Deny, find(t, out[0], "shop/api-1", "shop/db-0", 6379).Verdict)
	assert.Equal(t, sim.Deny, find(t, out[0], "analytics/report-1", "shop/db-0", 6379).Verdict)
	v6 := find(t, out[0], "fd00:244:1::11", "shop/db-0", 6379)
	assert.Equal(t, sim.Allow, v6.Verdict)
	assert.Equal(t, "fd00:244:2::31", v6.DstIP)
}

const badPolicyCluster = `apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: other}
status: {phase: Running, podIP: 10.0.0.3}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: x}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/33}
    - podSelector: {}
`

func TestRunInvalidPolicy(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cluster.yaml": badPolicyCluster,
		"flows.txt":    "x/a x/b 80 TCP\nx/b x/a 80 TCP\nother/c x/a 80 TCP\n",
	})
	in := sim.Input{Files: []string{filepath.Join(dir, "cluster.yaml")}, FlowsFile: filepath.Join(dir, "flows.txt")}
	out, warnings, err := run(t, in)
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	for _, w := range []string{"warning: ", filepath.Join(dir, "cluster.yaml") + "#4", "NetworkPolicy x/bad", "spec.ingress[0].from[0].ipBlock.cidr", "isolates"} {
		assert.Contains(t, warnings[0], w)
	}
	require.Len(t, out, 1)
	assert.Equal(t, []string{sim.Deny, sim.Allow, sim.Allow}, []string{out[0][0].Verdict, out[0][1].Verdict, out[0][2].Verdict},
		"the bad policy isolates x/b and allows nothing, not even from its valid peer")

	in.Strict = true
	_, _, err = run(t, in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NetworkPolicy x/bad")
	assert.Contains(t, err.Error(), "spec.ingress[0].from[0].ipBlock.cidr")
}

func TestRunBadPod(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cluster.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nstatus: {phase: Running, podIP: 10.0.0.300}\n",
		"flows.txt":    "x/a x/a 80 TCP\n",
	})
	_, _, err := run(t, sim.Input{Files: []string{filepath.Join(dir, "cluster.yaml")}, FlowsFile: filepath.Join(dir, "flows.txt")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "cluster.yaml")+"#1")
	assert.Contains(t, err.Error(), "x/a")
}

func TestRunEmitError(t *testing.T) {
	in := sim.Input{StepsDir: demo + "/steps", FlowsFile: demo + "/flows.txt"}
	steps, fl, err := in.Load()
	require.NoError(t, err)
	mem := memory.New(memory.Config{})
	boom := errors.New("boom")
	calls := 0
	err = sim.Run(context.Background(), in, steps, fl, []sim.Node{{Engine: policy.New(policy.Config{}), Backend: mem}}, sim.MemoryProber{Backend: mem},
		func(string) {}, func([]sim.Result) error { calls++; return boom })
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 1, calls, "Run stops at the first emit error")
}

func TestLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"steps/10.yaml":        "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
		"steps/02.yml":         "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
		"steps/05/x.yaml":      "apiVersion: v1\nkind: Namespace\nmetadata: {name: d}\n",
		"steps/README.md":      "ignored",
		"badsteps/00.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
		"badsteps/01.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, bogus: 1}\n",
		"emptysteps/notes.txt": "",
		"flows.txt":            "a/b c/d 80 TCP\n",
		"badflows.txt":         "a/b c/d 80 TCP\na/b c/d 0 TCP\n",
	})
	flowsFile := filepath.Join(dir, "flows.txt")

	steps, fl, err := sim.Input{StepsDir: filepath.Join(dir, "steps"), FlowsFile: flowsFile}.Load()
	require.NoError(t, err)
	require.Len(t, fl, 1)
	var names []string
	for i, s := range steps {
		assert.Equal(t, i, s.Index)
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{"02.yml", "05", "10.yaml"}, names, "lexical order; a directory is a step")
	assert.Equal(t, "d", steps[1].State.Namespaces[0].Name)

	tests := []struct {
		name string
		in   sim.Input
		want string
	}{
		{"both -f and --steps", sim.Input{Files: []string{flowsFile}, StepsDir: dir, FlowsFile: flowsFile}, "give either -f or --steps, not both"},
		{"no input", sim.Input{FlowsFile: flowsFile}, "no input: give -f PATH or --steps DIR"},
		{"no flows", sim.Input{StepsDir: filepath.Join(dir, "steps")}, "no flows: give --flows FILE"},
		{"missing flows file", sim.Input{StepsDir: filepath.Join(dir, "steps"), FlowsFile: filepath.Join(dir, "nope.txt")}, "nope.txt"},
		{"bad flow line", sim.Input{StepsDir: filepath.Join(dir, "steps"), FlowsFile: filepath.Join(dir, "badflows.txt")}, "badflows.txt:2: PORT"},
		{"missing steps dir", sim.Input{StepsDir: filepath.Join(dir, "nope"), FlowsFile: flowsFile}, "nope"},
		{"no steps", sim.Input{StepsDir: filepath.Join(dir, "emptysteps"), FlowsFile: flowsFile}, "emptysteps: no steps"},
		{"bad step", sim.Input{StepsDir: filepath.Join(dir, "badsteps"), FlowsFile: flowsFile}, filepath.Join(dir, "badsteps", "01.yaml") + "#1: Namespace a"},
		{"missing file", sim.Input{Files: []string{filepath.Join(dir, "gone.yaml")}, FlowsFile: flowsFile}, "gone.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.in.Load()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNodeLocal(t *testing.T) {
	pod := func(node string, host bool) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{NodeName: node, HostNetwork: host}}
	}
	tests := []struct {
		name     string
		src, dst *corev1.Pod
		want     bool
	}{
		{"hostNetwork to pod on its node", pod("n1", true), pod("n1", false), true},
		{"hostNetwork to pod on another node", pod("n1", true), pod("n2", false), false},
		{"hostNetwork without a node", pod("", true), pod("", false), false},
		{"pod to pod", pod("n1", false), pod("n1", false), false},
		{"hostNetwork to hostNetwork", pod("n1", true), pod("n1", true), false},
		{"hostNetwork to an address", pod("n1", true), nil, false},
		{"address to pod", nil, pod("n1", false), false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, sim.NodeLocal(flows.Resolved{SrcPod: tc.src, DstPod: tc.dst}), tc.name)
	}
}

func TestMemoryProberNodeLocal(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cluster.yaml": `apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: kube-system}
spec: {nodeName: n1, hostNetwork: true}
status: {phase: Running, podIP: 192.168.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
spec: {nodeName: n1}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x}
spec: {nodeName: n2}
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}}
`,
		"flows.txt": "kube-system/agent x/a 8080 TCP\nkube-system/agent x/b 8080 TCP\n",
	})
	out, _, err := run(t, sim.Input{Files: []string{filepath.Join(dir, "cluster.yaml")}, FlowsFile: filepath.Join(dir, "flows.txt")})
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, sim.Allow, out[0][0].Verdict, "node to its local pod")
	assert.Contains(t, out[0][0].Reason, "always allowed")
	assert.Equal(t, sim.Deny, out[0][1].Verdict, "a pod on another node is isolated")
}

// Two pods reporting one address: a warning says which owns it, and flows
// to either name reach the owner's policy.
func TestRunSharedAddress(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cluster.yaml": `apiVersion: v1
kind: Pod
metadata: {name: old, namespace: x, labels: {role: db}, creationTimestamp: "2026-01-01T00:00:00Z"}
status: {phase: Running, podIP: 10.0.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: new, namespace: x, labels: {role: web}, creationTimestamp: "2026-01-01T00:01:00Z"}
status: {phase: Running, podIP: 10.0.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: x}
status: {phase: Running, podIP: 10.0.0.9}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: x}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Ingress]
`,
		"flows.txt": "x/client x/old 80 TCP\nx/client x/new 80 TCP\n",
	})
	out, warnings, err := run(t, sim.Input{Files: []string{filepath.Join(dir, "cluster.yaml")}, FlowsFile: filepath.Join(dir, "flows.txt")})
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	for _, w := range []string{"warning: ", "10.0.0.5", "x/new", "x/old", "it is x/new's"} {
		assert.Contains(t, warnings[0], w)
	}
	require.Len(t, out, 1)
	assert.Equal(t, []string{sim.Allow, sim.Allow}, []string{out[0][0].Verdict, out[0][1].Verdict},
		"10.0.0.5 is x/new's, which no policy isolates: the db policy of x/old does not apply to it")
}

// ifaceProber "creates" each step's pods in Prepare, as the lab does: their
// interface names are known only from then on.
type ifaceProber struct {
	sim.MemoryProber
	mu      sync.Mutex
	created map[string]string
}

func (p *ifaceProber) Prepare(ctx context.Context, st sim.Step) error {
	p.mu.Lock()
	for _, pod := range st.State.Pods {
		id := pod.Namespace + "/" + pod.Name
		if _, ok := p.created[id]; !ok {
			p.created[id] = fmt.Sprintf("pod%d", len(p.created))
		}
	}
	p.mu.Unlock()
	return p.MemoryProber.Prepare(ctx, st)
}

func (p *ifaceProber) lookup(podID string, _ []netip.Addr) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.created[podID]
}

// Interfaces that appear in Prepare (the lab's veths) reach the backend
// before the step's flows are probed, at every step.
func TestRunLearnsInterfacesAfterPrepare(t *testing.T) {
	in := sim.Input{StepsDir: demo + "/steps", FlowsFile: demo + "/flows.txt"}
	steps, fl, err := in.Load()
	require.NoError(t, err)
	mem := memory.New(memory.Config{})
	pr := &ifaceProber{MemoryProber: sim.MemoryProber{Backend: mem}, created: map[string]string{}}
	e := policy.New(policy.Config{Interface: pr.lookup})
	step := 0
	err = sim.Run(context.Background(), in, steps, fl, []sim.Node{{Engine: e, Backend: mem}}, pr, func(string) {},
		func([]sim.Result) error {
			snap := mem.Snapshot()
			require.NotEmpty(t, snap.Endpoints)
			for _, ep := range snap.Endpoints {
				assert.Equal(t, pr.lookup(ep.ID, nil), ep.Interface, "step %d: %s", step, ep.ID)
				assert.NotEmpty(t, ep.Interface, "step %d: %s", step, ep.ID)
			}
			step++
			return nil
		})
	require.NoError(t, err)
	assert.Equal(t, len(steps), step)
}
