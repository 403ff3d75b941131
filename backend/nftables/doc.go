// Package nftables programs Palisade's IR into one nftables table of its own
// (family inet, "palisade" by default) over netlink, without the nft binary.
// Backend implements backend.Backend; Render prints the same ruleset as nft
// style text without a kernel.
//
// # Chain layout
//
//	hook forward, priority P          hook forward, priority P+1        hook input, priority P
//	chain egress-forward              chain ingress-forward             chain egress-input
//	  ct established,related accept     ct established,related accept     ct established,related accept
//	  icmpv6 nd, hoplimit 255 accept    icmpv6 nd, hoplimit 255 accept
//	  ip  saddr vmap @egress-v4 ─┐      ip  daddr vmap @ingress-v4 ─┐     icmpv6 nd accept
//	  ip6 saddr vmap @egress-v6 ─┤      ip6 daddr vmap @ingress-v6 ─┤     ip/ip6 saddr vmap @egress-v* ─┐
//	                             │                                  │                                    │
//	      endpoint address → jump p4-<hash> / p6-<hash> (verdict maps, one entry per endpoint address
//	      and direction) ─────────┴──────────────────────────────────┴────────────────────────────────────┘
//	chain p4-<hash>     (a profile: one per distinct (family, direction, tiers), shared by its endpoints)
//	  ct state invalid drop
//	  jump l4-<list>                    first-match tier with one list (Admin, Baseline)
//	  jump t4-<hash>                    first-match tier with several lists
//	  jump l4-<np1> … jump l4-<npN>     NetworkPolicy tier, then: drop
//	chain t4-<hash>     (a first-match tier of several lists)
//	  jump l4-<a1>; <a1's Pass rules> return; jump l4-<a2>; …
//	chain l4-<hash(list ID)>  (a rule list, shared by every endpoint it applies to)
//	  <ports> <peer set> counter accept|drop|return      one rule per (port alternative, peer set)
//	sets a4-<id>/a6-<id>  peers: pods (IR Hosts) in hash sets of addresses,
//	                      ipBlocks in interval sets of prefixes
//	sets n4-<id>/n6-<id>  named ports, (address . port) per protocol
//
//	hook prerouting, priority -300 (raw, before conntrack)    table bridge palisade, hook prerouting
//	chain source-guard                                         chain source-guard
//	  source validation: an endpoint's interface (IR Endpoint.Interface) may send from the
//	  endpoint's addresses only; sets guard-ifaces, guard-v4, guard-v6 (interface . address).
//	  Present only while some endpoint has an interface; guard.go has the rules and why.
//
// Node → pod traffic (output) is not filtered. Traffic that is not from or
// to a local endpoint address finds no map entry and is not touched.
//
// # Bridged pods
//
// Pods on a Linux bridge (flannel's cni0, the CNI bridge plugin, Canal)
// reach each other at layer 2: their packets meet the inet forward hook
// only through br_netfilter (net.bridge.bridge-nf-call-iptables and
// -ip6tables = 1, per network namespace), and are then checked exactly
// like routed ones (the conformance suite runs both lab topologies). With
// br_netfilter off, bridged traffic between two pods of one node passes no
// IP hook at all, so no rule of any inet, ip or ip6 table applies to it:
// every such connection is allowed, whatever the policy (tested with this
// backend in a bridged lab: an isolated pod refuses TCP, UDP and SCTP from
// a pod of its bridge with br_netfilter on and accepts them all with it
// off). The bridge family cannot stand in on these kernels (no conntrack
// there, no bridge meta keys: no established state, no return traffic), so
// the backend relies on br_netfilter, and bridgenf.Check (package
// backend/bridgenf) reports a node where it is off.
//
// Neighbour discovery between bridged pods crosses the forward chains too,
// from and to pod addresses: both forward chains accept it when the hop
// limit is 255, which only a bridged packet has there (a routed one is
// decremented before the forward hook), so a routed ICMPv6 packet is never
// exempted. Tested: address resolution between isolated bridged pods in
// every dual-stack conformance scenario on the bridge topology, and
// duplicate address detection against a pod isolated both ways
// (backend/bridgenf TestBridgedDAD, both backends).
//
// # Semantics
//
// Egress of the source and ingress of the destination are checked in two
// base chains of the forward hook: an accept ends one base chain only and a
// drop is final, so the two checks are independent and no packet mark is
// used. In a list chain a matching Allow accepts, Deny drops and Pass
// returns; the tier chain then re-checks the Pass rules of the list that
// returned (only a Pass can have matched, since Allow and Deny end the
// evaluation) and returns from the tier, skipping its remaining lists. A
// NetworkPolicy tier accepts on any match and drops after its last list.
// When no tier decides, the profile returns and the base chain's policy
// accepts. Per packet, the work is two map lookups and the rules of the
// lists that apply to the endpoint; it does not grow with the number of
// endpoints, profiles or policies elsewhere.
//
// Every rule has a counter and a comment naming its origin (kind,
// namespace/name, direction, rule index); chains and sets carry the IR ID
// they derive from (cut at 128 bytes, the longest comment nft accepts),
// since names of rule lists and profiles are hashes.
//
// # Verdict log
//
// With Config.Log (package verdictlog), a rule that decides a new
// connection and is to be logged (every Deny rule, and the end of an
// isolated NetworkPolicy tier; Allow rules of lists marked LogAllowed, or
// all with Logging.Allowed) is preceded by a copy of its matches that ends
// in `limit name "log-budget-N" log prefix "pal:..." group G` (see vlog.go):
// every logging rule shares the table's one limit object (N/second, burst
// N), so the budget is the node's; the log is asynchronous, and the verdict
// rule after it decides as always. A new budget is a new object, the old one
// deleted once no rule uses it. The prefix names the rule
// list (64 bits of SHA-256 of its ID) and the rule index; verdictlog maps it
// back through the IR. A read-back compares these rules like any other, so
// drift repair and restarts keep them; a restart with other logging rewrites
// the rules that differ.
//
// # Readable by nft
//
// Every expression is encoded the way nft writes it, so that `nft list
// ruleset`, `nft -j list ruleset` and `nft list table inet palisade` work on
// the node (other components run them) and their output loads back with
// `nft -f`: an address load is preceded by the `meta nfproto` check nft adds
// for `ip saddr` in an inet table; comments hold no double quote and at most
// 128 bytes. The endpoint dispatch is one verdict-map lookup (`ip saddr vmap
// @egress-v4`, address → jump to the profile chain). An earlier layout
// looked the address up in a data map (address → profile number) and keyed
// a second verdict map by that result: nft never writes a lookup keyed by
// another lookup's result, and nft 1.0.6 aborts listing it (assertion
// `netlink_parse_concat_expr: consumed > 0`), on every table of the
// namespace. The price is paid on a new endpoint: a jump added to a verdict
// map makes the kernel re-validate every jump of the table at commit, so
// BenchmarkApplyNewEndpoint (10k endpoints) went from 0.13-0.17 ms to
// 3.2-6.2 ms in the same run (2 loaded cores, kernel 6.18); label changes
// (set elements, no jump) are unaffected.
//
// # Transport
//
// Messages and batches are our own (tx.go, netlink.go over
// mdlayher/netlink); github.com/google/nftables marshals the expressions.
// Its Conn was measured against ours in one run (BenchmarkTransport: the
// same 10k-endpoint, 1k-list ruleset, loaded identically, 2 shared loaded
// cores, three rounds): cold load 1.19-1.62 s ours, 1.48-1.67 s Conn (ours
// faster in each round); reading the table back 0.49-1.23 s and
// 0.51-1.94 s; a one-pod label change (two set elements) 0.32-1.2 ms
// through our transport, 0.13-0.57 ms through Apply with the compiler,
// 0.13-2.2 ms through Conn: within the noise of the machine. The
// figures do not justify a switch, and Conn lacks what Sync relies on: it
// has no ruleset-generation query and no generation-checked batch
// (NFNL_BATCH_GENID), which make a no-op resync one small request and a
// commit refuse to apply over a concurrent change; it asks an ack of every
// message, so a cold load overflows an ordinary receive buffer (ENOBUFS
// unless raised to hundreds of MiB); and it puts all the elements of one
// call in one attribute, which past 64 KiB is corrupt (the kernel answers
// ENOENT) unless the caller splits them, as our tx does.
//
// # Guarantees
//
//   - Each Sync and Apply is one netlink batch, applied atomically by the
//     kernel, covering our inet table and, for source validation of bridge
//     ports, our bridge table of the same name; nothing outside our tables
//     is read-modified or deleted. Sync, Drift and Cleanup treat the bridge
//     table like the inet one (read back, repaired, removed).
//   - Sync creates, changes and deletes only what differs. It never deletes
//     the table, nor a base chain whose hook and priority are right (a
//     restart reconciles in place, without a moment of open traffic). It
//     reads the table back unless the namespace's ruleset generation is the
//     one its own last batch produced, and then lists drift in Repairs.
//   - Changed (backend.DriftWatcher) is that generation check alone: one
//     netlink round trip (about 22 µs, against about 390 ms to read back a
//     table of 10k endpoints). It cannot tell our table from another one:
//     a commit to any table of the namespace makes it true, and the Sync
//     that follows reads our table back once.
//   - Counters (backend.CounterReader) reads the chains and rules of our
//     table, never the sets, and maps each rule's counter to the policy
//     rule its comment names, checked against the chain's name; a rule of
//     someone else's (a log rule) is never attributed, nor is one whose
//     comment was cut, unless this Backend compiled it (then it is matched
//     by its content). The rules come in one dump below 6000 chains (about 1.4k
//     policies) and in one dump per chain above, since the kernel's dump of
//     a table's rules costs the square of their number (BenchmarkCounters,
//     10k endpoints, 2 loaded cores: 0.23 s at 1k policies, 3.7-7.1 s per
//     chain at 10k against 13.7 s in one dump; a no-op resync 2.3 ms and
//     12 ms).
//   - An invalid snapshot or delta (dangling reference, an address shared by
//     two endpoints) changes nothing and returns an error.
//   - Apply of a delta costs what the delta touches: a label change is a few
//     set elements, a new endpoint a map entry per address and restricted
//     direction (plus a profile chain the first time that combination of
//     tiers is seen). Sets of pod addresses
//     are hash sets, not interval sets, so the kernel's commit of such a
//     change does not grow with the size of the sets it touches.
//   - A kernel set whose type or flags differ from what the state wants
//     (say an interval set where a hash set of hosts is wanted) is replaced
//     by Sync, with the chains that reference it, within the batch.
//   - Names derive from IR IDs: a<fam>-<id> and n<fam>-<id> for sets (IDs
//     are plain), 64-bit SHA-256 prefixes for rule lists, tiers and profiles;
//     a collision is an error, never a silent merge.
package nftables
