package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/examples/e2e/cluster"
)

// TestSourceValidationAgent runs the node agent with
// --source-validation=cni over a lab node whose pods sit on a bridge (the
// flannel shape), with a CNI result cache as libcni writes it: the server
// accepts UDP from the peer pod only, and the client forging the peer's
// address gets through before the agent runs and not once it does, while
// the peer's own packets still do; the drops show in
// palisade_forged_packets_dropped_total.
func TestSourceValidationAgent(t *testing.T) {
	bin, c, ctx, l := bridgedNode(t, 3*time.Minute)

	const nodeName = "node-0"
	ips := map[string]netip.Addr{
		"client": netip.MustParseAddr("10.244.0.10"),
		"server": netip.MustParseAddr("10.244.0.11"),
		"peer":   netip.MustParseAddr("10.244.0.12"),
	}
	admin := c.AdminClient()
	if _, err := admin.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	for _, name := range []string{"client", "server", "peer"} {
		if err := l.AddPod(ctx, lab.PodSpec{Name: "e2e/" + name, Node: 0, IPs: []netip.Addr{ips[name]}}); err != nil {
			t.Fatalf("lab pod %s: %v", name, err)
		}
		createRunningPod(ctx, t, admin, "e2e", name, nodeName, ips[name])
		// The cached result of the bridge plugin's ADD: the bridge, the
		// host-side veth, the pod's eth0.
		result := fmt.Sprintf(`{"kind":"cniCacheV1","containerId":"%[1]s","ifName":"eth0","networkName":"cbr0",`+
			`"cniArgs":[["K8S_POD_NAMESPACE","e2e"],["K8S_POD_NAME","%[1]s"],["K8S_POD_INFRA_CONTAINER_ID","%[1]s"]],`+
			`"result":{"cniVersion":"1.0.0","interfaces":[{"name":"cni0"},{"name":"%[2]s"},{"name":"eth0","sandbox":"/var/run/netns/%[1]s"}],`+
			`"ips":[{"interface":2,"address":"%[3]s/24","gateway":"10.244.0.1"}]}}`, name, l.HostLink("e2e/"+name), ips[name])
		if err := os.WriteFile(filepath.Join(cache, "cbr0-"+name+"-eth0"), []byte(result), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	udp := corev1.ProtocolUDP
	if _, err := admin.NetworkingV1().NetworkPolicies("e2e").Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "server-from-peer", Namespace: "e2e"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "peer"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &intstr.IntOrString{IntVal: 7001}}},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	forge := func(src string, from netip.Addr) bool {
		t.Helper()
		arrived, err := l.Forge(ctx, lab.Forgery{Src: "e2e/" + src, From: from, Dst: ips["server"], Port: 7001})
		if err != nil {
			t.Fatalf("forge: %v", err)
		}
		return arrived
	}
	if !forge("client", ips["peer"]) {
		t.Fatal("before the agent runs, the forged datagram does not arrive: the test could not tell")
	}

	h, err := l.NodeNS(0)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := c.StartAgent(ctx, bin, cluster.AgentOptions{
		NodeName: nodeName, NetNSFd: int(h), TableName: "palisade_e2e",
		MinSyncInterval: 10 * time.Millisecond,
		ExtraArgs:       []string{"--source-validation", "cni", "--cni-cache-dir", cache},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Ready means the first full sync, which already holds the interfaces
	// (the cache was read at start).
	if forge("client", ips["peer"]) {
		t.Error("with source validation, the client forging the peer's address reached the server")
	}
	if !forge("peer", ips["peer"]) {
		t.Error("with source validation, the peer's own datagram did not reach the server")
	}
	if forge("client", ips["client"]) {
		t.Error("the client's own datagram reached the server, which admits the peer only")
	}
	dropped, err := agent.Metric("palisade_forged_packets_dropped_total")
	if err != nil {
		t.Fatal(err)
	}
	if dropped < 1 {
		t.Errorf("palisade_forged_packets_dropped_total = %v, want at least 1", dropped)
	}
	t.Logf("forged packets dropped: %v", dropped)
}
