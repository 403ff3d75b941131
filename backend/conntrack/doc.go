// Package conntrack makes established connections follow the current
// policy. A kernel backend accepts the packets of tracked connections
// before it looks at any policy, so without help a connection opened while
// a flow was allowed keeps flowing after a change denies it. Follower wraps
// any backend.Backend (it is one itself): after each successful Sync or
// Apply of the wrapped backend, it re-evaluates the connection-tracking
// entries that touch an endpoint whose policy may have changed and deletes
// those the new policy denies, so their next packet is judged as a new
// connection, and dropped.
//
// # What is judged, and how
//
// The one judge is backend/memory: the Follower applies every Sync and
// Apply to a memory model of its own, and asks it about each entry.
//   - Which entries: after an Apply, those with an address of an endpoint
//     the delta names or whose tiers use a rule list it replaces or a set
//     whose members it changes (memory.Backend.Affected, before and after
//     the change); after a Sync, every entry (a Sync may follow drift or a
//     restart, when nothing is known of what changed). One dump of the
//     table per address family involved, in the backend's network namespace,
//     over netlink; no call per pod.
//   - The flow of an entry is the connection as the packet filter saw its
//     first packet: the original source, and the destination and port after
//     destination NAT (the reply direction's source), for TCP, UDP and SCTP.
//     Other protocols (ICMP) are left alone. A related entry (an FTP data
//     connection, say) is judged by its own addresses and ports like any
//     other.
//   - Entries whose original source is an address of the node namespace
//     itself are left alone: traffic from the node to its pods is always
//     allowed, and the backends do not filter the node's own output.
//   - An entry whose two ends are both no enforced endpoint is allowed by
//     the model (nothing is enforced here) and left alone; an end that is no
//     endpoint (an ipBlock peer, a pod of another node) is matched as a peer.
//
// # Cut connections stay cut
//
// Deleting an entry is not enough by itself: with the kernel's default
// nf_conntrack_tcp_loose=1, any TCP packet without an entry starts a new
// one, in its own direction. A server retransmitting to a client whose
// connection was just cut (db → client) is then judged as a new connection
// from the server, which the policy usually allows, and the client's
// packets pass as its replies: the connection revives. So a following
// Follower sets nf_conntrack_tcp_loose to 0 in its namespace: only a SYN
// starts a TCP connection; a mid-stream packet without an entry is invalid,
// and the profile chains of the end whose policy denies the connection drop
// invalid packets. The cost, node-wide: a TCP connection whose entry is lost
// for another reason (a flush of the table) is not picked up again either.
// Config.KeepTCPPickup leaves the setting alone. UDP has no such state: a
// datagram the policy allows as a new flow (server to client) starts one,
// and its replies are allowed, as for any allowed flow. An SCTP packet
// other than INIT never starts an entry.
//
// # Guarantees
//
//   - Only entries the model denies are deleted: a connection the change
//     still allows is never touched.
//   - Entries are deleted only after the wrapped backend returned from a
//     successful Sync or Apply, that is once the rules that deny them are
//     in place; an entry deleted earlier could be re-created, as new, by the
//     old rules.
//   - A failure here (netlink, a model that cannot follow a change) never
//     fails the Sync or Apply: it is logged and counted (Metrics), the
//     packet filter stays programmed, and the next Sync starts afresh.
//   - ModeKeep turns the Follower into a plain pass-through: the classic
//     behaviour, where established connections survive policy changes.
package conntrack
