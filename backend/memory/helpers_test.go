package memory_test

import (
	"net/netip"
	"strings"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// Builders for hand-made IR snapshots. Rule list IDs say where the list
// comes from: "np-…" NetworkPolicy/ns/…, "anp-…" AdminNetworkPolicy/…,
// "banp-…" BaselineAdminNetworkPolicy/….

// Addresses used throughout: pods a, b (dual-stack) and c (IPv4 only).
const (
	ipA  = "10.0.0.1"
	ipA6 = "fd00::1"
	ipB  = "10.0.0.2"
	ipB6 = "fd00::2"
	ipC  = "10.0.0.3"
	ext  = "192.0.2.1" // no endpoint
)

func podA(tweaks ...func(*ir.Endpoint)) ir.Endpoint {
	return irtest.Endpoint("ns/a", []string{ipA, ipA6}, tweaks...)
}
func podB(tweaks ...func(*ir.Endpoint)) ir.Endpoint {
	return irtest.Endpoint("ns/b", []string{ipB, ipB6}, tweaks...)
}
func podC(tweaks ...func(*ir.Endpoint)) ir.Endpoint {
	return irtest.Endpoint("ns/c", []string{ipC}, tweaks...)
}

// The pod sets of a, b and c.
func setA() ir.AddressSet  { return addrSet("pods-a", ipA+"/32", ipA6+"/128") }
func setB() ir.AddressSet  { return addrSet("pods-b", ipB+"/32", ipB6+"/128") }
func setC() ir.AddressSet  { return addrSet("pods-c", ipC+"/32") }
func setAB() ir.AddressSet { return addrSet("pods-ab", ipA+"/32", ipB+"/32", ipA6+"/128", ipB6+"/128") }

// snapshot assembles a snapshot at generation 1 from sets, lists and
// endpoints, in any order.
func snapshot(parts ...any) *ir.Snapshot {
	s := &ir.Snapshot{Generation: 1}
	for _, p := range parts {
		switch p := p.(type) {
		case ir.AddressSet:
			s.AddressSets = append(s.AddressSets, p)
		case ir.PortSet:
			s.PortSets = append(s.PortSets, p)
		case ir.RuleList:
			s.RuleLists = append(s.RuleLists, p)
		case ir.Endpoint:
			s.Endpoints = append(s.Endpoints, p)
		default:
			panic("snapshot: unexpected part")
		}
	}
	return s
}

func addrSet(id string, members ...string) ir.AddressSet {
	return irtest.DescribedSet(id, "set "+id, members...)
}

// ipBlock is an address set holding cidr minus excepts, as the engine
// computes it.
func ipBlock(id, cidr string, excepts ...string) ir.AddressSet {
	return ir.AddressSet{ID: id, Description: "block " + cidr, Members: ir.Subtract(irtest.Prefix(cidr), irtest.Prefixes(excepts...))}
}

func originOf(id string) ir.Origin {
	switch {
	case strings.HasPrefix(id, "np-"):
		return ir.Origin{Kind: "NetworkPolicy", Namespace: "ns", Name: strings.TrimPrefix(id, "np-")}
	case strings.HasPrefix(id, "anp-"):
		return ir.Origin{Kind: "AdminNetworkPolicy", Name: strings.TrimPrefix(id, "anp-")}
	case strings.HasPrefix(id, "banp-"):
		return ir.Origin{Kind: "BaselineAdminNetworkPolicy", Name: strings.TrimPrefix(id, "banp-")}
	}
	panic("originOf: unknown prefix in " + id)
}

func ruleList(id string, dir ir.Direction, rules ...ir.Rule) ir.RuleList {
	return ir.RuleList{ID: id, Origin: originOf(id), Direction: dir, Rules: rules}
}

// port matches the single port p of proto (0: every port).
func port(proto ir.Protocol, p uint16) ir.PortMatch { return irtest.Port(proto, p, p) }

func tcp(p uint16) ir.PortMatch { return port(ir.TCP, p) }

func admin(lists ...string) ir.Tier    { return irtest.Tier(ir.TierAdmin, lists...) }
func np(lists ...string) ir.Tier       { return irtest.Tier(ir.TierNetworkPolicy, lists...) }
func baseline(lists ...string) ir.Tier { return irtest.Tier(ir.TierBaseline, lists...) }

func flow(src, dst string, proto ir.Protocol, p uint16) memory.Flow {
	return memory.Flow{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: proto, Port: p}
}

// Expected decisions.

// notEnforced is the decision for an address that is no local endpoint.
func notEnforced() memory.Decision { return memory.Decision{Allowed: true, Rule: -1} }

// noDecision is the decision at an endpoint where no tier decides: it has
// no tiers for the direction, or every tier passed.
func noDecision(ep string) memory.Decision {
	return memory.Decision{Endpoint: ep, Allowed: true, Rule: -1}
}

// isolated is the decision of a NetworkPolicy tier none of whose rules
// matched.
func isolated(ep string) memory.Decision {
	return memory.Decision{Endpoint: ep, Tier: ir.TierNetworkPolicy, Rule: -1, Action: ir.Deny}
}

// by is the decision of a rule.
func by(ep string, tier ir.TierKind, list string, ruleIndex int, action ir.Action) memory.Decision {
	return memory.Decision{
		Endpoint: ep, Allowed: action == ir.Allow, Tier: tier, RuleList: list,
		Origin: originOf(list), Rule: ruleIndex, Action: action,
	}
}
