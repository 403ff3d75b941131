package lab_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
)

// A two-node lab: program a packet filter in a node's namespace, then probe.
// (Not run as a test: it needs root.)
func Example() {
	ctx := context.Background()
	l, err := lab.New(ctx, lab.Config{Nodes: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	defer lab.HandleSignals(l)()

	for _, p := range []lab.PodSpec{
		{Name: "prod/db", Node: 0, IPs: []netip.Addr{netip.MustParseAddr("10.244.0.10"), netip.MustParseAddr("fd00::10")}},
		{Name: "prod/web", Node: 1, IPs: []netip.Addr{netip.MustParseAddr("10.244.1.10")}},
	} {
		if err := l.AddPod(ctx, p); err != nil {
			log.Fatal(err)
		}
	}
	ns, err := l.NodeNS(0) // program the backend under test here
	if err != nil {
		log.Fatal(err)
	}
	_ = ns

	for _, r := range l.Probe(ctx, []lab.Probe{
		{Src: "prod/web", Dst: netip.MustParseAddr("10.244.0.10"), Port: 6379, Protocol: lab.TCP},
		{Src: "node:1", Dst: netip.MustParseAddr("10.244.0.10"), Port: 53, Protocol: lab.UDP},
		{Src: "prod/db", Dst: netip.MustParseAddr("10.244.1.10"), Port: 9000, Protocol: lab.SCTP},
	}) {
		fmt.Println(r.Probe.Src, r.Probe.Dst, r.Probe.Protocol, r.Probe.Port, r.Connected, r.Err, r.Latency)
	}
}
