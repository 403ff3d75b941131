package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/policytest"
)

// objects is a cluster's content, copied out of a policytest.Cluster once so
// that the timings are of the engine, not of the copies.
type objects struct {
	namespaces []*corev1.Namespace
	pods       []*corev1.Pod
	policies   []*networkingv1.NetworkPolicy
}

func objectsOf(c *policytest.Cluster) objects {
	return objects{c.Namespaces(), c.Pods(), c.Policies()}
}

// generate builds the synthetic cluster and copies its objects out. The
// generator cannot be interrupted: on cancellation generate returns at once
// and leaves it to finish in the background, holding nothing else.
func generate(ctx context.Context, sc policytest.SyntheticConfig, extra func(*policytest.Cluster)) (objects, error) {
	done := make(chan objects, 1)
	go func() {
		c := policytest.Synthetic(sc)
		if extra != nil {
			extra(c)
		}
		done <- objectsOf(c)
	}()
	select {
	case o := <-done:
		return o, nil
	case <-ctx.Done():
		return objects{}, ctx.Err()
	}
}

// withoutPolicies is the same namespaces and pods, no policy.
func (o objects) withoutPolicies() objects {
	return objects{namespaces: o.namespaces, pods: o.pods}
}

// ctxEvery is how many objects load feeds between two looks at the context:
// rare enough to cost nothing measurable, often enough for Ctrl-C.
const ctxEvery = 4096

// load feeds every object to e: namespaces, pods, then policies. A
// validation error is an error here: synthetic objects are all valid.
func (o objects) load(ctx context.Context, e policy.Engine) error {
	n := 0
	tick := func() error {
		n++
		if n%ctxEvery == 0 {
			return ctx.Err()
		}
		return nil
	}
	for _, ns := range o.namespaces {
		e.UpsertNamespace(ns)
		if err := tick(); err != nil {
			return err
		}
	}
	for _, p := range o.pods {
		if err := e.UpsertPod(p); err != nil {
			return fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		if err := tick(); err != nil {
			return err
		}
	}
	for _, np := range o.policies {
		if err := e.UpsertNetworkPolicy(np); err != nil {
			return fmt.Errorf("NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
		if err := tick(); err != nil {
			return err
		}
	}
	return nil
}

// IRCounts sizes a snapshot.
type IRCounts struct {
	Endpoints   int `json:"endpoints"`
	RuleLists   int `json:"ruleLists"`
	Rules       int `json:"rules"`
	AddressSets int `json:"addressSets"`
	// SetMembers is the sum of the address sets' members.
	SetMembers int `json:"setMembers"`
	PortSets   int `json:"portSets"`
	// PortSetMembers is the sum of the named-port sets' members.
	PortSetMembers int `json:"portSetMembers"`
}

func countIR(s *ir.Snapshot) IRCounts {
	c := IRCounts{
		Endpoints:   len(s.Endpoints),
		RuleLists:   len(s.RuleLists),
		AddressSets: len(s.AddressSets),
		PortSets:    len(s.PortSets),
	}
	for _, rl := range s.RuleLists {
		c.Rules += len(rl.Rules)
	}
	for _, as := range s.AddressSets {
		c.SetMembers += len(as.Members)
	}
	for _, ps := range s.PortSets {
		c.PortSetMembers += len(ps.Members)
	}
	return c
}

// compiled is an engine loaded with a whole cluster.
type compiled struct {
	engine  policy.Engine
	elapsed time.Duration // policy.New through the first Snapshot
	counts  IRCounts
	// heap is the live heap the engine holds, heapWithSnap the same with
	// its snapshot; both 0 unless measured.
	heap, heapWithSnap int64
}

// compile loads o into a new engine and takes its snapshot, timing both.
// With measureHeap it also measures the live heap the engine holds (with
// and without the snapshot) against the live heap before, which holds o:
// the input objects are excluded. The snapshot is dropped: a caller that
// needs one takes it again.
func compile(ctx context.Context, cfg policy.Config, o objects, measureHeap bool) (*compiled, error) {
	var before int64
	if measureHeap {
		before = liveHeap()
	}
	start := time.Now()
	e := policy.New(cfg)
	if err := o.load(ctx, e); err != nil {
		return nil, err
	}
	snap := e.Checkpoint() // the first full sync: later deltas start here
	c := &compiled{engine: e, elapsed: time.Since(start), counts: countIR(snap)}
	if measureHeap {
		c.heapWithSnap = max(liveHeap()-before, 0)
		runtime.KeepAlive(snap)
		snap = nil
		c.heap = max(liveHeap()-before, 0)
	}
	runtime.KeepAlive(snap)
	return c, nil
}

// flipper changes one pod's labels back and forth: role frontend ⇄ backend,
// every other label kept. Each call of next returns the pod in the state it
// is not in, so every upsert is a real change.
type flipper struct {
	pods [2]*corev1.Pod // [0] the pod as loaded, [1] with the role flipped
	cur  int
}

// newFlipper flips pod-1 (pod-0 in a one-pod cluster), the pod the Go
// benchmarks change: a peer of its namespace's role=frontend rules and of
// every namespace's "env=prod, role in (backend,worker)" rules.
func newFlipper(o objects) (*flipper, error) {
	name := "pod-1"
	if len(o.pods) < 2 {
		name = "pod-0"
	}
	for _, p := range o.pods {
		if p.Name != name {
			continue
		}
		flipped := p.DeepCopy()
		if flipped.Labels["role"] == "frontend" {
			flipped.Labels["role"] = "backend"
		} else {
			flipped.Labels["role"] = "frontend"
		}
		return &flipper{pods: [2]*corev1.Pod{p, flipped}}, nil
	}
	return nil, fmt.Errorf("no pod %s in the synthetic cluster", name)
}

func (f *flipper) next() *corev1.Pod {
	f.cur ^= 1
	return f.pods[f.cur]
}

func (f *flipper) id() string { return f.pods[0].Namespace + "/" + f.pods[0].Name }

// changeStats are the engine's figures for one-pod label changes.
type changeStats struct {
	durations []time.Duration
	members   int // address-set and port-set members added or removed
	endpoints int // endpoints upserted or removed
}

// engineChanges makes n label changes, timing UpsertPod + Delta of each.
func engineChanges(ctx context.Context, e policy.Engine, f *flipper, n int) (*changeStats, error) {
	st := &changeStats{durations: make([]time.Duration, 0, n)}
	for range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := f.next()
		start := time.Now()
		if err := e.UpsertPod(p); err != nil {
			return nil, err
		}
		d := e.Delta()
		st.durations = append(st.durations, time.Since(start))
		for _, ch := range d.AddressSetChanges {
			st.members += len(ch.Added) + len(ch.Removed)
		}
		for _, ch := range d.PortSetChanges {
			st.members += len(ch.Added) + len(ch.Removed)
		}
		st.endpoints += len(d.Endpoints) + len(d.RemovedEndpoints)
	}
	return st, nil
}

// EngineFigures are the policy engine's figures.
type EngineFigures struct {
	// CompileSeconds: every object loaded into a new engine (every pod
	// local) and its first Snapshot.
	CompileSeconds float64 `json:"compileSeconds"`
	// HeapMiB is the live heap the engine holds after the compile, input
	// objects excluded; HeapWithSnapshotMiB adds its snapshot.
	HeapMiB             float64 `json:"heapMiB"`
	HeapWithSnapshotMiB float64 `json:"heapWithSnapshotMiB"`
	IRCounts
	// NodeViewCompileSeconds is the same compile for one node's agent
	// (Config{NodeName: "node-0"}), with NodeViewEndpoints local pods.
	NodeViewCompileSeconds float64 `json:"nodeViewCompileSeconds"`
	NodeViewEndpoints      int     `json:"nodeViewEndpoints"`
	// Baseline is the same namespaces and pods with no policy.
	Baseline EngineBaseline `json:"baseline"`
	// PodChange is one pod's labels changed, UpsertPod + Delta.
	PodChange EnginePodChange `json:"podChange"`
}

// EngineBaseline is the compile of the cluster without its policies.
type EngineBaseline struct {
	CompileSeconds      float64 `json:"compileSeconds"`
	HeapMiB             float64 `json:"heapMiB"`
	HeapWithSnapshotMiB float64 `json:"heapWithSnapshotMiB"`
	IRCounts
}

// EnginePodChange times one-pod label changes.
type EnginePodChange struct {
	// Pod is the pod whose role label flips frontend ⇄ backend.
	Pod string `json:"pod"`
	Latencies
	// MembersPerChange: address- and port-set members added or removed per
	// change; EndpointsPerChange: endpoints replaced per change.
	MembersPerChange   float64 `json:"membersPerChange"`
	EndpointsPerChange float64 `json:"endpointsPerChange"`
}

// engineRun is what the engine section leaves for the backend section.
type engineRun struct {
	full, baseline policy.Engine
	flip           *flipper
	// perX estimates what one cluster of the configured size costs to
	// generate, compile and snapshot (for sizing the 10x run).
	genElapsed, compileElapsed time.Duration
}

func runEngine(ctx context.Context, cfg Config, progress func(string, ...any)) (*EngineFigures, *engineRun, error) {
	progress("engine: generating %d pods, %d namespaces, %d policies", cfg.Pods, cfg.Namespaces, cfg.Policies)
	start := time.Now()
	o, err := generate(ctx, cfg.synthetic(cfg.Pods, cfg.Policies), nil)
	if err != nil {
		return nil, nil, err
	}
	run := &engineRun{genElapsed: time.Since(start)}
	fig := &EngineFigures{}

	progress("engine: baseline compile (no policy)")
	base, err := compile(ctx, policy.Config{}, o.withoutPolicies(), true)
	if err != nil {
		return nil, nil, fmt.Errorf("engine baseline: %w", err)
	}
	run.baseline = base.engine
	fig.Baseline = EngineBaseline{
		CompileSeconds:      seconds(base.elapsed),
		HeapMiB:             mib(base.heap),
		HeapWithSnapshotMiB: mib(base.heapWithSnap),
		IRCounts:            base.counts,
	}

	progress("engine: full compile")
	full, err := compile(ctx, policy.Config{}, o, true)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	run.full, run.compileElapsed = full.engine, full.elapsed
	fig.CompileSeconds = seconds(full.elapsed)
	fig.HeapMiB = mib(full.heap)
	fig.HeapWithSnapshotMiB = mib(full.heapWithSnap)
	fig.IRCounts = full.counts

	progress("engine: node view compile (node-0)")
	node, err := compile(ctx, policy.Config{NodeName: "node-0"}, o, false)
	if err != nil {
		return nil, nil, fmt.Errorf("engine node view: %w", err)
	}
	fig.NodeViewCompileSeconds = seconds(node.elapsed)
	fig.NodeViewEndpoints = node.counts.Endpoints

	if run.flip, err = newFlipper(o); err != nil {
		return nil, nil, err
	}
	progress("engine: %d one-pod label changes", cfg.Changes)
	st, err := engineChanges(ctx, run.full, run.flip, cfg.Changes)
	if err != nil {
		return nil, nil, fmt.Errorf("engine pod change: %w", err)
	}
	fig.PodChange = EnginePodChange{
		Pod:                run.flip.id(),
		Latencies:          summarise(st.durations),
		MembersPerChange:   round(float64(st.members)/float64(cfg.Changes), 2),
		EndpointsPerChange: round(float64(st.endpoints)/float64(cfg.Changes), 2),
	}
	return fig, run, nil
}
