package ir_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/palisade-net/palisade/policy/ir"
)

// heldMap is a Held over plain maps.
type heldMap struct {
	addr  map[string]bool // ID → hosts only
	ports map[string]ir.Protocol
	lists map[string]ir.Direction
	eps   map[string]bool
}

func (h heldMap) AddressSet(id string) (bool, bool)       { hosts, ok := h.addr[id]; return ok, hosts }
func (h heldMap) PortSet(id string) (ir.Protocol, bool)   { p, ok := h.ports[id]; return p, ok }
func (h heldMap) RuleList(id string) (ir.Direction, bool) { d, ok := h.lists[id]; return d, ok }
func (h heldMap) Endpoint(id string) bool                 { return h.eps[id] }

func TestCheckDelta(t *testing.T) {
	have := heldMap{
		addr:  map[string]bool{"pods": true, "net": false},
		ports: map[string]ir.Protocol{"tcp-http": ir.TCP},
		lists: map[string]ir.Direction{"in": ir.Ingress},
		eps:   map[string]bool{"x/a": true},
	}
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name string
		d    ir.Delta
		want []string // each must appear; none means the delta fits
	}{
		{name: "fits", d: ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "pods", Added: []netip.Prefix{pfx("10.0.0.9/32")}}, {ID: "net", Added: []netip.Prefix{pfx("10.1.0.0/16")}}},
			RuleLists:         []ir.RuleList{{ID: "out", Direction: ir.Egress, Rules: []ir.Rule{{Action: ir.Allow, Peers: []string{"net"}, Ports: []ir.PortMatch{{Protocol: ir.TCP, NamedSet: "tcp-http"}}}}}},
			Endpoints:         []ir.Endpoint{{ID: "x/b", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, Egress: []ir.Tier{{Kind: ir.TierNetworkPolicy, RuleLists: []string{"out"}}}}},
		}},
		{name: "existence", d: ir.Delta{
			AddedAddressSets:   []ir.AddressSet{{ID: "pods"}},
			AddressSetChanges:  []ir.AddressSetChange{{ID: "nope"}},
			RemovedPortSets:    []string{"udp-dns"},
			RemovedRuleLists:   []string{"gone"},
			RemovedEndpoints:   []string{"x/zz"},
			RemovedAddressSets: []string{"missing"},
		}, want: []string{`address set "pods": added but exists`, `address set "nope": changed but does not exist`,
			`port set "udp-dns": removed but does not exist`, `rule list "gone": removed`, `endpoint "x/zz": removed`, `address set "missing": removed`}},
		{name: "hosts only", d: ir.Delta{
			AddressSetChanges: []ir.AddressSetChange{{ID: "pods", Added: []netip.Prefix{pfx("10.0.0.0/24")}}},
			AddedAddressSets:  []ir.AddressSet{{ID: "new", Hosts: true, Members: []netip.Prefix{pfx("fd00::/64")}}},
		}, want: []string{`"pods": holds hosts only, but has 10.0.0.0/24`, `"new": holds hosts only, but has fd00::/64`}},
		{name: "dangling and mismatched references", d: ir.Delta{
			RemovedAddressSets: []string{"net"},
			RuleLists: []ir.RuleList{{ID: "out", Direction: ir.Egress, Rules: []ir.Rule{{Index: 2, Action: "Maybe", Peers: []string{"net"},
				Ports: []ir.PortMatch{{Protocol: ir.UDP, NamedSet: "tcp-http"}, {Protocol: ir.TCP, Port: 90, EndPort: 80}}}}}},
			Endpoints: []ir.Endpoint{{ID: "x/b", Ingress: []ir.Tier{{Kind: ir.TierNetworkPolicy, RuleLists: []string{"out", "unknown"}}, {Kind: "Sideways"}}}},
		}, want: []string{`unknown action "Maybe"`, `unknown address set "net"`, `port set "tcp-http" is TCP, match is UDP`, `port range 90-80 is empty`,
			`rule list "out" is for Egress`, `unknown rule list "unknown"`, `unknown tier kind "Sideways"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ir.CheckDelta(have, &tc.d)
			if len(tc.want) == 0 {
				assert.NoError(t, err)
				return
			}
			if assert.Error(t, err) {
				for _, w := range tc.want {
					assert.Contains(t, err.Error(), w)
				}
			}
		})
	}
}
