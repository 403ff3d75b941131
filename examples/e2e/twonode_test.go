package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/examples/e2e/cluster"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

// Bounds. Convergence is polled against generous deadlines (a loaded 2-core
// machine running -race), never timed against a target: latencies are
// logged, not asserted.
const (
	labProbeTimeout = 200 * time.Millisecond
	convergeBound   = 30 * time.Second
	// After an API server restart, client-go's reflectors reconnect with
	// backoff; give them long.
	reconnectBound = 90 * time.Second
	// termBound: an agent given SIGTERM exits within it, whatever the API
	// server does (the DaemonSet's grace period is 30 s; SIGKILL follows).
	termBound = 5 * time.Second
)

// twoNodes is the shared fixture of TestTwoNodes: one control plane, a
// two-node lab holding the standard model's nine pods (x/a … z/c) spread
// over both nodes, and one node agent per lab node.
type twoNodes struct {
	t      *testing.T
	ctx    context.Context
	c      *cluster.Cluster
	admin  kubernetes.Interface
	l      *lab.Lab
	bin    string
	model  pt.Model
	base   *pt.Cluster // the model without policies
	cur    *pt.Cluster // what the API server holds (namespaces, pods, policies)
	agents [2]*cluster.Agent
	nsFd   [2]int
}

func nodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// spreadNode puts x/a, x/c, y/b, z/a, z/c on node-0 and the rest on node-1.
func spreadNode(namespace, pod string) int {
	ni := strings.Index("xyz", namespace)
	pi := strings.Index("abc", pod)
	return (ni + pi) % 2
}

// TestTwoNodes runs two node agents (one per lab node) against one API
// server and checks the whole pod-to-pod matrix through the kernel after
// API changes (upstream scenarios), a burst of 1,000 changes, agent
// restarts, an API server outage, and measures enforcement latency.
func TestTwoNodes(t *testing.T) {
	cluster.Skip(t, cluster.Options{})
	bin := cluster.BuildNodeAgent(t)
	c := cluster.Start(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if _, err := c.ApplyRBAC(ctx, rbacPaths...); err != nil {
		t.Fatalf("ApplyRBAC: %v", err)
	}
	l, err := lab.New(ctx, lab.Config{Nodes: 2, ProbeTimeout: labProbeTimeout})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })

	model := pt.StandardModel()
	model.Node = func(ns, pod string) string { return nodeName(spreadNode(ns, pod)) }
	base, err := model.Cluster()
	if err != nil {
		t.Fatal(err)
	}
	e := &twoNodes{t: t, ctx: ctx, c: c, admin: c.AdminClient(), l: l, bin: bin, model: model,
		base: base, cur: pt.NewCluster()}
	for _, p := range base.Pods() {
		if err := l.AddPod(ctx, lab.PodSpec{Name: p.Namespace + "/" + p.Name,
			Node: spreadNode(p.Namespace, p.Name), IPs: base.PodIPs(p.Namespace, p.Name)}); err != nil {
			t.Fatalf("lab pod %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
	e.apply(base)
	for i := range e.agents {
		h, err := l.NodeNS(i)
		if err != nil {
			t.Fatal(err)
		}
		e.nsFd[i] = int(h)
		e.startAgent(i)
	}
	e.waitMatrix("no policy", allAllowed(), 80, convergeBound)

	// Order matters only in that the outage goes last (it restarts the
	// API server); each subtest leaves the cluster as the model, no policy.
	t.Run("Scenarios", e.testScenarios)
	t.Run("Burst", e.testBurst)
	t.Run("Latency", e.testLatency)
	t.Run("AgentRestart", e.testAgentRestart)
	t.Run("APIServerOutage", e.testAPIServerOutage)
}

func (e *twoNodes) startAgent(i int) {
	e.t.Helper()
	a, err := e.c.StartAgent(e.ctx, e.bin, cluster.AgentOptions{
		NodeName: nodeName(i), NetNSFd: e.nsFd[i], TableName: "palisade_e2e",
		MinSyncInterval: 10 * time.Millisecond,
		ExtraArgs:       []string{"--api-probe-period=500ms", "--api-gate=" + strconv.FormatBool(os.Getenv("PALISADE_E2E_API_GATE") != "off")},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.agents[i] = a
}

// apply writes the difference between what the API server holds (e.cur)
// and next through the API: namespaces' and pods' labels, policies created,
// replaced and deleted.
func (e *twoNodes) apply(next *pt.Cluster) {
	e.t.Helper()
	for _, ch := range pt.Changes(e.cur, next) {
		if err := applyChange(e.ctx, e.admin, ch); err != nil {
			e.t.Fatalf("%s: %v", ch, err)
		}
	}
	e.cur = next.Clone()
}

func applyChange(ctx context.Context, cs kubernetes.Interface, ch pt.Change) error {
	switch {
	case ch.Kind == "Namespace" && ch.Op == pt.Upsert:
		want := ch.Object.(*corev1.Namespace)
		cur, err := cs.CoreV1().Namespaces().Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			n := want.DeepCopy()
			n.ResourceVersion = ""
			_, err = cs.CoreV1().Namespaces().Create(ctx, n, metav1.CreateOptions{})
			return err
		} else if err != nil {
			return err
		}
		cur.Labels = want.Labels
		_, err = cs.CoreV1().Namespaces().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	case ch.Kind == "Pod" && ch.Op == pt.Upsert:
		want := ch.Object.(*corev1.Pod)
		cur, err := cs.CoreV1().Pods(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return createPodWithStatus(ctx, cs, want)
		} else if err != nil {
			return err
		}
		cur.Labels = want.Labels
		_, err = cs.CoreV1().Pods(want.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	case ch.Kind == "Pod" && ch.Op == pt.Delete:
		zero := int64(0)
		return cs.CoreV1().Pods(ch.Namespace).Delete(ctx, ch.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	case ch.Kind == "NetworkPolicy" && ch.Op == pt.Upsert:
		want := ch.Object.(*networkingv1.NetworkPolicy)
		nps := cs.NetworkingV1().NetworkPolicies(want.Namespace)
		cur, err := nps.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			np := want.DeepCopy()
			np.ResourceVersion = ""
			_, err = nps.Create(ctx, np, metav1.CreateOptions{})
			return err
		} else if err != nil {
			return err
		}
		cur.Labels, cur.Spec = want.Labels, want.Spec
		_, err = nps.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	case ch.Kind == "NetworkPolicy" && ch.Op == pt.Delete:
		return cs.NetworkingV1().NetworkPolicies(ch.Namespace).Delete(ctx, ch.Name, metav1.DeleteOptions{})
	case ch.Kind == "Namespace" && ch.Op == pt.Delete:
		return cs.CoreV1().Namespaces().Delete(ctx, ch.Name, metav1.DeleteOptions{})
	}
	return fmt.Errorf("unsupported change")
}

// createPodWithStatus creates p (bound to its node) and then writes its
// status (IPs, phase) as a kubelet would. Containers get a placeholder
// image, which validation requires.
func createPodWithStatus(ctx context.Context, cs kubernetes.Interface, want *corev1.Pod) error {
	p := want.DeepCopy()
	p.ResourceVersion = ""
	status := p.Status
	p.Status = corev1.PodStatus{}
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Image == "" {
			p.Spec.Containers[i].Image = "example.invalid/none"
		}
	}
	created, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if status.Phase == "" {
		status.Phase = corev1.PodRunning
	}
	created.Status = status
	_, err = cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

func allAllowed() *pt.Reachability { return pt.NewReachability(pt.StandardPods(), true) }

// observe probes every ordered pair of the standard pods on port/TCP.
func (e *twoNodes) observe(port int) *pt.Reachability {
	e.t.Helper()
	pods := pt.StandardPods()
	var probes []lab.Probe
	for _, from := range pods {
		for _, to := range pods {
			ns, name, _ := strings.Cut(to, "/")
			ip, _ := e.base.PodIP(ns, name, pt.IPv4)
			probes = append(probes, lab.Probe{Src: from, Dst: ip, Port: uint16(port), Protocol: lab.TCP})
		}
	}
	obs := pt.NewReachability(pods, false)
	for i, r := range e.l.Probe(e.ctx, probes) {
		if r.Err != nil {
			e.t.Fatalf("probe %s → %s: %v", pods[i/len(pods)], pods[i%len(pods)], r.Err)
		}
		obs.Expect(pods[i/len(pods)], pods[i%len(pods)], r.Connected)
	}
	return obs
}

var loopbackAllowed = pt.CompareOptions{LoopbackAllowed: true}

// waitMatrix probes the whole matrix until it matches want or bound passes
// (then the test fails with both grids). It returns how long it took.
func (e *twoNodes) waitMatrix(what string, want *pt.Reachability, port int, bound time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	deadline := start.Add(bound)
	for {
		cmp := pt.Compare(want, e.observe(port), loopbackAllowed)
		if cmp.OK() {
			return time.Since(start)
		}
		if time.Now().After(deadline) || e.ctx.Err() != nil {
			e.t.Fatalf("%s: TCP/%d matrix differs after %v:\n%s", what, port, bound, cmp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkMatrixHolds checks that the matrix equals want now, without
// polling for a change: a pair that connects where want denies fails at
// once; a pair that does not connect where want allows is probed again a
// few times (on a loaded machine a handshake can miss the probe timeout).
func (e *twoNodes) checkMatrixHolds(what string, want *pt.Reachability, port int) {
	e.t.Helper()
	obs := e.observe(port)
	for _, from := range want.Pods() {
		for _, to := range want.Pods() {
			w := want.Allowed(from, to) || from == to
			if obs.Allowed(from, to) && !w {
				e.t.Errorf("%s: %s → %s connected, want denied", what, from, to)
			}
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		cmp := pt.Compare(want, obs, loopbackAllowed)
		if cmp.OK() {
			return
		}
		if attempt == 4 {
			e.t.Errorf("%s: matrix differs:\n%s", what, cmp)
			return
		}
		time.Sleep(100 * time.Millisecond)
		obs = e.observe(port)
	}
}

// reset brings the API server back to the model without policies and
// waits for the matrix to open.
func (e *twoNodes) reset(what string) {
	e.t.Helper()
	e.apply(e.base)
	e.waitMatrix(what+": reset to no policy", allAllowed(), 80, convergeBound)
}

// testScenarios replays upstream scenarios through the API server: each
// step's objects are written (namespace and pod label updates, policy
// create/update/delete) and every TCP matrix the step checks is polled
// until it matches the scenario's expectation.
func (e *twoNodes) testScenarios(t *testing.T) {
	names := []string{
		"ingress-from-updated-pod",       // pod label update
		"ingress-from-updated-namespace", // namespace label update
		"updated-policy",                 // policy update
		"policy-deletion",                // policy delete
		"deny-ingress-to-updated-pod",    // pod label update isolating a pod
		"ingress-and-egress-together",    // egress and ingress across nodes
		"egress-to-cidr-except",          // ipBlock with except
	}
	all := map[string]pt.Scenario{}
	for _, s := range pt.Scenarios() {
		all[s.Name] = s
	}
	for _, name := range names {
		s, ok := all[name]
		if !ok {
			t.Errorf("scenario %s not in policytest.Scenarios()", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			e.t = t
			defer e.reset(name)
			for _, st := range s.Steps {
				next := e.cur.Clone()
				if st.Mutate != nil {
					st.Mutate(next)
				}
				changes := pt.Changes(e.cur, next)
				e.apply(next)
				for _, chk := range st.Checks {
					if chk.Protocol != corev1.ProtocolTCP || (chk.Family != "" && chk.Family != pt.IPv4) {
						continue
					}
					d := e.waitMatrix(st.Name+" "+chk.String(), chk.Expected, chk.Port, convergeBound)
					t.Logf("step %q (%d API writes): %s matched after %v", st.Name, len(changes), chk, d.Round(time.Millisecond))
				}
			}
		})
	}
}

// testBurst writes 1,000 changes (pod label flips, policy creates and
// deletes, random but seeded) as fast as the API server takes them, then
// checks that the final state, computed from the final objects, is what
// the kernel enforces.
func (e *twoNodes) testBurst(t *testing.T) {
	e.t = t
	defer e.reset("burst")
	const changes = 1000
	rng := rand.New(rand.NewPCG(42, 1))
	pods := pt.StandardPods()
	flip := map[string]bool{}
	type bp struct {
		ns, name string
		fromA    bool // allows ingress from pod=a of its namespace; else allows nothing
	}
	var live []bp
	seq := 0
	nps := func(ns string) interface {
		Create(context.Context, *networkingv1.NetworkPolicy, metav1.CreateOptions) (*networkingv1.NetworkPolicy, error)
		Delete(context.Context, string, metav1.DeleteOptions) error
	} {
		return e.admin.NetworkingV1().NetworkPolicies(ns)
	}
	sel := pt.MatchLabels(map[string]string{"flip": "on"})
	start := time.Now()
	var nFlip, nCreate, nDelete int
	for i := 0; i < changes; i++ {
		switch r := rng.IntN(4); {
		case r < 2:
			p := pods[rng.IntN(len(pods))]
			ns, name, _ := strings.Cut(p, "/")
			flip[p] = !flip[p]
			v := "off"
			if flip[p] {
				v = "on"
			}
			patch := fmt.Sprintf(`{"metadata":{"labels":{"flip":%q}}}`, v)
			if _, err := e.admin.CoreV1().Pods(ns).Patch(e.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatalf("change %d: label %s: %v", i, p, err)
			}
			nFlip++
		case (r == 2 && len(live) < 20) || len(live) == 0:
			p := bp{ns: string("xyz"[rng.IntN(3)]), name: fmt.Sprintf("burst-%d", seq), fromA: rng.IntN(2) == 0}
			seq++
			tweaks := []pt.PolicyTweak{pt.WithPodSelector(sel)}
			if p.fromA {
				tweaks = append(tweaks, pt.WithIngress(pt.IngressRule(pt.Peers(pt.PodPeer(pt.MatchLabels(map[string]string{"pod": "a"}))))))
			} else {
				tweaks = append(tweaks, pt.WithIngress())
			}
			if _, err := nps(p.ns).Create(e.ctx, pt.NetworkPolicy(p.ns, p.name, tweaks...), metav1.CreateOptions{}); err != nil {
				t.Fatalf("change %d: create %s/%s: %v", i, p.ns, p.name, err)
			}
			live = append(live, p)
			nCreate++
		default:
			k := rng.IntN(len(live))
			p := live[k]
			if err := nps(p.ns).Delete(e.ctx, p.name, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("change %d: delete %s/%s: %v", i, p.ns, p.name, err)
			}
			live = slices.Delete(live, k, k+1)
			nDelete++
		}
	}
	wrote := time.Since(start)

	// The final state: a pod labelled flip=on in a namespace with a burst
	// policy is isolated for ingress; it admits its namespace's pod a if
	// one of those policies is a fromA one.
	want := allAllowed()
	for _, dst := range pods {
		dns, _, _ := strings.Cut(dst, "/")
		var selected, fromA bool
		for _, p := range live {
			if p.ns == dns {
				selected = true
				fromA = fromA || p.fromA
			}
		}
		if !flip[dst] || !selected {
			continue
		}
		want.ExpectAllIngress(dst, false)
		if fromA {
			want.Expect(dns+"/a", dst, true)
		}
	}
	want.AllowLoopback()
	d := e.waitMatrix("after the burst", want, 80, 2*convergeBound)
	t.Logf("burst: %d API writes (%d label flips, %d policy creates, %d deletes) in %v (%.0f writes/s); "+
		"final state (%d policies live, %d pods flipped on) enforced %v after the last write",
		changes, nFlip, nCreate, nDelete, wrote.Round(time.Millisecond), float64(changes)/wrote.Seconds(),
		len(live), countTrue(flip), d.Round(time.Millisecond))

	// Undo what e.cur does not know about; reset (deferred) does the rest.
	for _, p := range live {
		if err := nps(p.ns).Delete(e.ctx, p.name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods {
		ns, name, _ := strings.Cut(p, "/")
		if _, err := e.admin.CoreV1().Pods(ns).Patch(e.ctx, name, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"flip":null}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// testLatency alternately creates and deletes a policy isolating x/a
// (node-0) 30 times and measures, from the API write returning, (a) the
// time until node-0's agent reports a new programmed generation on its
// metrics endpoint and (b) the start of the first probe y/b → x/a that
// sees the new verdict.
func (e *twoNodes) testLatency(t *testing.T) {
	e.t = t
	defer e.reset("latency")
	const n = 30
	agent := e.agents[0]
	gen := func() float64 {
		v, err := agent.Metric("palisade_programmed_generation")
		if err != nil {
			t.Fatalf("agent metrics: %v", err)
		}
		return v
	}
	xa, _ := e.base.PodIP("x", "a", pt.IPv4)
	probe := lab.Probe{Src: "y/b", Dst: xa, Port: 80, Protocol: lab.TCP}
	np := pt.NetworkPolicy("x", "latency-deny-a", pt.WithPodSelector(pt.MatchLabels(map[string]string{"pod": "a"})), pt.WithIngress())
	nps := e.admin.NetworkingV1().NetworkPolicies("x")

	// Let the reset before settle: the generation must be stable.
	e.waitMatrix("before latency", allAllowed(), 80, convergeBound)
	var kernel, firstProbe, toDeny, toAllow []time.Duration
	for i := 0; i < n; i++ {
		deny := i%2 == 0
		g0 := gen()
		var err error
		if deny {
			_, err = nps.Create(e.ctx, np, metav1.CreateOptions{})
		} else {
			err = nps.Delete(e.ctx, np.Name, metav1.DeleteOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		written := time.Now()
		var wg sync.WaitGroup
		var kd time.Duration
		var kerr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := written.Add(convergeBound)
			for {
				v, err := agent.Metric("palisade_programmed_generation")
				if err == nil && v != g0 {
					kd = time.Since(written)
					return
				}
				if time.Now().After(deadline) {
					kerr = fmt.Errorf("generation still %v after %v (last error %v)", g0, convergeBound, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		deadline := written.Add(convergeBound)
		for {
			s := time.Now()
			r := e.l.Probe(e.ctx, []lab.Probe{probe})[0]
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.Connected != deny {
				d := max(0, s.Sub(written))
				firstProbe = append(firstProbe, d)
				if deny {
					toDeny = append(toDeny, d)
				} else {
					toAllow = append(toAllow, d)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("change %d (deny=%v): probe still connected=%v after %v", i, deny, r.Connected, convergeBound)
			}
			time.Sleep(time.Millisecond)
		}
		wg.Wait()
		if kerr != nil {
			t.Fatalf("change %d: %v", i, kerr)
		}
		kernel = append(kernel, kd)
	}
	t.Logf("enforcement latency over %d changes (API write returned → …): agent's programmed generation advanced: %s; "+
		"first probe with the new verdict: %s (closing, i.e. policy created: %s; opening, i.e. policy deleted: %s. A probe's start precedes its SYN by the probe's setup (netns switch, socket), so a closing figure can read below the programming time; an opening figure has the probe timeout, %v, as resolution: a probe that started before the change waits that long)",
		n, pcts(kernel), pcts(firstProbe), pcts(toDeny), pcts(toAllow), labProbeTimeout)
	t.Logf("README: | enforcement latency, %d changes, 2 agents | programmed: %s | first probe: %s |", n, pcts(kernel), pcts(firstProbe))
}

// pcts renders "p50 X ms, p99 Y ms, max Z ms" (nearest-rank percentiles).
func pcts(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	return "p50 " + ms(rank(0.50)) + ", p99 " + ms(rank(0.99)) + ", max " + ms(s[len(s)-1])
}

// prober probes continuously in the background and counts probes that
// connect.
type prober struct {
	stop              chan struct{}
	done              chan struct{}
	total, connected  atomic.Int64
	mu                sync.Mutex
	firstConnectedMsg string
}

func (e *twoNodes) startProber(probes []lab.Probe) *prober {
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			for _, r := range e.l.Probe(e.ctx, probes) {
				if r.Err != nil {
					continue
				}
				p.total.Add(1)
				if r.Connected {
					if p.connected.Add(1) == 1 {
						p.mu.Lock()
						p.firstConnectedMsg = fmt.Sprintf("%s → %s at %s", r.Probe.Src, r.Probe.Dst, time.Now().Format("15:04:05.000"))
						p.mu.Unlock()
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func (p *prober) Stop() (total, connected int64, first string) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total.Load(), p.connected.Load(), p.firstConnectedMsg
}

// testAgentRestart: with a default-deny policy in x, both agents are
// stopped with SIGTERM (they keep their rules), probes run continuously
// while they are down and while new agent processes start and sync; no
// probe may connect. Then deleting the policy must open traffic again.
func (e *twoNodes) testAgentRestart(t *testing.T) {
	e.t = t
	defer e.reset("agent restart")
	next := e.cur.Clone()
	next.SetPolicy(pt.NetworkPolicy("x", "deny-all", pt.WithIngress()))
	e.apply(next)
	want := allAllowed()
	for _, p := range []string{"x/a", "x/b", "x/c"} {
		want.ExpectAllIngress(p, false)
	}
	want.AllowLoopback()
	e.waitMatrix("default-deny in x", want, 80, convergeBound)

	// From y/a (node-1) and z/a (node-0) into each of x's pods (both nodes).
	var probes []lab.Probe
	for _, src := range []string{"y/a", "z/a", "x/b"} {
		for _, dst := range []string{"x/a", "x/b", "x/c"} {
			if src == dst {
				continue
			}
			ip, _ := e.base.PodIP("x", dst[2:], pt.IPv4)
			probes = append(probes, lab.Probe{Src: src, Dst: ip, Port: 80, Protocol: lab.TCP})
		}
	}
	pr := e.startProber(probes)
	stopped := time.Now()
	for i, a := range e.agents {
		a.Stop(10 * time.Second)
		select {
		case <-a.Exited():
		default:
			t.Fatalf("agent %d still running after Stop", i)
		}
	}
	// Down: rules stay in the kernel.
	time.Sleep(3 * time.Second)
	e.checkMatrixHolds("both agents down", want, 80)
	downFor := time.Since(stopped)
	restart := time.Now()
	for i := range e.agents {
		e.startAgent(i)
	}
	ready := time.Since(restart)
	// And for a while after the new agents' first sync.
	time.Sleep(2 * time.Second)
	total, connected, first := pr.Stop()
	if total == 0 {
		t.Fatal("no probe ran during the restart window")
	}
	if connected > 0 {
		t.Errorf("%d of %d probes connected during the agents' restart (first: %s); want none", connected, total, first)
	}
	t.Logf("agent restart: %d probes over %v (agents down %v, new agents ready in %v), %d connected",
		total, time.Since(stopped).Round(time.Millisecond), downFor.Round(time.Millisecond), ready.Round(time.Millisecond), connected)
	e.checkMatrixHolds("after restart", want, 80)

	next = e.cur.Clone()
	next.DeletePolicy("x", "deny-all")
	e.apply(next)
	d := e.waitMatrix("deny-all deleted after restart", allAllowed(), 80, convergeBound)
	t.Logf("policy deleted after the restart: open after %v", d.Round(time.Millisecond))
}

// testAPIServerOutage stops kube-apiserver (etcd keeps running), checks
// that enforcement stays as it was and the agents keep running, restarts it
// on the same port, then changes a policy and waits for both agents to
// enforce the change.
func (e *twoNodes) testAPIServerOutage(t *testing.T) {
	e.t = t
	// x admits only namespace y.
	next := e.cur.Clone()
	next.SetPolicy(pt.NetworkPolicy("x", "from-y", pt.WithIngress(pt.IngressRule(pt.Peers(
		pt.NamespacePeer(pt.MatchLabels(map[string]string{"ns": "y"})))))))
	e.apply(next)
	want := allAllowed()
	for _, d := range []string{"x/a", "x/b", "x/c"} {
		want.ExpectAllIngress(d, false)
		for _, s := range []string{"y/a", "y/b", "y/c"} {
			want.Expect(s, d, true)
		}
	}
	want.AllowLoopback()
	e.waitMatrix("x admits y only", want, 80, convergeBound)

	// A hung API server (stopped with SIGSTOP: connections are accepted,
	// nothing answers): SIGTERM still ends an agent at once, rules kept.
	if err := e.c.SignalAPIServer(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	termHung := e.stopAgentDuringOutage(1)
	e.checkMatrixHolds("API server hung, agent 1 stopped", want, 80)
	if err := e.c.SignalAPIServer(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	e.startAgent(1)
	t.Logf("agent 1 stopped with SIGTERM while the API server hung: exited after %v", termHung.Round(time.Millisecond))

	down := time.Now()
	// SIGKILL after 3 s: a graceful stop would wait on the open watches.
	if err := e.c.StopAPIServer(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	stopTook := time.Since(down)
	for i := 0; i < 3; i++ {
		time.Sleep(time.Second)
		e.checkMatrixHolds(fmt.Sprintf("API server down (check %d)", i+1), want, 80)
	}
	if s := os.Getenv("PALISADE_E2E_OUTAGE"); s != "" {
		// A longer outage, for the figure after a real one (e.g. 60s).
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("PALISADE_E2E_OUTAGE: %v", err)
		}
		time.Sleep(time.Until(down.Add(d)))
		e.checkMatrixHolds("API server down (after the long outage)", want, 80)
	}
	for i, a := range e.agents {
		select {
		case <-a.Exited():
			t.Errorf("agent %d exited while the API server was down: %v\n%s", i, a.ExitErr(), a.Tail(20))
		default:
		}
	}
	// Agent 0 says the API server is unreachable (metric, log line) and
	// stays ready: it enforces what it holds.
	e.waitReachable(0, 0)
	if !strings.Contains(e.agents[0].Tail(400), "API server unreachable") {
		t.Errorf("agent 0 logged no line about the unreachable API server\n%s", e.agents[0].Tail(20))
	}
	e.requireReady(0, "API server down")
	// SIGTERM while the API server is down: the agent exits at once
	// (status 0) and its rules stay.
	termTook := e.stopAgentDuringOutage(1)
	e.checkMatrixHolds("API server down, agent 1 stopped", want, 80)
	restarting := time.Now()
	if err := e.c.RestartAPIServer(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.startAgent(1)
	t.Logf("agent 1 stopped with SIGTERM during the outage: exited after %v", termTook.Round(time.Millisecond))
	t.Logf("API server down for %v (SIGTERM, SIGKILL after 3 s, until exit %v; 3 checks of the matrix; restart until /readyz %v); agents kept running",
		time.Since(down).Round(time.Millisecond), stopTook.Round(time.Millisecond), time.Since(restarting).Round(time.Millisecond))

	// A change after the restart: x now admits z instead of y.
	next = e.cur.Clone()
	next.SetPolicy(pt.NetworkPolicy("x", "from-y", pt.WithIngress(pt.IngressRule(pt.Peers(
		pt.NamespacePeer(pt.MatchLabels(map[string]string{"ns": "z"})))))))
	e.apply(next)
	want2 := allAllowed()
	for _, d := range []string{"x/a", "x/b", "x/c"} {
		want2.ExpectAllIngress(d, false)
		for _, s := range []string{"z/a", "z/b", "z/c"} {
			want2.Expect(s, d, true)
		}
	}
	want2.AllowLoopback()
	d := e.waitMatrix("policy updated after the API server restart", want2, 80, reconnectBound)
	t.Logf("policy update after the API server restart enforced after %v (agents' --api-gate=%v)",
		d.Round(time.Millisecond), os.Getenv("PALISADE_E2E_API_GATE") != "off")
	e.waitReachable(0, 1)
	if !strings.Contains(e.agents[0].Tail(400), "API server reachable again") {
		t.Errorf("agent 0 logged no line about the API server's return\n%s", e.agents[0].Tail(20))
	}
	e.reset("API server outage")
}

// stopAgentDuringOutage sends SIGTERM to agent i and requires it to exit
// with status 0 within termBound; it returns how long the exit took. An
// agent still running then gets SIGQUIT (its goroutines go to its log,
// which the failure shows) and is killed.
func (e *twoNodes) stopAgentDuringOutage(i int) time.Duration {
	e.t.Helper()
	a := e.agents[i]
	start := time.Now()
	if err := a.Signal(syscall.SIGTERM); err != nil {
		e.t.Fatalf("SIGTERM to agent %d: %v", i, err)
	}
	select {
	case <-a.Exited():
	case <-time.After(termBound):
		_ = a.Signal(syscall.SIGQUIT)
		select {
		case <-a.Exited():
		case <-time.After(2 * time.Second):
		}
		a.Stop(time.Second)
		e.t.Fatalf("agent %d still running %v after SIGTERM while the API server is down\n%s", i, termBound, a.Tail(200))
	}
	took := time.Since(start)
	if code := a.ExitCode(); code != 0 {
		e.t.Errorf("agent %d exited with status %d after SIGTERM during the outage\n%s", i, code, a.Tail(30))
	}
	a.Stop(0) // releases the log; the process is gone
	return took
}

// waitReachable polls agent i's palisade_api_server_reachable until it
// reads want (the agent probes every 500 ms here; deadline convergeBound).
func (e *twoNodes) waitReachable(i int, want float64) {
	e.t.Helper()
	deadline := time.Now().Add(convergeBound)
	var v float64
	var err error
	for time.Now().Before(deadline) {
		if v, err = e.agents[i].Metric("palisade_api_server_reachable"); err == nil && v == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("agent %d: palisade_api_server_reachable = %v (err %v), want %v", i, v, err, want)
}

// requireReady fails unless agent i's /readyz answers 200.
func (e *twoNodes) requireReady(i int, what string) {
	e.t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + e.agents[i].HealthAddr + "/readyz")
	if err != nil {
		e.t.Fatalf("%s: agent %d /readyz: %v", what, i, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Errorf("%s: agent %d /readyz: %s, want 200 (enforcement holds)", what, i, resp.Status)
	}
}
