// Package backendtest is a conformance suite for packet-filter backends,
// ours or a user's. Run builds a lab of network namespaces (package lab),
// programs the backend under test inside each lab node through the policy
// engine, plays the upstream network-policy scenarios, the cluster-wide
// policy scenarios (policytest.ClusterScenarios: Admin, NetworkPolicy and
// Baseline tiers, Pass, priorities) and Palisade's own (label and policy
// changes, dual-stack, ipBlock with except, named ports that differ per pod,
// endPort ranges, SCTP) as incremental deltas, on routed and on bridged pods
// (lab.Routed, lab.Bridge), probes
// every pod pair with real TCP, UDP and SCTP traffic, and compares each
// observed matrix with the scenario's expectation and with the memory
// backend's verdicts. It needs root; without it the tests skip.
// RunSourceValidation checks, in the same kind of lab, that a backend drops
// what a pod sends from an address that is not its own (ir.Endpoint.Interface)
// and nothing else.
//
// Two checks need no lab: RunContract holds a backend to the IR contract
// (it accepts and rejects exactly what ir.CheckDelta does, on the edge cases
// of irtest.ContractCases), and CompareWithMemory is the body of a fuzz
// target that compares a backend's compiled ruleset, traced by a model
// evaluator the backend provides, with the memory backend on any IR.
package backendtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/policytest"
)

// Factory creates the backend under test for lab node i, programming the
// node's network namespace ns. The suite calls Cleanup on it when the
// scenario ends; t's cleanups may release anything else.
type Factory func(t testing.TB, node int, ns netns.NsHandle) (backend.Backend, error)

// Config selects what Run covers. The zero value runs every scenario on one
// and two nodes, IPv4 and dual-stack, routed and bridged pods.
type Config struct {
	// Nodes are the lab sizes to run (1, 2); default both.
	Nodes []int
	// Topologies are how the lab wires pods to nodes (lab.Routed,
	// lab.Bridge); default both.
	Topologies []lab.Topology
	// FamilyModes are the pod address families of the clusters to run;
	// default IPv4 alone and dual-stack.
	FamilyModes [][]policytest.Family
	// Scenarios default to Scenarios().
	Scenarios []policytest.Scenario
	// ProbeTimeout bounds each probe; default the lab's.
	ProbeTimeout time.Duration
}

// Scenarios returns what Run plays by default: the upstream suite, the
// policytest extras, the cluster-wide policy scenarios and this package's
// own.
func Scenarios() []policytest.Scenario {
	out := append(policytest.Scenarios(), policytest.Extras()...)
	out = append(out, policytest.ClusterScenarios()...)
	return append(out, Extras()...)
}

// NodeName is the Kubernetes node name of lab node i.
func NodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// Run runs the suite against the backends newBackend makes.
func Run(t *testing.T, newBackend Factory, cfg Config) {
	if os.Geteuid() != 0 {
		t.Skip("backendtest needs root: it creates network namespaces and programs packet filters in them")
	}
	if len(cfg.Nodes) == 0 {
		cfg.Nodes = []int{1, 2}
	}
	if len(cfg.FamilyModes) == 0 {
		cfg.FamilyModes = [][]policytest.Family{{policytest.IPv4}, {policytest.IPv4, policytest.IPv6}}
	}
	if cfg.Scenarios == nil {
		cfg.Scenarios = Scenarios()
	}
	if len(cfg.Topologies) == 0 {
		cfg.Topologies = []lab.Topology{lab.Routed, lab.Bridge}
	}
	for _, topo := range cfg.Topologies {
		for _, nodes := range cfg.Nodes {
			for _, fams := range cfg.FamilyModes {
				t.Run(fmt.Sprintf("%s/nodes=%d/%v", topo, nodes, fams), func(t *testing.T) {
					// Labs are independent (their own namespaces) and mostly
					// wait for probes that time out: run them side by side.
					t.Parallel()
					runLab(t, newBackend, cfg, topo, nodes, fams)
				})
			}
		}
	}
}

// Placement puts the model's pods on nodes: all on node 0 in a one-node lab;
// alternately on nodes 0 and 1 in a two-node lab, so that every kind of pair
// (same node, across nodes, both directions) occurs.
func Placement(model policytest.Model, nodes int) func(namespace, pod string) string {
	index := map[string]int{}
	for i, name := range model.PodNames() {
		index[name] = i
	}
	return func(namespace, pod string) string {
		return NodeName(index[namespace+"/"+pod] % nodes)
	}
}

func runLab(t *testing.T, newBackend Factory, cfg Config, topo lab.Topology, nodes int, fams []policytest.Family) {
	ctx := context.Background()
	l, err := lab.New(ctx, lab.Config{Nodes: nodes, ProbeTimeout: cfg.ProbeTimeout, Topology: topo})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	model := policytest.StandardModel(fams...)
	model.Node = Placement(model, nodes)
	base, err := model.Cluster()
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range model.PodNames() {
		ns, pod, _ := strings.Cut(name, "/")
		if err := l.AddPod(ctx, lab.PodSpec{Name: name, Node: i % nodes, IPs: base.PodIPs(ns, pod)}); err != nil {
			t.Fatalf("lab pod %s: %v", name, err)
		}
	}
	for _, sc := range cfg.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			h := &harness{t: t, lab: l, model: model, nodes: nodes}
			h.run(ctx, newBackend, base, sc)
		})
	}
}

// probeRetries is how many more times a probe that saw no answer where one
// was expected is made before it counts: a lost packet, or a server not
// scheduled within the probe timeout on a loaded machine, is not a verdict.
const probeRetries = 2

// probeRetrying probes ps and probes again, up to probeRetries times, those
// that did not connect although expected(i) says they should. A connection
// that should not have succeeded is never retried.
func probeRetrying(ctx context.Context, l *lab.Lab, ps []lab.Probe, expected func(i int) bool) []lab.Result {
	results := l.Probe(ctx, ps)
	for range probeRetries {
		var again []int
		for i, r := range results {
			if r.Err == nil && !r.Connected && expected(i) {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		retry := make([]lab.Probe, len(again))
		for k, i := range again {
			retry[k] = ps[i]
		}
		for k, r := range l.Probe(ctx, retry) {
			results[again[k]] = r
		}
	}
	return results
}

// harness runs one scenario: an engine and a backend per lab node, and a
// memory backend with every pod local as the model.
type harness struct {
	t     *testing.T
	lab   *lab.Lab
	model policytest.Model
	nodes int

	engines  []policy.Engine
	backends []backend.Backend
	ref      policy.Engine
	mem      *memory.Backend
}

func (h *harness) run(ctx context.Context, newBackend Factory, base *policytest.Cluster, sc policytest.Scenario) {
	t := h.t
	for i := range h.nodes {
		ns, err := h.lab.NodeNS(i)
		if err != nil {
			t.Fatal(err)
		}
		be, err := newBackend(t, i, ns)
		if err != nil {
			t.Fatalf("backend for node %d: %v", i, err)
		}
		t.Cleanup(func() {
			if err := be.Cleanup(context.Background()); err != nil {
				t.Errorf("node %d: Cleanup: %v", i, err)
			}
		})
		h.engines = append(h.engines, policy.New(policy.Config{NodeName: NodeName(i)}))
		h.backends = append(h.backends, be)
	}
	h.ref = policy.New(policy.Config{})
	h.mem = memory.New(memory.Config{})

	// The model without policies, programmed with a full Sync.
	for i, e := range h.engines {
		if err := policytest.Load(e, nil, base); err != nil {
			t.Fatal(err)
		}
		if _, err := h.backends[i].Sync(ctx, e.Checkpoint()); err != nil {
			t.Fatalf("node %d: Sync: %v", i, err)
		}
	}
	if err := policytest.Load(h.ref, nil, base); err != nil {
		t.Fatal(err)
	}
	if _, err := h.mem.Sync(ctx, h.ref.Checkpoint()); err != nil {
		t.Fatal(err)
	}

	cur := base
	for si, step := range sc.Steps {
		next := cur.Clone()
		if step.Mutate != nil {
			step.Mutate(next)
		}
		label := fmt.Sprintf("step %d (%s)", si+1, step.Name)
		// The incremental path: each node's engine gets the changes, each
		// backend the delta.
		for i, e := range h.engines {
			if err := policytest.Load(e, cur, next); err != nil {
				t.Fatalf("%s: node %d: %v", label, i, err)
			}
			if err := h.backends[i].Apply(ctx, e.Delta()); err != nil {
				t.Fatalf("%s: node %d: Apply: %v", label, i, err)
			}
		}
		if err := policytest.Load(h.ref, cur, next); err != nil {
			t.Fatal(err)
		}
		if err := h.mem.Apply(ctx, h.ref.Delta()); err != nil {
			t.Fatal(err)
		}
		// Policy decides new connections: drop what earlier probes left.
		if err := h.lab.ForgetConnections(); err != nil {
			t.Fatal(err)
		}
		for _, check := range step.Checks {
			for _, fam := range check.Families(h.model.Families) {
				h.check(ctx, label, next, check, fam)
			}
		}
		cur = next
	}
}

// check probes every pod pair for one check and family and compares the
// observed matrix with the expected one and with the memory backend.
func (h *harness) check(ctx context.Context, label string, c *policytest.Cluster, check policytest.Check, fam policytest.Family) {
	t := h.t
	pods := h.model.PodNames()
	proto, ok := ir.ParseProtocol(string(check.Protocol))
	if !ok {
		t.Fatalf("%s: protocol %q", label, check.Protocol)
	}
	// Collect the pairs that have addresses in fam, probe them in parallel,
	// then fill the observed matrix and the memory backend's.
	var flows []policytest.Flow
	policytest.Observe(c, pods, fam, check.Protocol, check.Port, func(f policytest.Flow) bool {
		flows = append(flows, f)
		return false
	})
	probes := make([]lab.Probe, len(flows))
	for i, f := range flows {
		probes[i] = lab.Probe{Src: f.From, Dst: f.Dst, Port: uint16(check.Port), Protocol: lab.Protocol(check.Protocol)}
	}
	// Expected by the scenario or by the memory backend (a pod to itself is
	// always allowed, whatever the scenario's matrix says).
	verdicts := make([]bool, len(flows))
	for i, f := range flows {
		verdicts[i] = h.mem.Evaluate(memory.Flow{Src: f.Src, Dst: f.Dst, Protocol: proto, Port: uint16(check.Port)}).Allowed
	}
	results := probeRetrying(ctx, h.lab, probes, func(i int) bool {
		return verdicts[i] || check.Expected.Allowed(flows[i].From, flows[i].To)
	})
	observed := policytest.NewReachability(pods, false)
	model := policytest.NewReachability(pods, false)
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("%s: probe %s: %v", label, flows[i], r.Err)
		}
		observed.Expect(flows[i].From, flows[i].To, r.Connected)
		model.Expect(flows[i].From, flows[i].To, verdicts[i])
	}
	name := fmt.Sprintf("%s %s %s", label, check, fam)
	if cmp := policytest.Compare(check.Expected, observed, policytest.CompareOptions{LoopbackAllowed: true}); !cmp.OK() {
		t.Errorf("%s: the kernel differs from the scenario's expectation:\n%s", name, cmp)
	}
	if cmp := policytest.Compare(model, observed, policytest.CompareOptions{}); !cmp.OK() {
		t.Errorf("%s: the kernel differs from the memory backend:\n%s", name, cmp)
	}
}
