package ir_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/palisade-net/palisade/policy/ir"
)

func TestSourceChanges(t *testing.T) {
	ep := func(id, iface string, ips ...string) ir.Endpoint {
		e := ir.Endpoint{ID: id, Interface: iface}
		for _, ip := range ips {
			e.IPs = append(e.IPs, netip.MustParseAddr(ip))
		}
		return e
	}
	held := map[string]*ir.Endpoint{}
	for _, e := range []ir.Endpoint{
		ep("a", "va", "10.0.0.1", "fd00::1"), ep("b", "vb", "10.0.0.2"), ep("c", "", "10.0.0.3"), ep("d", "vd", "10.0.0.4"),
	} {
		held[e.ID] = &e
	}
	lookup := func(id string) *ir.Endpoint { return held[id] }
	pair := func(iface, ip string) ir.SourcePair {
		return ir.SourcePair{Interface: iface, Addr: netip.MustParseAddr(ip)}
	}

	// a loses its IPv6 address, b and d swap interfaces, c gains one, e is
	// new, and nothing else is touched.
	got := ir.SourceChanges(lookup, &ir.Delta{
		Endpoints: []ir.Endpoint{
			ep("a", "va", "10.0.0.1"), ep("b", "vd", "10.0.0.2"), ep("d", "vb", "10.0.0.4"),
			ep("c", "vc", "10.0.0.3"), ep("e", "ve", "::ffff:10.0.0.5"),
		},
	})
	assert.Equal(t, ir.SourceChange{
		RemovedPairs:    []ir.SourcePair{pair("va", "fd00::1"), pair("vb", "10.0.0.2"), pair("vd", "10.0.0.4")},
		AddedPairs:      []ir.SourcePair{pair("vb", "10.0.0.4"), pair("vc", "10.0.0.3"), pair("vd", "10.0.0.2"), pair("ve", "10.0.0.5")},
		AddedInterfaces: []string{"vc", "ve"},
	}, got)

	got = ir.SourceChanges(lookup, &ir.Delta{RemovedEndpoints: []string{"a", "c"}})
	assert.Equal(t, ir.SourceChange{
		RemovedPairs:      []ir.SourcePair{pair("va", "10.0.0.1"), pair("va", "fd00::1")},
		RemovedInterfaces: []string{"va"},
	}, got)
	empty := ir.SourceChanges(lookup, &ir.Delta{Endpoints: []ir.Endpoint{ep("a", "va", "10.0.0.1", "fd00::1")}})
	assert.True(t, empty.Empty(), "an unchanged endpoint changes nothing")
}
