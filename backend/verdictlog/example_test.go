package verdictlog_test

import (
	"fmt"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
	. "github.com/palisade-net/palisade/policy/ir/irtest"
)

// A prefix the kernel logged, mapped back to the policy and rule through
// the IR the backend was given.
func ExampleCatalog() {
	cat := verdictlog.NewCatalog(nil)
	cat.Sync(&ir.Snapshot{
		AddressSets: []ir.AddressSet{HostSet("frontends", "10.0.0.1/32")},
		RuleLists: []ir.RuleList{List("np:shop/db:ingress", "NetworkPolicy", "shop", "db", ir.Ingress,
			Rule(0, ir.Allow, Peers("frontends"), Ports(Port(ir.TCP, 6379, 6379))))},
		Endpoints: []ir.Endpoint{Endpoint("shop/db-0", []string{"10.0.0.2"}, Ingress(Tier(ir.TierNetworkPolicy, "np:shop/db:ingress")))},
	})
	for _, prefix := range []string{
		verdictlog.RulePrefix(true, ir.Ingress, "np:shop/db:ingress", 0),
		verdictlog.IsolatedPrefix(ir.Ingress),
		"kube-proxy:drop",
	} {
		ref, err := verdictlog.ParsePrefix(prefix)
		if err != nil {
			fmt.Println(err)
			continue
		}
		tier, policy, rule, _ := cat.Decision(ref)
		fmt.Printf("%s → allow=%v %s tier=%s policy=%q rule=%s\n", prefix, ref.Allow, ref.Direction, tier, policy, rule)
	}
	// Output:
	// pal:a:i:3e55260f5ae011e7:0 → allow=true Ingress tier=NetworkPolicy policy="NetworkPolicy/shop/db" rule=0
	// pal:d:i::isolated → allow=false Ingress tier=NetworkPolicy policy="" rule=isolated
	// verdictlog: not a palisade prefix: "kube-proxy:drop"
}
