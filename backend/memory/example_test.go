package memory_test

import (
	"context"
	"fmt"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
)

// The counters of a backend, found through backend.As as a decorator would
// pass them on, after three flows: per policy and per isolated default.
func ExampleBackend_Counters() {
	ctx := context.Background()
	mem := memory.New(memory.Config{})
	snap, ips := backendtest.CountersSnapshot()
	if _, err := mem.Sync(ctx, snap); err != nil {
		panic(err)
	}
	client, other, server := ips["shop/client"][0], ips["shop/other"][0], ips["shop/server"][0]
	mem.Evaluate(memory.Flow{Src: client, Dst: server, Protocol: ir.TCP, Port: 80})
	mem.Evaluate(memory.Flow{Src: client, Dst: server, Protocol: ir.UDP, Port: 9999})
	mem.Evaluate(memory.Flow{Src: other, Dst: server, Protocol: ir.TCP, Port: 80})

	var be backend.Backend = mem
	cr, ok := backend.As[backend.CounterReader](be)
	if !ok {
		panic("no counters")
	}
	c, err := cr.Counters(ctx)
	if err != nil {
		panic(err)
	}
	for _, p := range c.PerPolicy() {
		fmt.Printf("%s %s %s %s: %d\n", p.Tier, p.Origin, p.Direction, p.Action, p.Packets)
	}
	for _, d := range c.Defaults {
		fmt.Printf("%s default %s %s: %d\n", d.Tier, d.Direction, d.Action, d.Packets)
	}
	// Output:
	// Admin AdminNetworkPolicy/guard Ingress Deny: 1
	// Admin AdminNetworkPolicy/guard Ingress Pass: 0
	// NetworkPolicy NetworkPolicy/shop/allow-client Ingress Allow: 1
	// NetworkPolicy NetworkPolicy/shop/client-egress Egress Allow: 2
	// NetworkPolicy default Ingress Deny: 1
}
