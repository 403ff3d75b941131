// Package verdictlog turns the kernel backends' verdict log into records
// naming the policy that decided.
//
// # In the kernel
//
// Both kernel backends (backend/nftables, backend/iptables) can be asked
// (Logging) to log verdicts through NFLOG: every denied new connection
// always, allowed ones for the rule lists marked ir.RuleList.LogAllowed or
// for all of them. The kernel rate-limits the log (Logging.Rate records per
// second, burst as many) for the whole node, so a flood cannot flood the
// log: nftables through one named limit object every logging rule refers
// to, iptables through one hashlimit bucket every logging rule shares (one
// per IP family). Logging never holds a packet: the kernel queues the log message
// and moves on, and the verdict rule that follows decides as always. Only new connections reach the
// rules that log (established and related packets are accepted before
// them). The NFLOG prefix names the decision (see Prefix):
//
//	pal:<verdict>:<direction>:<ListRef(rule list ID)>:<ir.Rule.Index>
//	pal:d:i:3f9a0c1e5b7d2a64:0      deny (a: allow), ingress (e: egress), rule 0 of that list
//	pal:d:e::isolated               deny at the end of an isolated NetworkPolicy tier
//
// ListRef is 64 bits of the SHA-256 of the list's ID in hex (IDs are long
// and hold any character; NFLOG keeps 63 bytes of prefix), so a prefix is at
// most 43 bytes. A Resolver maps it back: Catalog, over the IR the backend
// was given (Track keeps it current), to tier, "Kind/namespace/name" and
// the rule's name or index.
//
// # In user space
//
// A Reader subscribes to the NFLOG group over netlink in the backend's
// network namespace, decodes each packet's IP and L4 headers, maps the
// prefix back through a Resolver (the engine's current IR), names both
// ends, and emits a Record. The reader never blocks the kernel: records go
// through a bounded queue and are dropped, and counted, when it is full; an
// overrun of the socket's buffer (ENOBUFS) is counted and reading goes on.
//
// Record is the stable file format, one JSON object per line. An Event
// carries it with what the schema leaves out (source port, the parsed
// prefix), for tools that match records to packets, as netpolctl lab does.
//
// Guarantees: the decoder (nflog.go, fuzzed) never panics on any input and
// reports what it cannot read as ErrMalformed; messages that are not ours
// are counted and skipped; Run returns nil when its context ends, and an
// error only when the socket fails otherwise.
package verdictlog
