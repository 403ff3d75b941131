package ir

import (
	"net/netip"
	"slices"
	"strconv"
)

// Family is an IP address family.
type Family uint8

const (
	// IPv4 is the IPv4 family.
	IPv4 Family = 4
	// IPv6 is the IPv6 family.
	IPv6 Family = 6
)

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// Protocol is an IP protocol a rule can match, by its IANA number.
type Protocol uint8

const (
	// TCP is IP protocol 6.
	TCP Protocol = 6
	// UDP is IP protocol 17.
	UDP Protocol = 17
	// SCTP is IP protocol 132.
	SCTP Protocol = 132
)

// Protocols lists every protocol the IR knows, in a fixed order.
var Protocols = []Protocol{TCP, UDP, SCTP}

// String returns the protocol's Kubernetes name ("TCP", "UDP", "SCTP").
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "proto-" + strconv.Itoa(int(p))
}

// ParseProtocol maps a Kubernetes protocol name to a Protocol. ok is false for
// any other name, the empty one included.
func ParseProtocol(s string) (p Protocol, ok bool) {
	switch s {
	case "TCP":
		return TCP, true
	case "UDP":
		return UDP, true
	case "SCTP":
		return SCTP, true
	}
	return 0, false
}

// Direction is the direction of traffic relative to an endpoint.
type Direction string

const (
	// Ingress is traffic arriving at the endpoint; the peer is the source.
	Ingress Direction = "Ingress"
	// Egress is traffic leaving the endpoint; the peer is the destination.
	Egress Direction = "Egress"
)

// Action is what a matching rule decides.
type Action string

const (
	// Allow accepts the connection for this direction and ends evaluation.
	Allow Action = "Allow"
	// Deny drops the connection and ends evaluation.
	Deny Action = "Deny"
	// Pass ends evaluation of the current tier; evaluation continues with the
	// next tier. Only meaningful in first-match tiers.
	Pass Action = "Pass"
)

// TierKind says how a tier's rule lists are evaluated. The set is closed.
type TierKind string

const (
	// TierAdmin is the cluster-admin tier (AdminNetworkPolicy, the Admin tier
	// of ClusterNetworkPolicy). Rule lists are in priority order; the first
	// rule that matches decides (Allow, Deny, or Pass to the next tier). When
	// no rule matches, evaluation continues with the next tier.
	TierAdmin TierKind = "Admin"
	// TierNetworkPolicy holds the NetworkPolicy rule lists that select the
	// endpoint. Its presence means the endpoint is isolated: the connection is
	// allowed when any rule of any list matches and denied otherwise. All its
	// rules have Action Allow.
	TierNetworkPolicy TierKind = "NetworkPolicy"
	// TierBaseline is the baseline tier (BaselineAdminNetworkPolicy, the
	// Baseline tier of ClusterNetworkPolicy): first match decides, no match
	// continues (and past the last tier, the connection is allowed).
	TierBaseline TierKind = "Baseline"
)

// FirstMatch reports whether the first matching rule of the tier decides
// (Admin, Baseline) rather than the union of its rules (NetworkPolicy).
func (k TierKind) FirstMatch() bool { return k != TierNetworkPolicy }

// NoMatch is the outcome of a tier when no rule in it matches: Deny for the
// NetworkPolicy tier (the endpoint is isolated), Pass for the others.
func (k TierKind) NoMatch() Action {
	if k == TierNetworkPolicy {
		return Deny
	}
	return Pass
}

// Origin names the Kubernetes object a rule list came from.
type Origin struct {
	// Kind is the object's kind, e.g. "NetworkPolicy", "AdminNetworkPolicy".
	Kind string
	// Namespace is empty for cluster-scoped objects.
	Namespace string
	Name      string
}

// String renders the origin as Kind/namespace/name (or Kind/name).
func (o Origin) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// AddressSet is a named set of IP prefixes of both families: the pod IPs a
// selector peer matches (as /32 and /128), or an ipBlock's cidr minus its
// excepts. Members of one set never overlap, so a backend can load them into
// an interval set as they are. Several rules that use the same peer share one
// set.
type AddressSet struct {
	// ID is stable for the same peer across restarts and short enough for any
	// backend to derive its own name from (at most 24 bytes, [a-z0-9-]).
	ID string
	// Description is a human-readable summary of the peer.
	Description string
	// Hosts says that every member is, and will stay, a single address (a
	// /32 or /128): the set holds pod IPs and changes as pods come, go and
	// change labels. A backend can keep it in a hash set, whose updates cost
	// the same whatever its size. Sets without Hosts (ipBlocks) hold
	// prefixes and change only with their policy.
	Hosts bool
	// Members are sorted (IPv4 first, then by address and prefix length).
	Members []netip.Prefix
}

// PortSet is a named set of (address, port) pairs for one protocol: every pod
// container port with a given name and protocol, keyed by the pod's IP. It
// resolves a named port against the destination of a connection: the rule's
// port matches when (destination IP, destination port) is a member.
type PortSet struct {
	// ID has the form of AddressSet.ID.
	ID       string
	Protocol Protocol
	// PortName is the container port name the set resolves.
	PortName string
	// Members are sorted.
	Members []netip.AddrPort
}

// PortMatch matches the destination protocol and port of a connection.
type PortMatch struct {
	Protocol Protocol
	// Port and EndPort bound the destination port range, inclusive:
	// 1 <= Port <= EndPort, with EndPort equal to Port for a single port.
	// Port and EndPort both 0 mean every port of the protocol. Any other
	// pair ({80, 0}, {0, 80}, {90, 80}) is invalid (CheckDelta).
	Port, EndPort uint16
	// NamedSet, when set, is the ID of the PortSet the destination must be
	// in; Port and EndPort are then 0 and Protocol equals the set's protocol.
	NamedSet string
}

// Rule is one rule of a rule list. It matches a connection when the peer
// matches (AllPeers, or the peer address is in any of Peers) and the port
// matches (AllPorts, or any of Ports).
type Rule struct {
	// Index is the rule's position in its source object (spec.ingress[Index]).
	Index int
	// Name is the rule's name in its source object, where it has one.
	Name   string
	Action Action

	AllPeers bool
	// Peers are AddressSet IDs. Empty with AllPeers false matches nothing.
	Peers []string

	AllPorts bool
	// Ports are alternatives. Empty with AllPorts false matches nothing.
	Ports []PortMatch
}

// RuleList is the rules of one policy object for one direction, shared by
// every endpoint the object selects.
type RuleList struct {
	// ID is unique and stable: derived from the origin and direction.
	ID        string
	Origin    Origin
	Direction Direction
	// Priority is the source object's priority within its first-match tier
	// (lower is evaluated first); zero for NetworkPolicy lists. It is
	// informational: the evaluation order is that of Tier.RuleLists, which
	// the engine sorts by priority, then kind (AdminNetworkPolicy before
	// ClusterNetworkPolicy), then name.
	Priority int32
	Rules    []Rule
	// LogAllowed asks a backend that logs verdicts to log the connections
	// this list's Allow rules accept, not only denied ones (the engine sets
	// it from the palisade.dev/log-allowed annotation). It changes no
	// verdict.
	LogAllowed bool
}

// Equal reports whether rl and o are the same list, field by field.
func (rl *RuleList) Equal(o *RuleList) bool {
	return rl.ID == o.ID && rl.Origin == o.Origin && rl.Direction == o.Direction && rl.Priority == o.Priority &&
		rl.LogAllowed == o.LogAllowed &&
		slices.EqualFunc(rl.Rules, o.Rules, func(a, b Rule) bool {
			return a.Index == b.Index && a.Name == b.Name && a.Action == b.Action &&
				a.AllPeers == b.AllPeers && a.AllPorts == b.AllPorts &&
				slices.Equal(a.Peers, b.Peers) && slices.Equal(a.Ports, b.Ports)
		})
}

// Tier is one tier of an endpoint's policy for a direction.
type Tier struct {
	Kind TierKind
	// RuleLists are RuleList IDs in evaluation order; backends evaluate them
	// in this order and never re-sort them.
	RuleLists []string
}

// Endpoint is a local pod whose traffic is enforced.
type Endpoint struct {
	// ID is the pod's "namespace/name".
	ID string
	// IPs are the pod's addresses, sorted (IPv4 first).
	IPs []netip.Addr
	// Interface is the name of the pod's interface on the node (the
	// node-side end of its veth, a routed veth or a bridge port), or empty.
	// When set, the pod may only send from IPs (source validation): a
	// packet arriving on Interface with any other source is dropped and
	// counted, except the IPv6 sources neighbour discovery needs (fe80::/10
	// and ::). When empty, the endpoint's sources are not checked: an
	// embedder (a CNI) must supply the name to get the check. A legal
	// Linux interface name (1 to 15 bytes, no '/', ':', space or control
	// character, not "." or ".."); no two endpoints share one.
	Interface string
	// Ingress and Egress are the tiers that apply, in order. An empty list
	// means the direction is not restricted: every connection is allowed.
	Ingress []Tier
	Egress  []Tier
}

// Equal reports whether e and o are the same endpoint with the same
// addresses, interface and tiers.
func (e *Endpoint) Equal(o *Endpoint) bool {
	return e.ID == o.ID && e.Interface == o.Interface && slices.Equal(e.IPs, o.IPs) &&
		tiersEqual(e.Ingress, o.Ingress) && tiersEqual(e.Egress, o.Egress)
}

func tiersEqual(a, b []Tier) bool {
	return slices.EqualFunc(a, b, func(x, y Tier) bool { return x.Kind == y.Kind && slices.Equal(x.RuleLists, y.RuleLists) })
}

// Tiers returns the endpoint's tiers for dir.
func (e *Endpoint) Tiers(dir Direction) []Tier {
	if dir == Ingress {
		return e.Ingress
	}
	return e.Egress
}

// Snapshot is the complete IR at one generation. Every slice is sorted by ID
// and every reference resolves (see Validate).
type Snapshot struct {
	Generation  uint64
	AddressSets []AddressSet
	PortSets    []PortSet
	RuleLists   []RuleList
	Endpoints   []Endpoint
}

// AddressSetChange adds and removes members of an existing AddressSet.
type AddressSetChange struct {
	ID      string
	Added   []netip.Prefix
	Removed []netip.Prefix
}

// PortSetChange adds and removes members of an existing PortSet.
type PortSetChange struct {
	ID      string
	Added   []netip.AddrPort
	Removed []netip.AddrPort
}

// Delta is the change from generation Base to generation Generation.
// Applying it to the snapshot at Base yields the snapshot at Generation.
//
// Order of application (what Snapshot.Apply does, and what a backend must
// preserve so that no reference dangles): add new sets and set members,
// upsert rule lists, upsert endpoints, remove endpoints, remove rule lists,
// remove set members, remove sets.
type Delta struct {
	Base, Generation uint64

	// AddedAddressSets are new sets, complete with members.
	AddedAddressSets []AddressSet
	// AddressSetChanges change members of sets that exist at Base.
	AddressSetChanges []AddressSetChange
	// RemovedAddressSets are IDs of sets that exist at Base.
	RemovedAddressSets []string

	AddedPortSets   []PortSet
	PortSetChanges  []PortSetChange
	RemovedPortSets []string

	// RuleLists are created or replaced whole.
	RuleLists        []RuleList
	RemovedRuleLists []string

	// Endpoints are created or replaced whole.
	Endpoints        []Endpoint
	RemovedEndpoints []string
}

// Empty reports whether the delta changes nothing.
func (d *Delta) Empty() bool {
	return len(d.AddedAddressSets) == 0 && len(d.AddressSetChanges) == 0 && len(d.RemovedAddressSets) == 0 &&
		len(d.AddedPortSets) == 0 && len(d.PortSetChanges) == 0 && len(d.RemovedPortSets) == 0 &&
		len(d.RuleLists) == 0 && len(d.RemovedRuleLists) == 0 &&
		len(d.Endpoints) == 0 && len(d.RemovedEndpoints) == 0
}
