package e2e

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/examples/e2e/cluster"
)

// TestBridgeNetfilterReadiness: the real agent on a bridged lab node (the
// flannel/Canal model) enforces a default-deny between two pods of the
// node's bridge; when br_netfilter is turned off in the node's namespace,
// the bridged connection gets through (what the datapath does), and the
// agent says so: /readyz 503 with the reason, a Warning Event on its Node,
// palisade_bridge_netfilter_ok 0. On again: ready, denied again.
func TestBridgeNetfilterReadiness(t *testing.T) {
	bin, c, ctx, l := bridgedNode(t, 2*time.Minute)

	const nodeName, ns = "node-0", "flat"
	client, db := netip.MustParseAddr("10.244.0.10"), netip.MustParseAddr("10.244.0.11")
	admin := c.AdminClient()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, ip := range map[string]netip.Addr{"client": client, "db": db} {
		if err := l.AddPod(ctx, lab.PodSpec{Name: ns + "/" + name, Node: 0, IPs: []netip.Addr{ip}}); err != nil {
			t.Fatalf("lab pod %s: %v", name, err)
		}
		createRunningPod(ctx, t, admin, ns, name, nodeName, ip)
	}
	deny := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "default-deny", Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	if _, err := admin.NetworkingV1().NetworkPolicies(ns).Create(ctx, deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := l.NodeNS(0)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := c.StartAgent(ctx, bin, cluster.AgentOptions{
		NodeName: nodeName, NetNSFd: int(h), TableName: "palisade_e2e", MinSyncInterval: 10 * time.Millisecond,
		ExtraArgs: []string{"--bridge-check-period", "100ms"},
	})
	if err != nil {
		t.Fatal(err)
	}

	probe := lab.Probe{Src: ns + "/client", Dst: db, Port: 80, Protocol: lab.TCP}
	connects := func() bool {
		if err := l.ForgetConnections(); err != nil {
			t.Fatal(err)
		}
		return l.Probe(ctx, []lab.Probe{probe})[0].Connected
	}
	readyz := func() (int, string) {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + agent.HealthAddr + "/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	// waitFor polls cond for up to 10 s (the check runs every 100 ms).
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 10s: %s", what)
			}
		}
	}
	metric := func() float64 {
		v, err := agent.Metric("palisade_bridge_netfilter_ok")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	if connects() {
		t.Fatal("br_netfilter on: the default-deny should stop client → db on the bridge")
	}
	if code, body := readyz(); code != http.StatusOK || metric() != 1 {
		t.Fatalf("before: /readyz %d %q, palisade_bridge_netfilter_ok %v", code, body, metric())
	}

	if err := l.SetBridgeNetfilter(0, false); err != nil {
		t.Fatal(err)
	}
	if !connects() {
		t.Error("br_netfilter off: expected client → db to bypass the policy on the bridge (the datapath this check guards against)")
	}
	var body string
	waitFor("/readyz still 200 with br_netfilter off", func() bool {
		var code int
		code, body = readyz()
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "bridge cni0 has ports but net.bridge.bridge-nf-call-iptables") {
		t.Errorf("/readyz body %q: want the reason", body)
	}
	t.Logf("/readyz with br_netfilter off: %s", body)
	waitFor("palisade_bridge_netfilter_ok still 1", func() bool { return metric() == 0 })
	waitFor("no BridgedTrafficUnfiltered Event on the Node", func() bool {
		evs, err := admin.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind == "Node" && ev.InvolvedObject.Name == nodeName && ev.Reason == "BridgedTrafficUnfiltered" {
				if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "bypasses the packet filter") {
					t.Errorf("event %s %s: %s", ev.Type, ev.Reason, ev.Message)
				}
				return true
			}
		}
		return false
	})

	if err := l.SetBridgeNetfilter(0, true); err != nil {
		t.Fatal(err)
	}
	waitFor("/readyz not 200 again with br_netfilter on", func() bool {
		code, _ := readyz()
		return code == http.StatusOK
	})
	if metric() != 1 {
		t.Errorf("palisade_bridge_netfilter_ok %v after br_netfilter came back, want 1", metric())
	}
	if connects() {
		t.Error("br_netfilter on again: client → db should be denied again")
	}
}

// bridgedNode starts a control plane with the agent's RBAC and a one-node
// lab whose pods sit on a bridge, and builds the agent: what the agent's
// bridged-node tests share. ctx ends after timeout or with the test.
func bridgedNode(t *testing.T, timeout time.Duration) (bin string, c *cluster.Cluster, ctx context.Context, l *lab.Lab) {
	cluster.Skip(t, cluster.Options{}) // before building anything
	bin = cluster.BuildNodeAgent(t)
	c = cluster.Start(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	if _, err := c.ApplyRBAC(ctx, rbacPaths...); err != nil {
		t.Fatalf("ApplyRBAC: %v", err)
	}
	l, err := lab.New(ctx, lab.Config{Nodes: 1, Topology: lab.Bridge})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return bin, c, ctx, l
}
