package e2e

import (
	"context"
	"net/netip"
	"sort"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/examples/e2e/cluster"
)

// TestDefaultDenyFollowsAPIServer runs the node agent for a lab node against
// the real API server, with the ServiceAccount's RBAC only, and checks that
// a default-deny NetworkPolicy written to the API server closes a pod's
// ingress in the kernel, and that deleting it opens it again, each within a
// bound, over several rounds. It logs the latency from the API write to the
// first probe that sees the new verdict.
func TestDefaultDenyFollowsAPIServer(t *testing.T) {
	cluster.Skip(t, cluster.Options{}) // before building anything
	bin := cluster.BuildNodeAgent(t)
	c := cluster.Start(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src, err := c.ApplyRBAC(ctx, rbacPaths...)
	if err != nil {
		t.Fatalf("ApplyRBAC: %v", err)
	}
	t.Logf("RBAC from %s", src)

	const probeTimeout = 100 * time.Millisecond
	l, err := lab.New(ctx, lab.Config{Nodes: 1, ProbeTimeout: probeTimeout})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })

	const nodeName = "node-0"
	pods := []struct {
		name string
		ip   netip.Addr
	}{
		{"client", netip.MustParseAddr("10.244.0.10")},
		{"server", netip.MustParseAddr("10.244.0.11")},
	}
	admin := c.AdminClient()
	if _, err := admin.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if err := l.AddPod(ctx, lab.PodSpec{Name: "e2e/" + p.name, Node: 0, IPs: []netip.Addr{p.ip}}); err != nil {
			t.Fatalf("lab pod %s: %v", p.name, err)
		}
		createRunningPod(ctx, t, admin, "e2e", p.name, nodeName, p.ip)
	}

	h, err := l.NodeNS(0)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := c.StartAgent(ctx, bin, cluster.AgentOptions{
		NodeName: nodeName, NetNSFd: int(h), TableName: "palisade_e2e",
		MinSyncInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	probe := lab.Probe{Src: "e2e/client", Dst: pods[1].ip, Port: 80, Protocol: lab.TCP}
	// waitVerdict probes until Connected == want, returning when the first
	// probe that saw it started.
	waitVerdict := func(what string, want bool, bound time.Duration) time.Time {
		t.Helper()
		deadline := time.Now().Add(bound)
		for {
			start := time.Now()
			r := l.Probe(ctx, []lab.Probe{probe})[0]
			if r.Err != nil {
				t.Fatalf("%s: probe: %v", what, r.Err)
			}
			if r.Connected == want {
				return start
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still connected=%v after %v (%s)", what, r.Connected, bound, r.Detail)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	waitVerdict("before any policy", true, 10*time.Second)

	nps := admin.NetworkingV1().NetworkPolicies("e2e")
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "default-deny", Namespace: "e2e"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	// Each round: create the policy, probe until denied; delete it, probe
	// until allowed. The latency is from just before the API call to the
	// start of the first probe that saw the new verdict.
	const rounds = 10
	var toDeny, toAllow []time.Duration
	for i := 0; i < rounds; i++ {
		written := time.Now()
		if _, err := nps.Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		toDeny = append(toDeny, waitVerdict("after creating default-deny", false, 10*time.Second).Sub(written))

		written = time.Now()
		if err := nps.Delete(ctx, np.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		toAllow = append(toAllow, waitVerdict("after deleting default-deny", true, 10*time.Second).Sub(written))
	}
	t.Logf("API write → first probe with the new verdict, %d rounds: default-deny created: %s; deleted: %s "+
		"(resolution of the latter %v: a dropped probe waits that long)",
		rounds, summary(toDeny), summary(toAllow), probeTimeout)

	checkPolicyCounters(ctx, t, agent, nps, np, waitVerdict)
}

// summary is "min/median/max" of ds, in milliseconds.
func summary(ds []time.Duration) string {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }
	return "min " + ms(s[0]) + " ms, median " + ms(s[len(s)/2]) + " ms, max " + ms(s[len(s)-1]) + " ms"
}

// createRunningPod creates a pod bound to node with ip as its status, as a
// kubelet would report it, serving TCP 80.
func createRunningPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name, node string, ip netip.Addr) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name: "c", Image: "example.invalid/none",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
	created, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.PodStatus{
		Phase:  corev1.PodRunning,
		PodIP:  ip.String(),
		PodIPs: []corev1.PodIP{{IP: ip.String()}},
		HostIP: "198.18.0.1",
	}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
