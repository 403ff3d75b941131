package nftables

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

func smallSnapshot() *ir.Snapshot {
	return &ir.Snapshot{
		Generation:  7,
		AddressSets: []ir.AddressSet{irtest.AddrSet("frontend", "10.0.0.2/32", "10.0.1.0/24"), irtest.HostSet("pods", "10.0.0.2/32", "10.0.0.10/32", "fd00::10/128")},
		PortSets: []ir.PortSet{{ID: "http-tcp", Protocol: ir.TCP, PortName: "http",
			Members: []netip.AddrPort{irtest.AddrPort("10.0.0.10:8080")}}},
		RuleLists: []ir.RuleList{irtest.List("np/default/db/ingress", "NetworkPolicy", "default", "db", ir.Ingress,
			irtest.Rule(0, ir.Allow, irtest.Peers("frontend"), irtest.Ports(irtest.Port(ir.TCP, 5432, 5432))),
			irtest.Rule(1, ir.Allow, irtest.Ports(irtest.Named(ir.TCP, "http-tcp"))))},
		Endpoints: []ir.Endpoint{irtest.Endpoint("default/db", []string{"10.0.0.10"},
			irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np/default/db/ingress")))},
	}
}

func TestRender(t *testing.T) {
	got, err := Render(smallSnapshot())
	require.NoError(t, err)
	if diff := cmp.Diff(renderGolden, got); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}

	// Deterministic whatever the order of members and objects.
	shuffled := smallSnapshot()
	m := shuffled.AddressSets[0].Members
	m[0], m[1] = m[1], m[0]
	again, err := Render(shuffled)
	require.NoError(t, err)
	assert.Equal(t, got, again)

	custom, err := RenderConfig(smallSnapshot(), Config{TableName: "other", Priority: -10})
	require.NoError(t, err)
	assert.Contains(t, custom, "table inet other {")
	assert.Contains(t, custom, "type filter hook forward priority -9; policy accept;")

	bad := smallSnapshot()
	bad.Endpoints[0].Ingress[0].RuleLists = []string{"missing"}
	_, err = Render(bad)
	assert.ErrorIs(t, err, ir.ErrInvalid)
	assert.ErrorContains(t, err, `unknown rule list "missing"`)
}

const renderGolden = `table inet palisade {
	set a4-frontend {
		type ipv4_addr
		flags interval
		comment "address set frontend: test set frontend"
		elements = { 10.0.0.2,
			     10.0.1.0/24 }
	}
	set a4-pods {
		type ipv4_addr
		comment "address set pods: test set pods"
		elements = { 10.0.0.2,
			     10.0.0.10 }
	}
	set a6-frontend {
		type ipv6_addr
		flags interval
		comment "address set frontend: test set frontend"
	}
	set a6-pods {
		type ipv6_addr
		comment "address set pods: test set pods"
		elements = { fd00::10 }
	}
	map egress-v4 {
		type ipv4_addr : verdict
		comment "egress dispatch: endpoint address → profile chain"
	}
	map egress-v6 {
		type ipv6_addr : verdict
		comment "egress dispatch: endpoint address → profile chain"
	}
	map ingress-v4 {
		type ipv4_addr : verdict
		comment "ingress dispatch: endpoint address → profile chain"
		elements = { 10.0.0.10 : jump p4-224ede5cf5e378b5 }
	}
	map ingress-v6 {
		type ipv6_addr : verdict
		comment "ingress dispatch: endpoint address → profile chain"
	}
	set n4-http-tcp {
		type ipv4_addr . inet_service
		comment "port set http-tcp: named port http/TCP"
		elements = { 10.0.0.10 . 8080 }
	}
	set n6-http-tcp {
		type ipv6_addr . inet_service
		comment "port set http-tcp: named port http/TCP"
	}

	chain egress-forward {
		type filter hook forward priority 0; policy accept;
		comment "palisade: egress policy of the source endpoint, forwarded traffic"
		ct state established,related counter accept comment "established and related connections"
		meta nfproto ipv6 ip6 hoplimit 255 meta l4proto ipv6-icmp icmpv6 type 133-137 counter accept comment "IPv6 neighbour discovery between bridged pods"
		meta nfproto ipv4 counter ip saddr vmap @egress-v4 comment "egress check of local endpoints (ip)"
		meta nfproto ipv6 counter ip6 saddr vmap @egress-v6 comment "egress check of local endpoints (ip6)"
	}

	chain egress-input {
		type filter hook input priority 0; policy accept;
		comment "palisade: egress policy of the source endpoint, traffic to this node"
		ct state established,related counter accept comment "established and related connections"
		meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type 133-137 counter accept comment "IPv6 neighbour discovery to the node"
		meta nfproto ipv4 counter ip saddr vmap @egress-v4 comment "egress check of local endpoints (ip)"
		meta nfproto ipv6 counter ip6 saddr vmap @egress-v6 comment "egress check of local endpoints (ip6)"
	}

	chain ingress-forward {
		type filter hook forward priority 1; policy accept;
		comment "palisade: ingress policy of the destination endpoint, forwarded traffic"
		ct state established,related counter accept comment "established and related connections"
		meta nfproto ipv6 ip6 hoplimit 255 meta l4proto ipv6-icmp icmpv6 type 133-137 counter accept comment "IPv6 neighbour discovery between bridged pods"
		meta nfproto ipv4 counter ip daddr vmap @ingress-v4 comment "ingress check of local endpoints (ip)"
		meta nfproto ipv6 counter ip6 daddr vmap @ingress-v6 comment "ingress check of local endpoints (ip6)"
	}

	chain l4-f372d5fbe08ec0fa {
		comment "rule list np/default/db/ingress (NetworkPolicy/default/db ingress)"
		meta l4proto tcp th dport 5432 ip saddr @a4-frontend counter accept comment "NetworkPolicy/default/db ingress rule 0: allow"
		meta l4proto tcp ip daddr . th dport @n4-http-tcp counter accept comment "NetworkPolicy/default/db ingress rule 1: allow"
	}

	chain l6-f372d5fbe08ec0fa {
		comment "rule list np/default/db/ingress (NetworkPolicy/default/db ingress)"
		meta l4proto tcp th dport 5432 ip6 saddr @a6-frontend counter accept comment "NetworkPolicy/default/db ingress rule 0: allow"
		meta l4proto tcp ip6 daddr . th dport @n6-http-tcp counter accept comment "NetworkPolicy/default/db ingress rule 1: allow"
	}

	chain p4-224ede5cf5e378b5 {
		comment "profile: ip profile 7:Ingress [13:NetworkPolicy 21:np/default/db/ingress]"
		ct state invalid counter drop comment "invalid packets"
		counter jump l4-f372d5fbe08ec0fa comment "NetworkPolicy tier: list np/default/db/ingress"
		counter drop comment "NetworkPolicy tier: no rule matched, isolated"
	}
}
`
