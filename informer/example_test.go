package informer_test

import (
	"context"
	"log"

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
