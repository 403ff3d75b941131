package iptables_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/policy/ir"
)

func TestRenderNeedsNoKernel(t *testing.T) {
	snap := &ir.Snapshot{
		AddressSets: []ir.AddressSet{{ID: "pods-1", Hosts: true, Members: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}}},
		RuleLists: []ir.RuleList{{ID: "np:x/a:ingress", Origin: ir.Origin{Kind: "NetworkPolicy", Namespace: "x", Name: "a"}, Direction: ir.Ingress,
			Rules: []ir.Rule{{Action: ir.Allow, Peers: []string{"pods-1"}, Ports: []ir.PortMatch{{Protocol: ir.TCP, Port: 80, EndPort: 80}}}}}},
		Endpoints: []ir.Endpoint{{ID: "x/a", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
			Ingress: []ir.Tier{{Kind: ir.TierNetworkPolicy, RuleLists: []string{"np:x/a:ingress"}}}}},
	}
	out, err := iptables.Render(snap)
	require.NoError(t, err)
	assert.Contains(t, out, "# ipset restore")
	assert.Contains(t, out, "# iptables-nft-restore")
	assert.Contains(t, out, "10.0.0.2")
	assert.Contains(t, out, "NetworkPolicy x/a ingress rule 0")
	assert.Less(t, strings.Index(out, "# ipset restore"), strings.Index(out, "# iptables-nft-restore"), "sets exist before rules use them")
}
