package nftables_test

import (
	"fmt"
	"log"
	"net/netip"
	"strings"

	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy/ir"
)

// Render shows the ruleset a Sync would program, without a kernel: here
// one database pod that accepts TCP 6379 from the frontend pods only. The
// example prints the IPv4 peer set and rule-list chain; the whole text also
// holds the base chains, the dispatch maps and the per-profile chains.
func ExampleRender() {
	snap := &ir.Snapshot{
		AddressSets: []ir.AddressSet{{ID: "frontend", Description: "pods role=frontend in shop", Hosts: true,
			Members: []netip.Prefix{netip.MustParsePrefix("10.0.1.11/32"), netip.MustParsePrefix("10.0.1.12/32")}}},
		RuleLists: []ir.RuleList{{
			ID:     "db-from-frontend",
			Origin: ir.Origin{Kind: "NetworkPolicy", Namespace: "shop", Name: "db-from-frontend"}, Direction: ir.Ingress,
			Rules: []ir.Rule{{Index: 0, Action: ir.Allow, Peers: []string{"frontend"},
				Ports: []ir.PortMatch{{Protocol: ir.TCP, Port: 6379, EndPort: 6379}}}},
		}},
		Endpoints: []ir.Endpoint{{ID: "shop/db-0", IPs: []netip.Addr{netip.MustParseAddr("10.0.1.31")},
			Ingress: []ir.Tier{{Kind: ir.TierNetworkPolicy, RuleLists: []string{"db-from-frontend"}}}}},
	}
	text, err := nftables.Render(snap)
	if err != nil {
		log.Fatal(err)
	}
	// Print the blocks "set a4-…" and "chain l4-…".
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "\tset a4-") || strings.HasPrefix(line, "\tchain l4-") {
			in = true
		}
		if in {
			fmt.Println(strings.TrimPrefix(line, "\t"))
		}
		if line == "\t}" {
			in = false
		}
	}
	// Output:
	// set a4-frontend {
	// 	type ipv4_addr
	// 	comment "address set frontend: pods role=frontend in shop"
	// 	elements = { 10.0.1.11,
	// 		     10.0.1.12 }
	// }
	// chain l4-320cd4ff18b6ea6a {
	// 	comment "rule list db-from-frontend (NetworkPolicy/shop/db-from-frontend ingress)"
	// 	meta l4proto tcp th dport 6379 ip saddr @a4-frontend counter accept comment "NetworkPolicy/shop/db-from-frontend ingress rule 0: allow"
	// }
}
