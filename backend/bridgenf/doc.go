// Package bridgenf tells whether traffic between pods on a Linux bridge
// reaches the node's IP packet filter, for any embedder of a Palisade
// backend.
//
// flannel, Canal and the CNI bridge plugin put a node's pods on one bridge
// (cni0). Traffic between two pods of that node is bridged, not routed: it
// reaches the inet, ip and ip6 hooks, where the nftables and iptables
// backends filter, only through br_netfilter, and only while
// net.bridge.bridge-nf-call-iptables (IPv4) and
// net.bridge.bridge-nf-call-ip6tables (IPv6) are 1 in the node's network
// namespace. With them at 0 such traffic passes no IP hook at all: every
// connection between two pods of the node is allowed whatever the policy,
// with no error anywhere. Measured in a bridged lab (package
// backend/backendtest/lab; TestBridgeNetfilterOffBypassesBackends): a pod
// isolated by policy, on the nftables and on the iptables backend, refuses
// TCP, UDP and SCTP, IPv4 and IPv6, from a pod of its bridge while the
// settings are 1, and accepts all of them once they are 0; a pod on another
// node (routed) stays isolated. The nftables bridge family is no
// alternative on the kernels we target: it has no connection tracking and
// no bridge meta keys there, so it can neither accept return traffic nor
// dispatch by port.
//
// Check reports, for one network namespace, the bridges that have ports
// and the two settings; Status.OK is false when some bridge has a port and
// a setting that matters is 0 (or the kernel has no br_netfilter), and
// Status.Reason says so in a sentence an operator can act on. The IPv6
// setting matters when Config.RequireIPv6 is set or when a bridge with
// ports routes a global IPv6 destination. A namespace without bridged
// ports is always OK: routed CNIs never depend on br_netfilter. Enable sets
// both settings to 1; it changes what every packet filter in the namespace
// sees (kube-proxy's, a firewall's), which is why callers should make it
// an explicit choice.
//
// Check and Enable touch nothing but the namespace they are given: the
// work runs on an OS thread switched into it (package
// backend/internal/nsthread), and the calling goroutine's namespace never
// changes.
package bridgenf
