// Package verdictlog turns the kernel backends' verdict log into records
// naming the policy that decided.
//
// # In the kernel
//
// Both kernel backends (backend/nftables, backend/iptables) can be asked
// (Logging) to log verdicts through NFLOG: every denied new connection
// always, allowed ones for the rule lists marked ir.RuleList.LogAllowed or
// for all of them. Each logging rule is rate-limited in the kernel, so a
// flood cannot flood the log, and logging never holds a packet: the kernel
// queues the log message and moves on. Only new connections reach the
// rules that log (established and related packets are accepted before
// them). The NFLOG prefix names the decision (see Prefix):
//
//	pal:<verdict>:<direction>:<rule list ID>:<rule index>
//	pal:d:i:np-shop-db-i-1a2b:0     deny, ingress, list np-shop-db-i-1a2b, rule 0
//	pal:d:e::isolated               deny at the end of an isolated NetworkPolicy tier
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
// Record is the stable file format, one JSON object per line.
package verdictlog
