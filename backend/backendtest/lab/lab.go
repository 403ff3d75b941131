package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Protocol is a transport protocol the lab serves and probes.
type Protocol string

const (
	// TCP probes connect(); success is a completed handshake.
	TCP Protocol = "TCP"
	// UDP probes send a random token; success is its echo.
	UDP Protocol = "UDP"
	// SCTP probes send a raw INIT; success is its arrival at the destination.
	SCTP Protocol = "SCTP"
)

func (p Protocol) valid() bool { return p == TCP || p == UDP || p == SCTP }

// Errors callers can tell apart with errors.Is.
var (
	// ErrClosed is returned by every method of a closed Lab.
	ErrClosed = errors.New("lab: closed")
	// ErrNotFound is returned for a pod, external host, node or address
	// the lab does not hold.
	ErrNotFound = errors.New("lab: not found")
	// ErrExists is returned when a pod name or an address is already in use.
	ErrExists = errors.New("lab: already exists")
)

// Config configures a Lab. The zero value is a one-node lab with the
// defaults below.
type Config struct {
	// Nodes is 1 or 2; 0 means 1.
	Nodes int
	// ProbeTimeout bounds each probe; 0 means 400ms. A probe that sees no
	// answer within it reports Connected=false.
	ProbeTimeout time.Duration
	// Parallelism is how many probes run at once; 0 means 64. Use 1 when
	// measuring Result.Latency.
	Parallelism int
	// Topology is how pods are attached to their node: Routed (the zero
	// value "" means Routed) or Bridge. See the package documentation.
	Topology Topology
}

// Topology is how a node's pods are wired to it.
type Topology string

const (
	// Routed gives each pod a veth pair of its own, routed by the node
	// (Calico-style): every packet between two pods crosses the node's IP
	// forward path.
	Routed Topology = "routed"
	// Bridge puts every pod of a node on one Linux bridge (BridgeName) in
	// the node namespace, like flannel's, Canal's or the CNI bridge
	// plugin's cni0: traffic between two pods of one node is bridged and
	// meets the IP hooks only through br_netfilter.
	Bridge Topology = "bridge"
)

// BridgeName is the bridge each node holds in the Bridge topology.
const BridgeName = "cni0"

// ParseTopology returns the Topology named s: "routed" or "bridge"; ""
// is Routed.
func ParseTopology(s string) (Topology, error) {
	switch t := Topology(s); t {
	case "", Routed:
		return Routed, nil
	case Bridge:
		return Bridge, nil
	default:
		return "", fmt.Errorf("lab: topology %q: want %q or %q", s, Routed, Bridge)
	}
}

func (c Config) withDefaults() (Config, error) {
	if c.Nodes == 0 {
		c.Nodes = 1
	}
	if c.Nodes < 1 || c.Nodes > 2 {
		return c, fmt.Errorf("lab: Config.Nodes: %d, want 1 or 2", c.Nodes)
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 400 * time.Millisecond
	}
	if c.ProbeTimeout < 0 {
		return c, fmt.Errorf("lab: Config.ProbeTimeout: %v is negative", c.ProbeTimeout)
	}
	if c.Parallelism == 0 {
		c.Parallelism = 64
	}
	if c.Parallelism < 0 {
		return c, fmt.Errorf("lab: Config.Parallelism: %d is negative", c.Parallelism)
	}
	t, err := ParseTopology(string(c.Topology))
	if err != nil {
		return c, fmt.Errorf("lab: Config.Topology: %q, want %q or %q", c.Topology, Routed, Bridge)
	}
	c.Topology = t
	return c, nil
}

// Lab is a set of network namespaces wired like a small cluster: nodes,
// pods on routed veths, external hosts. It is safe for concurrent use.
type Lab struct {
	cfg Config

	mu     sync.Mutex // guards everything below and every endpoint's servers
	closed bool
	nodes  []*node
	byName map[string]*endpoint // pods by "ns/name", nodes by "node:i", externals by IP
	byIP   map[netip.Addr]*endpoint
	seq    int // numbers node-side interfaces

	waiters sctpWaiters
	probed  probeTuples // tuples of the probes ForgetProbes has not forgotten
	held    map[*Held]struct{}

	// Test hooks.
	failAddStage string // attach fails right after this stage
	corruptSCTP  bool   // probes send INITs with a wrong checksum
}

// node is one node namespace.
type node struct {
	ep     *endpoint       // the node itself: its namespace and addresses
	nl     *netlink.Handle // netlink in the node namespace
	bridge int             // ifindex of the bridge (Bridge topology), else 0
	brMAC  net.HardwareAddr
	link   int           // index of the link to the other node, 0 on a one-node lab
	peer   [2]netip.Addr // the other node's link addresses, v4 and v6
}

// New builds a lab: Config.Nodes node namespaces, each with its own
// addresses (see NodeIPs), joined by a link when there are two. Nothing is
// created outside the lab's own namespaces. On error everything created so
// far is removed.
func New(ctx context.Context, cfg Config) (_ *Lab, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Lab{
		cfg:     cfg,
		byName:  map[string]*endpoint{},
		byIP:    map[netip.Addr]*endpoint{},
		waiters: sctpWaiters{m: map[sctpKey]chan struct{}{}},
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for i := range cfg.Nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := l.addNode(i); err != nil {
			return nil, fmt.Errorf("lab: node %d: %w", i, err)
		}
	}
	if cfg.Nodes == 2 {
		if err := l.linkNodes(); err != nil {
			return nil, fmt.Errorf("lab: link between nodes: %w", err)
		}
	}
	return l, nil
}

// NodeNS returns node i's network namespace, where a packet filter under
// test is programmed (nftables.WithNetNSFd(int(h)), netlink.NewHandleAt(h),
// or a thread switched into it). The Lab owns the handle: do not close it;
// it is valid until Close. It fails with ErrNotFound when i is not a node of
// the lab and ErrClosed after Close: an error rather than netns.None(), which
// netlink and others read as "the current namespace", the host's.
func (l *Lab) NodeNS(i int) (netns.NsHandle, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return netns.None(), ErrClosed
	}
	if i < 0 || i >= len(l.nodes) {
		return netns.None(), fmt.Errorf("lab: node %d: %w", i, ErrNotFound)
	}
	return l.nodes[i].ep.ns, nil
}

// Topology returns how the lab's pods are wired to their nodes: Routed or
// Bridge.
func (l *Lab) Topology() Topology { return l.cfg.Topology }

// HostLink returns the name of the node-side interface of a pod or an
// external host (named as in Probe: "namespace/name" or the external host's
// IP literal): the routed veth, or in the Bridge topology the pod's bridge
// port. It returns "" when the lab holds no such pod or host, and after
// Close.
func (l *Lab) HostLink(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ep := l.byName[name]
	if ep == nil || ep.kind == kindNode {
		return ""
	}
	return ep.hostIf
}

// NodeIPs returns node i's own addresses, IPv4 then IPv6: the source of
// probes from "node:i". It is nil when i is not a node of the lab.
func (l *Lab) NodeIPs(i int) []netip.Addr {
	if i < 0 || i >= l.cfg.Nodes {
		return nil
	}
	return []netip.Addr{nodeV4(i), nodeV6(i)}
}

// PodSpec describes a pod to add.
type PodSpec struct {
	// Name identifies the pod, conventionally "namespace/name". It must not
	// be an IP literal or start with "node:".
	Name string
	// Node is the index of the node the pod runs on.
	Node int
	// IPs are the pod's addresses, at most one per family is usual; at least
	// one is required. Each must be a unicast address not used elsewhere in
	// the lab and not one of the lab's own (see the package documentation).
	// It must be empty when Wiring is set.
	IPs []netip.Addr
	// Wiring, when set, connects the pod to its node instead of the lab's
	// routed veth (a CNI plugin, for instance) and says which addresses the
	// pod got: see Wiring.
	Wiring Wiring
}

// AddPod creates the pod's namespace with eth0 routed to its node, and
// routes to the pod on the other node of a two-node lab; with a Wiring, it
// creates the namespace and lets the Wiring connect it (see Wiring). On
// error nothing of the pod remains.
func (l *Lab) AddPod(ctx context.Context, p PodSpec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	switch {
	case p.Name == "":
		return errors.New("lab: AddPod: empty name")
	case strings.HasPrefix(p.Name, nodePrefix):
		return fmt.Errorf("lab: AddPod %q: name must not start with %q", p.Name, nodePrefix)
	case isIPLiteral(p.Name):
		return fmt.Errorf("lab: AddPod %q: name must not be an IP literal", p.Name)
	case p.Node < 0 || p.Node >= len(l.nodes):
		return fmt.Errorf("lab: AddPod %q: node %d: %w", p.Name, p.Node, ErrNotFound)
	case l.byName[p.Name] != nil:
		return fmt.Errorf("lab: AddPod %q: %w", p.Name, ErrExists)
	}
	if p.Wiring != nil {
		if len(p.IPs) > 0 {
			return fmt.Errorf("lab: AddPod %q: IPs given with a Wiring (the Wiring assigns them)", p.Name)
		}
		ep, err := l.wire(ctx, p)
		if err != nil {
			return fmt.Errorf("lab: AddPod %q: %w", p.Name, err)
		}
		l.register(ep)
		return nil
	}
	ips, err := l.checkIPs(p.IPs)
	if err != nil {
		return fmt.Errorf("lab: AddPod %q: %w", p.Name, err)
	}
	ep, err := l.attach(kindPod, p.Name, p.Node, ips)
	if err != nil {
		return fmt.Errorf("lab: AddPod %q: %w", p.Name, err)
	}
	l.register(ep)
	return nil
}

// RemovePod stops the pod's servers and removes its namespace, its link and
// the routes to it (a wired pod: Wiring.Unwire, then its namespace). It
// returns ErrNotFound for a pod the lab does not hold.
func (l *Lab) RemovePod(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	ep := l.byName[name]
	if ep == nil || ep.kind != kindPod {
		return fmt.Errorf("lab: RemovePod %q: %w", name, ErrNotFound)
	}
	l.unregister(ep)
	return l.detach(ep)
}

// AddExternal creates an external host owning ip: a namespace attached to
// node 0 like a pod, reached from node 1 through node 0. It stands for
// anything outside the cluster (ipBlock peers, IP-literal flows). Probes name
// it by its IP literal, as Src or Dst.
func (l *Lab) AddExternal(ctx context.Context, ip netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	ips, err := l.checkIPs([]netip.Addr{ip})
	if err != nil {
		return fmt.Errorf("lab: AddExternal %s: %w", ip, err)
	}
	name := ips[0].String()
	ep, err := l.attach(kindExternal, name, 0, ips)
	if err != nil {
		return fmt.Errorf("lab: AddExternal %s: %w", ip, err)
	}
	l.register(ep)
	return nil
}

// ForgetConnections empties the connection-tracking table of every node,
// both families, held connections' entries included (ForgetProbes keeps
// them). Probes open a new socket each, but the kernel picks the
// source port at random, so a probe can meet the conntrack entry an earlier
// probe of the same flow left behind and pass as an established connection
// whatever the policy says now. Call it after changing a node's filter and
// before probing, so every probe is judged as a new connection. A node
// that tracks nothing has nothing to forget; after Close it returns
// ErrClosed.
func (l *Lab) ForgetConnections() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	var errs []error
	for i, n := range l.nodes {
		if err := n.nl.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
			errs = append(errs, fmt.Errorf("lab: node %d: conntrack flush: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Close stops every server and removes every namespace, link and route the
// lab created, after Wiring.Unwire for each wired pod still held. It waits
// for the lab's goroutines to exit. Calling it again does nothing and
// returns nil.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for h := range l.held {
		// Held.Close takes l.mu: close the socket here.
		h.mu.Lock()
		if h.fd >= 0 {
			errs = append(errs, unix.Close(h.fd))
			h.fd = -1
		}
		h.mu.Unlock()
	}
	l.held = nil
	for _, ep := range l.byName {
		if ep.kind == kindNode {
			continue
		}
		errs = append(errs, ep.unwire(), ep.shutdown())
	}
	for _, n := range l.nodes {
		errs = append(errs, n.ep.shutdown())
		n.nl.Close()
	}
	l.byName, l.byIP, l.nodes = nil, nil, nil
	return errors.Join(errs...)
}

const nodePrefix = "node:"

func nodeName(i int) string { return nodePrefix + strconv.Itoa(i) }

func isIPLiteral(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// checkIPs validates and normalises addresses for a new endpoint.
func (l *Lab) checkIPs(ips []netip.Addr) ([]netip.Addr, error) {
	if len(ips) == 0 {
		return nil, errors.New("no IP address")
	}
	out := make([]netip.Addr, 0, len(ips))
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		ip = ip.Unmap()
		switch {
		case !ip.IsValid() || ip.Zone() != "":
			return nil, fmt.Errorf("IP %q: not a plain address", ip)
		case !ip.IsGlobalUnicast() || ip.IsLinkLocalUnicast():
			return nil, fmt.Errorf("IP %s: not a global unicast address", ip)
		case l.reserved(ip):
			return nil, fmt.Errorf("IP %s: reserved by the lab", ip)
		case seen[ip]:
			return nil, fmt.Errorf("IP %s: listed twice", ip)
		case l.byIP[ip] != nil:
			return nil, fmt.Errorf("IP %s: used by %s: %w", ip, l.byIP[ip].name, ErrExists)
		}
		seen[ip] = true
		out = append(out, ip)
	}
	return out, nil
}

func (l *Lab) reserved(ip netip.Addr) bool {
	for i := range 2 {
		if ip == nodeV4(i) || ip == nodeV6(i) || ip == linkV4[i] || ip == linkV6[i] {
			return true
		}
	}
	return ip == gatewayV4 || ip == gatewayV6
}

func (l *Lab) register(ep *endpoint) {
	l.byName[ep.name] = ep
	for _, ip := range ep.ips {
		l.byIP[ip] = ep
	}
}

func (l *Lab) unregister(ep *endpoint) {
	delete(l.byName, ep.name)
	for _, ip := range ep.ips {
		if l.byIP[ip] == ep {
			delete(l.byIP, ip)
		}
	}
}

// lookup resolves a probe source or a Serve target: "node:i", an IP literal
// (of a pod, an external host or a node) or a pod name.
func (l *Lab) lookup(s string) (*endpoint, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if ep := l.byIP[ip.Unmap()]; ep != nil {
			return ep, nil
		}
		return nil, fmt.Errorf("lab: %s: %w", s, ErrNotFound)
	}
	if ep := l.byName[s]; ep != nil {
		return ep, nil
	}
	return nil, fmt.Errorf("lab: %q: %w", s, ErrNotFound)
}

// SetBridgeNetfilter turns br_netfilter on or off in node i's namespace
// (net.bridge.bridge-nf-call-iptables and -ip6tables): off, bridged traffic
// between the node's pods no longer passes the IP hooks, so no IP packet
// filter sees it. New turns it on for the Bridge topology. It fails with
// ErrNotFound when i is not a node of the lab, and with ErrClosed after
// Close.
func (l *Lab) SetBridgeNetfilter(i int, on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if i < 0 || i >= len(l.nodes) {
		return fmt.Errorf("lab: node %d: %w", i, ErrNotFound)
	}
	if err := inNS(l.nodes[i].ep.ns, func() error { return writeSysctls(bridgeSysctls(on)) }); err != nil {
		return fmt.Errorf("lab: node %d: br_netfilter: %w", i, err)
	}
	return nil
}
