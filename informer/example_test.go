package informer_test

import (
	"context"
	"log"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/informer"
	"github.com/palisade-net/palisade/policy"
)

// A CNI daemon enforcing NetworkPolicy on its node, next to its own work.
func ExampleNew() {
	var (
		ctx       = context.Background() // the daemon's lifetime
		clientset kubernetes.Interface   // the daemon's client
		nodeName  = "node-a"
	)
	nft, err := nftables.New(nftables.Config{TableName: "mycni-policy"})
	if err != nil {
		log.Fatal(err)
	}
	defer nft.Close()
	ctrl, err := informer.New(informer.Config{
		Client:  clientset,
		Engine:  policy.New(policy.Config{NodeName: nodeName}),
		Backend: nft,
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = ctrl.Run(ctx) }() // returns when ctx is done; rules stay
	// Report ready to the daemon's own health checks once programmed.
	_ = ctrl.Ready()
}

// A CNI daemon that already runs a SharedInformerFactory shares it: one
// cluster-wide pod cache, not two. Fail closed first on a node the
// backend has never programmed.
func ExampleConfig_factory() {
	var (
		ctx       = context.Background()
		clientset kubernetes.Interface // the daemon's client
		nodeName  = "node-a"
	)
	factory := informers.NewSharedInformerFactory(clientset, 0) // the daemon's own
	// Only if nothing else in the daemon reads more of a pod than the
	// engine does: a lean pod cache for everyone.
	_ = factory.Core().V1().Pods().Informer().SetTransform(informer.TrimPod)

	nft, err := nftables.New(nftables.Config{TableName: "mycni-policy"})
	if err != nil {
		log.Fatal(err)
	}
	defer nft.Close()
	if _, err := informer.FailClosed(ctx, clientset, nft, nodeName); err != nil {
		log.Fatal(err)
	}
	ctrl, err := informer.New(informer.Config{
		Factory: factory, // informers registered here; Run starts them
		Engine:  policy.New(policy.Config{NodeName: nodeName}),
		Backend: nft,
	})
	if err != nil {
		log.Fatal(err)
	}
	factory.Start(ctx.Done()) // the daemon's other informers
	go func() { _ = ctrl.Run(ctx) }()
}
