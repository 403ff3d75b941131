package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/examples/e2e/cluster"
	pt "github.com/palisade-net/palisade/policy/policytest"
)

var (
	anpGVR  = schema.GroupVersionResource{Group: "policy.networking.k8s.io", Version: "v1alpha1", Resource: "adminnetworkpolicies"}
	banpGVR = schema.GroupVersionResource{Group: "policy.networking.k8s.io", Version: "v1alpha1", Resource: "baselineadminnetworkpolicies"}
	cnpGVR  = schema.GroupVersionResource{Group: "policy.networking.k8s.io", Version: "v1beta1", Resource: "clusternetworkpolicies"}
)

// clusterPolicyPoll is the agents' --cluster-policy-poll here: how soon
// they notice the CRDs being installed.
const clusterPolicyPoll = 250 * time.Millisecond

// TestClusterPolicies runs two node agents, started before the
// network-policy-api CRDs exist, against the real API server with the
// agent's RBAC only; installs the CRDs (from the network-policy-api module)
// and checks through the kernel: an Admin Deny beating a NetworkPolicy
// Allow, a Pass handing over to the NetworkPolicy, the Baseline default
// deny applying only to pods no NetworkPolicy isolates, a priority change,
// and a node-label change for `nodes` peers. It logs the enforcement latency
// of cluster-policy changes.
func TestClusterPolicies(t *testing.T) {
	cluster.Skip(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// The experimental channel of the ClusterNetworkPolicy CRD: the
	// standard one has no `nodes` peer, which the node-label check needs.
	crds, err := cluster.NetworkPolicyAPICRDs(ctx, "experimental")
	if err != nil {
		t.Skipf("the network-policy-api CRDs are not available from the Go module cache or proxy: %v", err)
	}
	bin := cluster.BuildNodeAgent(t)
	c := cluster.Start(t, cluster.Options{})
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
	// The Node objects carry the lab nodes' addresses, as a kubelet would.
	for i := range 2 {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName(i), Labels: map[string]string{"lab": "yes"}}}
		created, err := e.admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ip := range l.NodeIPs(i) {
			created.Status.Addresses = append(created.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
		}
		if _, err := e.admin.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range e.agents {
		h, err := l.NodeNS(i)
		if err != nil {
			t.Fatal(err)
		}
		e.nsFd[i] = int(h)
		a, err := c.StartAgent(ctx, bin, cluster.AgentOptions{
			NodeName: nodeName(i), NetNSFd: e.nsFd[i], TableName: "palisade_e2e",
			MinSyncInterval: 10 * time.Millisecond,
			ExtraArgs:       []string{"--cluster-policy-poll=" + clusterPolicyPoll.String()},
		})
		if err != nil {
			t.Fatal(err)
		}
		e.agents[i] = a
	}
	e.waitMatrix("no policy, no CRD", allAllowed(), 80, convergeBound)

	dyn, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	cp := &clusterPolicies{twoNodes: e, dyn: dyn}

	// x admits only namespace y (a NetworkPolicy Allow).
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "from-y", Namespace: "x"},
		Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ns": "y"}},
			}}}},
		},
	}
	if _, err := e.admin.NetworkingV1().NetworkPolicies("x").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := allAllowed()
	for _, to := range []string{"x/a", "x/b", "x/c"} {
		for _, from := range pt.StandardPods() {
			want.Expect(from, to, strings.HasPrefix(from, "y/"))
		}
	}
	e.waitMatrix("NetworkPolicy x/from-y", want, 80, convergeBound)

	// The CRDs are installed while the agents run; a guardrail follows.
	installed := time.Now()
	names, err := c.InstallCRDs(ctx, time.Minute, crds...)
	if err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
	established := time.Since(installed)
	written := time.Now()
	cp.create(anpGVR, anp("guard-x", 10, "x", ingressRule("no-y", "Deny", nsPeer("y"))))
	for _, to := range []string{"x/a", "x/b", "x/c"} {
		for _, from := range pt.StandardPods() {
			want.Expect(from, to, false) // Admin Deny from y beats the NetworkPolicy's Allow
		}
	}
	e.waitMatrix("Admin Deny beats NetworkPolicy Allow (CRDs installed after the agents started)", want, 80, convergeBound)
	t.Logf("CRDs %v installed and established in %v; the first AdminNetworkPolicy enforced on both nodes %v after its write "+
		"(agents started before the CRDs; discovery poll %v)", names, established.Round(time.Millisecond), time.Since(written).Round(time.Millisecond), clusterPolicyPoll)

	// Pass: y/b is handed over to the NetworkPolicy tier, which allows it.
	cp.create(anpGVR, anp("pass-yb", 5, "x", ingressRule("yb-to-owners", "Pass", podPeer("y", "b"))))
	for _, to := range []string{"x/a", "x/b", "x/c"} {
		want.Expect("y/b", to, true)
	}
	e.waitMatrix("Pass hands y/b over to NetworkPolicy", want, 80, convergeBound)

	// Baseline default deny: y and z (no NetworkPolicy isolates them) admit
	// no pod any more; x, isolated by its NetworkPolicy, is decided there.
	cp.create(banpGVR, banp(ingressRule("default-deny", "Deny", map[string]any{"namespaces": map[string]any{"namespaceSelector": map[string]any{}}})))
	for _, from := range pt.StandardPods() {
		for _, to := range pt.StandardPods() {
			if !strings.HasPrefix(to, "x/") {
				want.Expect(from, to, false)
			}
		}
	}
	e.waitMatrix("Baseline default deny for non-isolated pods only", want, 80, convergeBound)
	cp.delete(banpGVR, "default")
	want = allAllowed()
	for _, to := range []string{"x/a", "x/b", "x/c"} {
		for _, from := range pt.StandardPods() {
			want.Expect(from, to, from == "y/b")
		}
	}
	e.waitMatrix("Baseline deleted", want, 80, convergeBound)

	// Priority change: the Pass moves after the Deny and no longer applies.
	cp.patchPriority(anpGVR, "pass-yb", 20)
	for _, to := range []string{"x/a", "x/b", "x/c"} {
		want.Expect("y/b", to, false)
	}
	e.waitMatrix("Pass moved after the Deny (priority 5 → 20)", want, 80, convergeBound)
	cp.delete(anpGVR, "pass-yb")
	cp.delete(anpGVR, "guard-x")
	if err := e.admin.NetworkingV1().NetworkPolicies("x").Delete(ctx, "from-y", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitMatrix("cluster policies deleted", allAllowed(), 80, convergeBound)

	cp.testInvalidEvent(t)
	cp.testNodeLabel(t)
	cp.testLatency(t)
}

// testInvalidEvent writes an AdminNetworkPolicy the agent cannot enforce
// safely (sameLabels in a Pass rule, which the v0.1.1 CRD accepts) and
// waits for the Warning Event the agents record on it, in namespace
// "default" as for every cluster-scoped object: the agent's RBAC allows it.
func (cp *clusterPolicies) testInvalidEvent(t *testing.T) {
	cp.t = t
	cp.create(anpGVR, anp("same-labels-pass", 7, "x", ingressRule("pass-same", "Pass",
		map[string]any{"namespaces": map[string]any{"sameLabels": []any{"ns"}}})))
	deadline := time.Now().Add(convergeBound)
	for {
		evs, err := cp.admin.CoreV1().Events(metav1.NamespaceDefault).List(cp.ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind == "AdminNetworkPolicy" && ev.InvolvedObject.Name == "same-labels-pass" {
				if ev.Type != corev1.EventTypeWarning || ev.Reason != "InvalidAdminNetworkPolicy" || !strings.Contains(ev.Message, "sameLabels") {
					t.Errorf("event %s %s: %s", ev.Type, ev.Reason, ev.Message)
				}
				t.Logf("Event on the refused policy: %s %s: %s", ev.Type, ev.Reason, ev.Message)
				cp.delete(anpGVR, "same-labels-pass")
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Event on AdminNetworkPolicy same-labels-pass after %v", convergeBound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterPolicies writes cluster-wide policies through the dynamic client.
type clusterPolicies struct {
	*twoNodes
	dyn dynamic.Interface
}

func (cp *clusterPolicies) create(gvr schema.GroupVersionResource, obj map[string]any) {
	cp.t.Helper()
	if _, err := cp.dyn.Resource(gvr).Create(cp.ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		cp.t.Fatalf("create %s: %v", gvr.Resource, err)
	}
}

func (cp *clusterPolicies) delete(gvr schema.GroupVersionResource, name string) {
	cp.t.Helper()
	if err := cp.dyn.Resource(gvr).Delete(cp.ctx, name, metav1.DeleteOptions{}); err != nil {
		cp.t.Fatalf("delete %s %s: %v", gvr.Resource, name, err)
	}
}

func (cp *clusterPolicies) patchPriority(gvr schema.GroupVersionResource, name string, priority int) {
	cp.t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"priority":%d}}`, priority)
	if _, err := cp.dyn.Resource(gvr).Patch(cp.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		cp.t.Fatalf("patch %s %s: %v", gvr.Resource, name, err)
	}
}

func anp(name string, priority int, subjectNS string, ingress ...map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"priority": int64(priority),
			"subject":  map[string]any{"namespaces": map[string]any{"matchLabels": map[string]any{"ns": subjectNS}}},
			"ingress":  toSlice(ingress),
		},
	}
}

func banp(ingress ...map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
		"metadata": map[string]any{"name": "default"},
		"spec": map[string]any{
			"subject": map[string]any{"namespaces": map[string]any{}},
			"ingress": toSlice(ingress),
		},
	}
}

func ingressRule(name, action string, from ...map[string]any) map[string]any {
	return map[string]any{"name": name, "action": action, "from": toSlice(from)}
}

// nsPeer and podPeer are written in the peer shape of the v1alpha1 CRDs
// installed (network-policy-api v0.1.1: namespaces: {namespaceSelector:
// ...}); the agent reads them into the current v1alpha1 types.
func nsPeer(ns string) map[string]any {
	return map[string]any{"namespaces": map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"ns": ns}}}}
}

func podPeer(ns, pod string) map[string]any {
	return map[string]any{"pods": map[string]any{
		"namespaces":  map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"ns": ns}}},
		"podSelector": map[string]any{"matchLabels": map[string]any{"pod": pod}},
	}}
}

func toSlice(ms []map[string]any) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// testNodeLabel checks a ClusterNetworkPolicy whose egress Deny names nodes
// by label: labelling node-1 closes z/a's connections to node-1's address,
// removing the label opens them again.
func (cp *clusterPolicies) testNodeLabel(t *testing.T) {
	cp.t = t
	var node1 netip.Addr
	for _, ip := range cp.l.NodeIPs(1) {
		if ip.Is4() {
			node1 = ip
		}
	}
	probe := lab.Probe{Src: "z/a", Dst: node1, Port: 80, Protocol: lab.TCP}
	cp.create(cnpGVR, map[string]any{
		"apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
		"metadata": map[string]any{"name": "z-off-blocked-nodes"},
		"spec": map[string]any{
			"tier": "Admin", "priority": int64(1),
			"subject": map[string]any{"namespaces": map[string]any{"matchLabels": map[string]any{"ns": "z"}}},
			"egress": []any{map[string]any{"name": "no-blocked-nodes", "action": "Deny", "to": []any{
				map[string]any{"nodes": map[string]any{"matchLabels": map[string]any{"e2e-block": "yes"}}},
			}}},
		},
	})
	label := func(value *string) time.Time {
		t.Helper()
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{"e2e-block": value}}})
		if _, err := cp.admin.CoreV1().Nodes().Patch(cp.ctx, nodeName(1), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	cp.waitProbe("node-1 unlabelled", probe, true)
	yes := "yes"
	at := label(&yes)
	d1 := cp.waitProbe("node-1 labelled e2e-block=yes", probe, false).Sub(at)
	at = label(nil)
	d2 := cp.waitProbe("label removed", probe, true).Sub(at)
	t.Logf("node label change → z/a's egress to node-1 (%s) follows: the first probe with the new verdict started %v (closing) and %v (opening) after the write returned "+
		"(0 when the first probe after the write already saw it)", node1, max(0, d1).Round(100*time.Microsecond), max(0, d2).Round(100*time.Microsecond))
	cp.delete(cnpGVR, "z-off-blocked-nodes")
}

// waitProbe probes until Connected == want; it returns when the first
// probe that saw it started.
func (cp *clusterPolicies) waitProbe(what string, p lab.Probe, want bool) time.Time {
	cp.t.Helper()
	deadline := time.Now().Add(convergeBound)
	for {
		start := time.Now()
		r := cp.l.Probe(cp.ctx, []lab.Probe{p})[0]
		if r.Err != nil {
			cp.t.Fatalf("%s: probe: %v", what, r.Err)
		}
		if r.Connected == want {
			return start
		}
		if time.Now().After(deadline) {
			cp.t.Fatalf("%s: %s → %s still connected=%v after %v (%s)", what, p.Src, p.Dst, r.Connected, convergeBound, r.Detail)
		}
		time.Sleep(time.Millisecond)
	}
}

// testLatency alternates creating and deleting an AdminNetworkPolicy that
// denies y/b → x/a and measures, from the API write returning, when node-0's
// agent (x/a's node) reports a new programmed generation and when the first
// probe sees the new verdict.
func (cp *clusterPolicies) testLatency(t *testing.T) {
	cp.t = t
	const n = 30
	agent := cp.agents[spreadNode("x", "a")]
	xa, _ := cp.base.PodIP("x", "a", pt.IPv4)
	probe := lab.Probe{Src: "y/b", Dst: xa, Port: 80, Protocol: lab.TCP}
	policy := anp("latency-deny", 1, "x", ingressRule("no-yb", "Deny", podPeer("y", "b")))
	var kernel, firstProbe []time.Duration
	for i := range n {
		deny := i%2 == 0
		g0, err := agent.Metric("palisade_programmed_generation")
		if err != nil {
			t.Fatalf("agent metrics: %v", err)
		}
		if deny {
			cp.create(anpGVR, policy)
		} else {
			cp.delete(anpGVR, "latency-deny")
		}
		written := time.Now()
		done := make(chan time.Duration, 1)
		go func() {
			deadline := written.Add(convergeBound)
			for time.Now().Before(deadline) {
				if v, err := agent.Metric("palisade_programmed_generation"); err == nil && v != g0 {
					done <- time.Since(written)
					return
				}
				time.Sleep(time.Millisecond)
			}
			done <- -1
		}()
		seen := cp.waitProbe(fmt.Sprintf("latency change %d (deny=%v)", i, deny), probe, !deny)
		firstProbe = append(firstProbe, max(0, seen.Sub(written)))
		kd := <-done
		if kd < 0 {
			t.Fatalf("change %d: the agent's generation did not change within %v", i, convergeBound)
		}
		kernel = append(kernel, kd)
	}
	t.Logf("cluster-policy enforcement latency over %d AdminNetworkPolicy creates/deletes (API write returned → …): "+
		"agent's programmed generation advanced: %s; first probe with the new verdict: %s", n, pcts(kernel), pcts(firstProbe))
	t.Logf("README: | cluster-policy enforcement latency, %d changes | programmed: %s | first probe: %s |", n, pcts(kernel), pcts(firstProbe))
	slowest := 0
	for i := range kernel {
		if kernel[i] > kernel[slowest] {
			slowest = i
		}
	}
	t.Logf("slowest programming: change %d (%s), %v; all, in order: %v", slowest, map[bool]string{true: "create", false: "delete"}[slowest%2 == 0],
		kernel[slowest].Round(100*time.Microsecond), kernel)
}
