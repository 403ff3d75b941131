package policy_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// newPod is a running pod with labels and one address.
func newPod(ns, name, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

// dbFromFrontend is the demo's policy: pods role=db accept TCP 6379 from
// pods role=frontend of their namespace, and nothing else.
func dbFromFrontend() *networkingv1.NetworkPolicy {
	tcp, port := corev1.ProtocolTCP, intstr.FromInt32(6379)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-from-frontend"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
}

var (
	web = netip.MustParseAddr("10.0.1.11") // shop/web-1, role=frontend
	api = netip.MustParseAddr("10.0.1.21") // shop/api-1, role=api
	db  = netip.MustParseAddr("10.0.1.31") // shop/db-0, role=db
)

// The engine compiles cluster objects; the memory backend, standing in for
// the kernel, answers flows. A full sync once, then deltas.
func Example() {
	ctx := context.Background()
	engine := policy.New(policy.Config{}) // every pod is a local endpoint
	be := memory.New(memory.Config{})

	engine.UpsertNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	for _, p := range []*corev1.Pod{
		newPod("shop", "web-1", web.String(), map[string]string{"role": "frontend"}),
		newPod("shop", "api-1", api.String(), map[string]string{"role": "api"}),
		newPod("shop", "db-0", db.String(), map[string]string{"role": "db"}),
	} {
		if err := engine.UpsertPod(p); err != nil {
			log.Fatal(err)
		}
	}
	if err := engine.UpsertNetworkPolicy(dbFromFrontend()); err != nil {
		log.Fatal(err) // names object and field; the policy still isolates
	}
	if _, err := be.Sync(ctx, engine.Checkpoint()); err != nil { // the full state, once
		log.Fatal(err)
	}
	check := func(src, dst netip.Addr, port uint16) {
		v := be.Evaluate(memory.Flow{Src: src, Dst: dst, Protocol: ir.TCP, Port: port})
		fmt.Printf("%s -> %s TCP/%d allowed=%v\n", src, dst, port, v.Allowed)
	}
	check(web, db, 6379)
	check(api, db, 6379)
	check(web, db, 6380)
	check(db, web, 8080) // web-1 is selected by no policy: open

	// api-1 becomes a frontend: the change is a delta (one set member).
	if err := engine.UpsertPod(newPod("shop", "api-1", api.String(), map[string]string{"role": "frontend"})); err != nil {
		log.Fatal(err)
	}
	d := engine.Delta() // ends the delta: the next starts here
	fmt.Printf("delta %d->%d: %d set change(s)\n", d.Base, d.Generation, len(d.AddressSetChanges))
	if err := be.Apply(ctx, d); err != nil {
		_, _ = be.Sync(ctx, engine.Checkpoint()) // a delta that does not fit: full sync
	}
	check(api, db, 6379)
	// Output:
	// 10.0.1.11 -> 10.0.1.31 TCP/6379 allowed=true
	// 10.0.1.21 -> 10.0.1.31 TCP/6379 allowed=false
	// 10.0.1.11 -> 10.0.1.31 TCP/6380 allowed=false
	// 10.0.1.31 -> 10.0.1.11 TCP/8080 allowed=true
	// delta 1->2: 1 set change(s)
	// 10.0.1.21 -> 10.0.1.31 TCP/6379 allowed=true
}

// Explain tells which policy and rule decided a flow at each end.
func Example_explain() {
	engine := policy.New(policy.Config{})
	for _, p := range []*corev1.Pod{
		newPod("shop", "web-1", web.String(), map[string]string{"role": "frontend"}),
		newPod("shop", "api-1", api.String(), map[string]string{"role": "api"}),
		newPod("shop", "db-0", db.String(), map[string]string{"role": "db"}),
	} {
		_ = engine.UpsertPod(p)
	}
	_ = engine.UpsertNetworkPolicy(dbFromFrontend())
	be := memory.New(memory.Config{})
	if _, err := be.Sync(context.Background(), engine.Snapshot()); err != nil {
		log.Fatal(err)
	}

	for _, src := range []netip.Addr{web, api} {
		v, traces := be.Explain(memory.Flow{Src: src, Dst: db, Protocol: ir.TCP, Port: 6379})
		fmt.Printf("%s -> %s: allowed=%v\n", src, db, v.Allowed)
		fmt.Printf("  egress:  %s\n", v.Egress)
		fmt.Printf("  ingress: %s\n", v.Ingress)
		for _, lt := range traces {
			for _, rt := range lt.Rules {
				fmt.Printf("  %s rule %d: peer matched=%v, port matched=%v\n", lt.Origin, rt.Rule.Index, rt.PeerMatched, rt.PortMatched)
			}
		}
	}
	// Output:
	// 10.0.1.11 -> 10.0.1.31: allowed=true
	//   egress:  allowed (no policy decides)
	//   ingress: allowed by NetworkPolicy/shop/db-from-frontend rule 0
	//   NetworkPolicy/shop/db-from-frontend rule 0: peer matched=true, port matched=true
	// 10.0.1.21 -> 10.0.1.31: allowed=false
	//   egress:  allowed (no policy decides)
	//   ingress: denied (isolated by NetworkPolicy, no rule matched)
	//   NetworkPolicy/shop/db-from-frontend rule 0: peer matched=false, port matched=true
}

// Snapshot only reads: a debug endpoint may call it at any time, and the
// next Delta still holds every change since the last one.
func ExampleEngine_Snapshot() {
	engine := policy.New(policy.Config{})
	_ = engine.UpsertPod(newPod("shop", "db-0", db.String(), map[string]string{"role": "db"}))
	base := engine.Checkpoint()

	_ = engine.UpsertNetworkPolicy(dbFromFrontend())
	snap := engine.Snapshot() // a reader looking in
	d := engine.Delta()
	fmt.Println("rule lists in the snapshot:", len(snap.RuleLists))
	fmt.Println("rule lists in the delta:", len(d.RuleLists))
	fmt.Println("delta ends at the snapshot's generation:", d.Base == base.Generation && d.Generation == snap.Generation)
	// Output:
	// rule lists in the snapshot: 1
	// rule lists in the delta: 1
	// delta ends at the snapshot's generation: true
}

// The same loop on the node's kernel, from a CNI agent's informers (the
// code of the README's "Embed it"; it needs root, so it is not run here).
func Example_nftables() {
	var (
		ctx      = context.Background()
		nodeName = "node-a"
		ns       *corev1.Namespace // from your informers
		pod      *corev1.Pod
		np       *networkingv1.NetworkPolicy
		changed  chan struct{} // your informers' "something changed"
	)
	engine := policy.New(policy.Config{NodeName: nodeName}) // this node's pods are enforced endpoints
	be, err := nftables.New(nftables.Config{})              // one private table: inet palisade
	if err != nil {
		log.Fatal(err)
	}

	// From your informers' handlers (objects are copied, never retained):
	engine.UpsertNamespace(ns)
	if err := engine.UpsertPod(pod); err != nil {
		log.Print(err) // a field it could not use; the rest applies
	}
	if err := engine.UpsertNetworkPolicy(np); err != nil {
		log.Print(err) // names object and field; the policy isolates what it selects and allows nothing
	}

	// Program the kernel: the full state once, then deltas (a few set elements per pod change).
	if _, err := be.Sync(ctx, engine.Checkpoint()); err != nil {
		log.Fatal(err)
	}
	for range changed {
		if err := be.Apply(ctx, engine.Delta()); err != nil { // Delta ends the delta: the next starts here
			_, _ = be.Sync(ctx, engine.Checkpoint()) // a delta that does not fit: full sync
		}
	}
	_ = engine.Snapshot() // only reads: call it from anywhere, any time
}
