package backendtest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/policytest"
)

// RandomConfig sizes RunRandom.
type RandomConfig struct {
	// Seeds are the random clusters to play, one lab run each.
	Seeds []uint64
	// Steps per cluster (each one to three random changes); default 4.
	Steps int
	// Nodes, DualStack and Topology shape the lab; default 1 node, IPv4,
	// routed pods.
	Nodes     int
	DualStack bool
	Topology  lab.Topology
}

// RandomConfigs returns the random-cluster runs a backend's tests play:
// 20 seeds on one node (IPv4) and 20 on two (dual-stack), on routed pods
// and on bridged pods. Each run has seeds of its own, so no two play the
// same cluster.
func RandomConfigs() []RandomConfig {
	return []RandomConfig{
		{Seeds: SeedRange(1, 20), Nodes: 1, Topology: lab.Routed},
		{Seeds: SeedRange(101, 20), Nodes: 2, DualStack: true, Topology: lab.Routed},
		{Seeds: SeedRange(201, 20), Nodes: 1, Topology: lab.Bridge},
		{Seeds: SeedRange(301, 20), Nodes: 2, DualStack: true, Topology: lab.Bridge},
	}
}

// Name describes the run's lab: "routed/nodes=1/dual=false".
func (c RandomConfig) Name() string {
	topo := c.Topology
	if topo == "" {
		topo = lab.Routed
	}
	return fmt.Sprintf("%s/nodes=%d/dual=%v", topo, max(c.Nodes, 1), c.DualStack)
}

// SeedRange returns the n seeds from, from+1, … for RandomConfig.Seeds.
func SeedRange(from uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = from + uint64(i)
	}
	return out
}

// randomProbes are the ports and protocols every flow is probed on.
var randomProbes = []struct {
	proto lab.Protocol
	port  uint16
}{{lab.TCP, 80}, {lab.TCP, 81}, {lab.UDP, 80}, {lab.SCTP, 81}}

// RunRandom plays random clusters and random changes (policies, pod and
// namespace labels) through the backend in a lab, as deltas, and compares
// every flow (each pod pair, and to and from addresses outside the cluster)
// with the memory backend.
func RunRandom(t *testing.T, newBackend Factory, cfg RandomConfig) {
	if os.Geteuid() != 0 {
		t.Skip("backendtest needs root: it creates network namespaces and programs packet filters in them")
	}
	if cfg.Steps == 0 {
		cfg.Steps = 4
	}
	for _, seed := range cfg.Seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runRandom(t, newBackend, cfg, seed)
		})
	}
}

func runRandom(t *testing.T, newBackend Factory, cfg RandomConfig, seed uint64) {
	ctx := context.Background()
	nodes := max(cfg.Nodes, 1)
	gen := policytest.NewRandom(seed, nodes, cfg.DualStack)
	cur := gen.Cluster()

	l, err := lab.New(ctx, lab.Config{Nodes: nodes, Topology: cfg.Topology})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	defer l.Close()
	for _, p := range cur.Pods() {
		name := p.Namespace + "/" + p.Name
		if err := l.AddPod(ctx, lab.PodSpec{Name: name, Node: nodeIndex(p.Spec.NodeName), IPs: cur.PodIPs(p.Namespace, p.Name)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ip := range policytest.RandomExternals {
		if err := l.AddExternal(ctx, ip); err != nil {
			t.Fatal(err)
		}
	}

	var engines []policy.Engine
	var backends []backend.Backend
	for i := range nodes {
		ns, err := l.NodeNS(i)
		if err != nil {
			t.Fatal(err)
		}
		be, err := newBackend(t, i, ns)
		if err != nil {
			t.Fatal(err)
		}
		defer be.Cleanup(context.Background())
		e := policy.New(policy.Config{NodeName: NodeName(i)})
		if err := policytest.Load(e, nil, cur); err != nil {
			t.Fatal(err)
		}
		if _, err := be.Sync(ctx, e.Checkpoint()); err != nil {
			t.Fatal(err)
		}
		engines, backends = append(engines, e), append(backends, be)
	}
	ref := policy.New(policy.Config{})
	if err := policytest.Load(ref, nil, cur); err != nil {
		t.Fatal(err)
	}
	mem := memory.New(memory.Config{})
	if _, err := mem.Sync(ctx, ref.Checkpoint()); err != nil {
		t.Fatal(err)
	}

	var history []string
	for step := 0; step <= cfg.Steps; step++ {
		if step > 0 {
			next := cur.Clone()
			gen.Mutate(next)
			for _, ch := range policytest.Changes(cur, next) {
				history = append(history, fmt.Sprintf("step %d: %s", step, ch))
			}
			for i, e := range engines {
				if err := policytest.Load(e, cur, next); err != nil {
					t.Fatal(err)
				}
				if err := backends[i].Apply(ctx, e.Delta()); err != nil {
					t.Fatalf("step %d: node %d: Apply: %v", step, i, err)
				}
			}
			if err := policytest.Load(ref, cur, next); err != nil {
				t.Fatal(err)
			}
			if err := mem.Apply(ctx, ref.Delta()); err != nil {
				t.Fatal(err)
			}
			// Policy decides new connections: drop what earlier probes left.
			if err := l.ForgetConnections(); err != nil {
				t.Fatal(err)
			}
			cur = next
		}
		if !compareRandom(t, ctx, l, mem, cur, step) {
			t.Fatalf("seed %d step %d: the kernel differs from the memory backend (see above); changes so far:\n%s\npolicies now:\n%s",
				seed, step, strings.Join(history, "\n"), describePolicies(cur))
		}
	}
}

type randomFlow struct {
	from, to string
	src, dst netip.Addr
	proto    lab.Protocol
	port     uint16
}

// compareRandom probes every flow of the cluster and reports whether the
// lab agrees with the memory backend.
func compareRandom(t *testing.T, ctx context.Context, l *lab.Lab, mem *memory.Backend, c *policytest.Cluster, step int) bool {
	t.Helper()
	var fl []randomFlow
	pods := c.Pods()
	for _, sp := range pods {
		srcIPs := c.PodIPs(sp.Namespace, sp.Name)
		from := sp.Namespace + "/" + sp.Name
		for _, dp := range pods {
			dst, ok := c.PodIP(dp.Namespace, dp.Name, policytest.FamilyOf(srcIPs[0]))
			if !ok {
				continue
			}
			fl = append(fl, randomFlow{from: from, to: dp.Namespace + "/" + dp.Name, src: srcIPs[0], dst: dst})
		}
		for _, ext := range policytest.RandomExternals {
			for _, ip := range srcIPs {
				if ip.Is4() == ext.Is4() {
					fl = append(fl, randomFlow{from: from, to: ext.String(), src: ip, dst: ext})
					fl = append(fl, randomFlow{from: ext.String(), to: from, src: ext, dst: ip})
				}
			}
		}
	}
	var all []randomFlow
	var probes []lab.Probe
	for _, f := range fl {
		for _, p := range randomProbes {
			f.proto, f.port = p.proto, p.port
			all = append(all, f)
			probes = append(probes, lab.Probe{Src: f.from, Dst: f.dst, Port: f.port, Protocol: f.proto})
		}
	}
	want := make([]bool, len(all))
	for i, f := range all {
		proto, _ := ir.ParseProtocol(string(f.proto))
		want[i] = mem.Evaluate(memory.Flow{Src: f.src, Dst: f.dst, Protocol: proto, Port: f.port}).Allowed
	}
	results := probeRetrying(ctx, l, probes, func(i int) bool { return want[i] })
	ok := true
	for i, f := range all {
		r := results[i]
		if r.Err != nil {
			t.Fatalf("probe %v: %v", r.Probe, r.Err)
		}
		if r.Connected != want[i] {
			ok = false
			proto, _ := ir.ParseProtocol(string(f.proto))
			v := mem.Evaluate(memory.Flow{Src: f.src, Dst: f.dst, Protocol: proto, Port: f.port})
			t.Errorf("step %d: %s -> %s (%s -> %s) %s/%d: kernel %v (%s), memory %v (egress %s; ingress %s)",
				step, f.from, f.to, f.src, f.dst, f.proto, f.port, r.Connected, r.Detail, want[i], v.Egress, v.Ingress)
		}
	}
	return ok
}

func nodeIndex(node string) int {
	var i int
	fmt.Sscanf(node, "node-%d", &i)
	return i
}

func describePolicies(c *policytest.Cluster) string {
	var b strings.Builder
	for _, np := range c.Policies() {
		fmt.Fprintf(&b, "%s/%s: %+v\n", np.Namespace, np.Name, np.Spec)
	}
	for _, p := range c.Pods() {
		fmt.Fprintf(&b, "pod %s/%s labels %v ports %v node %s\n", p.Namespace, p.Name, p.Labels, p.Spec.Containers[0].Ports, p.Spec.NodeName)
	}
	for _, ns := range c.Namespaces() {
		fmt.Fprintf(&b, "namespace %s labels %v\n", ns.Name, ns.Labels)
	}
	return b.String()
}
