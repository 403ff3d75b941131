// Package lab runs real traffic through the real kernel without a cluster.
// It builds a small cluster out of network namespaces (one or two nodes,
// pods on routed veths or on a bridge, external hosts), keeps tiny TCP, UDP and SCTP
// servers in them and probes connections between them, in parallel, with
// short timeouts. It knows nothing of policies or packet-filter backends: a
// caller programs a backend inside a node's namespace (NodeNS) and compares
// what Probe observes with what a model predicts. backend/backendtest and
// "netpolctl lab" use it.
//
// # Topology
//
//	        node 0 (netns)                                 node 1 (netns)
//	+-------------------------------+    link     +-------------------------------+
//	| host: 198.18.0.1, 2001:2::1   | node1 node0 | host: 198.18.0.2, 2001:2::2   |
//	| forwarding on, no rp_filter   |<----------->| forwarding on, no rp_filter   |
//	| pod1  ext2 ...  (veths)       |  .1     .2  | pod3 ...        (veths)       |
//	+---+------+--------------------+             +---+---------------------------+
//	    |      |                                      |
//	+---+--+ +-+-----------+                      +---+--+
//	| pod  | | external    |                      | pod  |
//	| eth0 | | host  eth0  |                      | eth0 |
//	+------+ +-------------+                      +------+
//
// Every pod and external host has its own namespace whose eth0 is one end of
// a veth pair; the other end sits in its node's namespace (named pod<N> or
// ext<N>). The pair is routed, not bridged, like most CNIs:
//   - inside: each address as a /32 or /128 on eth0; "169.254.1.1 dev eth0
//     scope link" and "default via 169.254.1.1"; "default via fe80::1 dev
//     eth0" for IPv6;
//   - node side: 169.254.1.1/32 and fe80::1/64 on the veth, a /32 or /128
//     route to each address through it;
//   - static (permanent) neighbour entries both ways, so no ARP or neighbour
//     discovery runs on the lab's links: first packets are neither delayed
//     nor lost.
//
// Each node holds its own addresses on a veth pair inside its namespace
// ("host", with its peer "host-peer"; the kernels here have no dummy
// interfaces). With two nodes a veth pair joins them (node 0's end is named
// "node1", node 1's "node0"), each node routes the other's pods, external
// hosts and own addresses over it, so pod-to-remote-pod traffic crosses the
// forward path of both nodes: a backend in node 0 sees the egress of node 0's
// pods, one in node 1 the ingress of node 1's. External hosts hang off node
// 0; node 1 reaches them through node 0. Traffic from a node to a pod starts
// in the node's namespace (output path).
//
// # Bridge topology
//
// With Config.Topology = Bridge (the model of flannel, Canal and the CNI
// bridge plugin), each node namespace holds a Linux bridge, cni0
// (BridgeName), with a fixed MAC address, the pod gateways 169.254.1.1/32
// and fe80::1/64 on it, and br_netfilter on
// (net.bridge.bridge-nf-call-iptables and -ip6tables = 1). A pod's
// node-side veth is a port of the bridge and holds no address:
//   - inside the pod: the same addresses and default routes as a routed
//     pod, a static neighbour entry for the gateway at the bridge's MAC, and
//     an on-link route through eth0 (no gateway) to each address of the
//     node's other pods, so that traffic between two pods of one node is
//     bridged, never routed by the node;
//   - node side: a /32 or /128 route on cni0 (on-link) and a static
//     neighbour entry for each pod address;
//   - between the node's pods nothing is static: they resolve each other
//     with ARP and IPv6 neighbour discovery, as on a real bridge, so ND
//     between bridged pods crosses the node's IP forward hooks (through
//     br_netfilter) like their other traffic. IPv6 DAD stays off, as
//     everywhere in the lab (its probes come from :: and match no pod).
//
// Real bridge CNIs give a node a pod subnet (10.244.0.0/24 on cni0) and
// pods an address in it. The lab takes pods' addresses from manifests,
// which assign any address to any node, so it assumes no subnet: per-pod
// on-link routes are what a subnet route would do for those addresses, and
// manifests work unchanged on either topology. Across nodes traffic is
// routed host-gw style: each node routes the other's pod addresses via the
// other node's end of the link (per pod, for the same reason). External
// hosts stay on routed veths of node 0 (they stand for hosts outside the
// cluster, not for pods). With br_netfilter off (SetBridgeNetfilter), bridged
// traffic between pods of one node no longer passes the IP hooks at all: no
// inet/ip/ip6 filter, ours or anyone's, sees it (tested).
//
// HostLink names a pod's node-side interface in either topology (the routed
// veth or the bridge port).
// # Pods wired by someone else
//
// A pod added with a PodSpec.Wiring gets its namespace from the lab (lo
// up, nothing else) and is connected by the Wiring: the real CNI plugins
// run as a container runtime runs them, for instance (the end-to-end suite
// does this with the bridge, host-local and flannel plugins). Its addresses
// are what the Wiring reports; the lab adds no route, no neighbour entry
// and no interface for it, and calls the Wiring's Unwire when the pod is
// removed or the lab closed. Everything else (probes, servers, held
// connections) works as for any pod. InNamespace runs a function, or
// starts a process, inside a namespace such as a node's.
//
// # Addresses the lab uses
//
//	169.254.1.1, fe80::1               pod gateways, on every node-side veth (routed) or on cni0 (bridge)
//	169.254.255.1/30, .2               node 0 and node 1 ends of the link
//	2001:2:0:ffff::1/64, ::2           the same, IPv6
//	198.18.0.1+i, 2001:2::1+i          node i's own addresses (NodeIPs)
//
// 198.18.0.0/15 and 2001:2::/48 are the benchmarking ranges (RFC 2544, RFC
// 5180). Pods and external hosts may use any other global unicast address
// (AddPod rejects the lab's own, link-local ones and duplicates).
//
// # Probes
//
// Probe first makes sure each destination serves the probe's protocol and
// port (Serve), so a failed probe reflects the network, never a missing
// server. Then, from a socket created in the source's namespace and bound to
// its address of the destination's family:
//   - TCP: a non-blocking connect; connected when the handshake completes.
//     Result.Latency is connect() to completion (SYN to SYN-ACK as connect
//     sees it), for datapath benchmarks (use Parallelism 1).
//   - UDP: a random token, resent once half-way; connected when the echo
//     carrying it comes back.
//   - SCTP: the kernel has no SCTP sockets, so the probe sends one raw SCTP
//     INIT (raw IP socket, protocol 132; CRC32c computed here, for IPv4 and
//     IPv6 alike; random source port and initiate tag), resent once
//     half-way, and a raw socket in the destination namespace watches for it;
//     connected when the destination saw that INIT, with a valid checksum,
//     on a served port. Conntrack accepts these INITs as valid (tested).
//
// A drop shows as Connected=false with Detail "timeout"; a reject as
// Connected=false with the kernel's error ("connection refused"). Err is
// kept for probes that could not be made (unknown pod: ErrNotFound).
//
// A probe may meet a conntrack entry an earlier probe of the same flow left
// (the kernel picks source ports at random) and pass as established: after
// changing a filter, call ForgetProbes (the entries of the probes made so
// far, by their tuples) or ForgetConnections (whole tables) so that probes
// are judged as new connections.
//
// # Held connections
//
// Hold opens long-lived connections (TCP: connected and kept; UDP: one
// connected socket with a fixed source port; SCTP cannot be held) and
// CheckHeld sends a token over each and waits for the echo: whether a
// packet filter still lets an established connection through after a
// change. TCP servers echo what each connection sends until it closes.
// ForgetProbes leaves held connections' entries alone. TCP servers accept with a 65535-deep queue, so bursts
// of connects are not stalled by the server. Sockets opens client sockets
// in an endpoint's namespace for hand-written probes and benchmarks.
//
// # Forged sources
//
// Forge sends a UDP datagram from a pod with a source address it does not
// own (an IP_TRANSPARENT socket bound to that address) and reports whether
// the destination received it with that source: the probe of source
// validation. Without a packet filter the lab carries such a datagram, on
// both topologies (its nodes run no reverse-path filter).
//
// # Guarantees
//
// Isolation: everything the lab creates lives in namespaces it created. It
// never changes the host's interfaces, routes, sysctls or packet filter:
// veth pairs are created by netlink sockets opened inside node namespaces
// with their peers placed directly in the pod namespaces, and sysctls are
// written from a thread inside the target namespace. Threads that enter a
// namespace always come back, or are discarded by the Go runtime. No lab
// namespace has a route towards the host, so no probe leaves the lab. A
// Wiring is the caller's code: the same holds for a wired pod as long as
// the Wiring works only in the namespaces it is given (the end-to-end
// suite's CNI runtime starts every plugin inside the node's namespace).
//
// Cleanup: the namespaces are anonymous, held only by the Lab's file
// descriptors (and the sockets inside them): no names, no mounts, nothing
// to collide with another lab running in parallel and nothing stale to
// clean up. Close removes them all (idempotent) and stops every server
// goroutine; AddPod and New remove what they created when they fail. If the
// process dies, even by SIGKILL, the kernel removes everything. A CLI that
// wants to Close on Ctrl-C uses HandleSignals, or signal.NotifyContext and a
// deferred Close. To inspect a running lab, enter a namespace through the
// descriptor: nsenter --net=/proc/PID/fd/FD.
//
// A Lab is safe for concurrent use. Topology changes and Serve are
// serialised; probes run in parallel, Config.Parallelism at a time, each
// bounded by Config.ProbeTimeout.
package lab
