// Package iptables programs Palisade's IR into iptables chains and ipsets
// of its own, through iptables-restore --noflush, ip6tables-restore
// --noflush and ipset restore. Backend implements backend.Backend and works
// with both iptables variants (nf_tables and legacy).
//
// # Namespace
//
// Every command runs inside one network namespace, chosen explicitly:
// Config.NetNS (a file descriptor, duplicated by New), or the process's
// own namespace only with Config.AllowCurrentNamespace; New fails when
// neither is given, so a forgotten setting never programs the host. The
// iptables and ipset binaries act on the namespace they run in: each
// command is started from an OS thread locked into the target namespace
// (runtime.LockOSThread, setns, fork, setns back), so the child is born in
// it; a thread that cannot switch back is never unlocked, and the runtime
// discards it. Config.Runner replaces all of this (unit tests inject a
// fake).
//
// # Chain layout (filter table, the same in iptables and ip6tables)
//
//	FORWARD  -j PALISADE-FWD        (inserted first; the only rule we add to a built-in chain)
//	INPUT    -j PALISADE-INPUT
//	OUTPUT   (nothing: node → pod traffic is never filtered)
//
//	PALISADE-FWD
//	  ctstate RELATED,ESTABLISHED          -j RETURN
//	  (IPv6) icmpv6 types 133-137, hl 255  -j RETURN             neighbour discovery between bridged pods
//	                                       -j PALISADE-EGRESS    egress check of the source
//	                                       -j PALISADE-INGRESS   ingress check of the destination
//	  mark has A or P                      -j MARK --set-xmark 0/A|P   (leave no mark behind)
//	PALISADE-INPUT
//	  ctstate RELATED,ESTABLISHED          -j RETURN
//	  (IPv6) icmpv6 types 133-137          -j RETURN             neighbour discovery to the node
//	                                       -j PALISADE-EGRESS
//	  mark has A or P                      -j MARK --set-xmark 0/A|P
//	PALISADE-EGRESS / PALISADE-INGRESS     dispatch, one rule per profile:
//	  -m set --match-set pal-d4-<h> src|dst -g PALISADE-P<h>
//	PALISADE-P<h>   a profile: one per distinct (direction, tiers), shared by its endpoints
//	  ctstate INVALID                      -j DROP
//	                                       -j MARK --set-xmark 0/A|P   fresh check
//	  Admin/Baseline tier, one list:       -j PALISADE-L<list>;  mark A -j RETURN;  -j MARK --set-xmark 0/P
//	  Admin/Baseline tier, several lists:  -j PALISADE-T<h>;     mark A -j RETURN;  -j MARK --set-xmark 0/P
//	  NetworkPolicy tier:                  -j PALISADE-L<np1>; mark A -j RETURN; … ; -j DROP
//	  (end of chain: no tier decided, allowed: return)
//	PALISADE-T<h>   a first-match tier of several lists
//	  -j PALISADE-L<a1>;  mark A -j RETURN;  mark P -j RETURN;  -j PALISADE-L<a2>; …
//	PALISADE-L<h>   a rule list (hash of its IR ID), shared by every profile that uses it
//	  [-p proto] [-m set --match-set pal-a4-<peer> src|dst] [-m proto --dport a[:b] | -m set --match-set pal-n4-<named> dst,dst]
//	      -m comment --comment "NetworkPolicy ns/name ingress rule 0: allow"
//	      -g PALISADE-ALLOW | -j DROP | -g PALISADE-PASS
//	PALISADE-ALLOW  -j MARK --set-xmark A/A   (then returns to the chain that jumped to the list)
//	PALISADE-PASS   -j MARK --set-xmark P/P
//
//	raw PREROUTING  -j PALISADE-GUARD   source validation (guard.go), only while
//	                                    some endpoint has an Interface
//
//	ipsets  pal-a4-<id> / pal-a6-<id>  hash:net      peers (IR address sets; /0 as two /1)
//	        pal-n4-<id> / pal-n6-<id>  hash:ip,port  named ports ("10.0.0.1,tcp:80", "sctp:80")
//	        pal-d4-<h>  / pal-d6-<h>   hash:ip       endpoint addresses of a profile (dispatch)
//
// # Semantics
//
// Egress of the source and ingress of the destination are two independent
// checks, each entered with -j from PALISADE-FWD: a check that allows
// returns to PALISADE-FWD, so the other one still runs; a DROP is final.
// We never ACCEPT, so rules after ours in FORWARD and INPUT (a CNI's own)
// still apply. A profile is entered with -g, so a RETURN from it ends its
// direction's check. In iptables a list chain cannot return two levels,
// so a list's verdict travels in two packet-mark bits, A (allowed, default
// 0x1000000) and P (passed, default 0x2000000): the list goes to
// PALISADE-ALLOW or PALISADE-PASS, which set the bit and return to the
// profile or tier chain that called the list, and that chain tests the
// bit. Each profile clears both bits when its check starts, so one
// direction's verdict never stands for the other (the bug DESIGN.md warns
// about), and PALISADE-FWD/INPUT clear them when both checks are done.
// Admin and Baseline tiers are first-match (the first Allow, Deny or Pass
// decides; Pass and no match go on to the next tier); a NetworkPolicy tier
// allows when any of its lists matches and drops otherwise; when no tier
// decides, the profile falls through: allowed. Endpoints with no tiers in a
// direction are in no dispatch set and are not checked in it. Traffic
// neither from nor to a local endpoint matches no dispatch rule.
//
// Every rule carries a comment naming its origin (kind, namespace/name,
// direction, rule index and action) and iptables' per-rule packet and byte
// counters.
//
// Pods on a Linux bridge (flannel's cni0, the CNI bridge plugin, Canal):
// their traffic to each other is bridged and reaches FORWARD only through
// br_netfilter (net.bridge.bridge-nf-call-iptables and -ip6tables = 1, per
// network namespace); then it is checked like routed traffic, with the
// bridge as in- and out-interface (the conformance suite runs both
// topologies). With br_netfilter off it passes no iptables chain at all and
// every connection between two pods of one node is allowed, whatever the
// policy: bridgenf.Check (package backend/bridgenf) reports it. IPv6
// neighbour discovery between bridged pods also crosses FORWARD, from and
// to pod addresses; PALISADE-FWD lets it through when its hop limit is
// 255, which a routed packet never has in FORWARD (decremented before).
//
// # Guarantees
//
//   - A change is at most four commands, in this order: ipset restore
//     (create sets, add members), iptables-restore --noflush and
//     ip6tables-restore --noflush (side by side; each one transaction that
//     declares — and so flushes — and refills only the chains that change,
//     fixes the two entry rules, and deletes dead chains of ours), and ipset
//     restore (delete members, destroy sets no rule uses). New sets and
//     chains are complete before anything jumps to them; an endpoint moving
//     to another profile is added to the new dispatch set before it leaves
//     the old one. There is no moment of open traffic, on restart either.
//   - Chains and sets of others are never declared, flushed or read
//     beyond iptables-save and ipset save output; only chains named
//     ChainPrefix-* and sets named SetPrefix-* are ours.
//   - Source validation (an endpoint with an Interface sends from its own
//     addresses only) runs in the raw table, before connection tracking,
//     with the same read-back, drift and cleanup as the filter chains; its
//     layout and costs are in guard.go.
//   - Sync reads our chains (iptables-save -t filter and -t raw, both families) and
//     sets (ipset save) back, rewrites only the chains whose rules differ
//     from what it renders (rules are rendered exactly as iptables-save
//     prints them, so a comparison is a string comparison), adds and
//     deletes only the members that differ, lists the drift from the
//     state it last programmed in Repairs, and counts what it changed in
//     Changes: zero when everything was in place.
//   - Apply of a label change is one ipset restore of a few members; a new
//     endpoint whose profile exists is one member per address; a changed
//     rule list rewrites that list's chain only.
//   - Errors are detected by exit codes (CommandError), never by the text
//     of stderr. A failed Apply leaves the backend needing a Sync.
//   - Our jumps are the first rules of FORWARD and INPUT. Sync reads their
//     position from iptables-save; a rule another component inserted before
//     one (say `-I FORWARD 1 … -j ACCEPT`, which would decide before our
//     checks) is reported in Repairs, and our jump is deleted and inserted
//     first again in the same iptables-restore transaction; the other rule
//     stays, after ours.
//   - A set of ours that the kernel holds with another type or family is
//     replaced within the Sync (as the nftables backend does): a stand-in
//     set of the right type and members is filled, our chains that
//     reference the old set are rewritten to use the stand-in in one
//     transaction, the old set is destroyed and created again, the chains
//     go back to it, and the stand-in is destroyed. No rule is ever without
//     its set; Repairs names each set replaced.
//   - Cleanup removes the entry rules, our chains and our sets, and
//     succeeds when there is nothing to remove.
//   - Counters (backend.CounterReader) runs iptables-save -c and
//     ip6tables-save -c of the filter table, never ipset, and maps each
//     rule's counters to the policy rule its comment names; a rule of
//     someone else's (an NFLOG rule) or one whose comment was cut is never
//     attributed. It holds the backend's lock only to pick the binaries,
//     so it never delays a Sync or Apply (BenchmarkCounters, 10k endpoints,
//     2 loaded cores: iptables-nft 1.4 s at 1k policies and 13 s at 10k,
//     beside a no-op Sync of 1.2 s and 15 s; iptables-legacy 0.31 s and 4.6
//     s, beside 0.64 s and 6.4 s).
//
// # Verdict log
//
// With Config.Log (package verdictlog), a rule that decides a new
// connection and is to be logged (every Deny rule, the end of an isolated
// NetworkPolicy tier, and Allow rules as Logging and ir.RuleList.LogAllowed
// ask) is preceded by a copy of its matches with `-m hashlimit
// --hashlimit-upto N/sec --hashlimit-burst N --hashlimit-name
// <prefix>-log -j NFLOG --nflog-prefix "pal:..." --nflog-group G` (see
// vlog.go). Every logging rule names the same hashlimit table, which has no
// mode: one bucket, so the budget is per node and IP family, whatever the
// number of rules. NFLOG does not end the chain; the verdict rule after it
// decides. The rules are kept as iptables-save prints them, so drift
// checks, repairs and Cleanup treat them like any other of ours. The
// kernel keeps a hashlimit table's first settings while any rule uses it:
// a new --log-rate takes effect once no rule of the old one is left (a
// restart with logging off, then on).
//
// # Variant and dependencies
//
// ModeAuto counts the rules iptables-legacy-save and iptables-nft-save
// print (both families) and uses the variant that holds more, as
// Kubernetes' iptables wrapper does, since every component of a node must
// use the variant in use; a tie goes to the one `iptables --version`
// names.
//
// github.com/coreos/go-iptables is not used. What it offers here, listing
// a chain, inserting and deleting a rule, and the version, is one command
// per call, run in the namespace of the calling thread, with no way to
// inject a command runner: every call would need a thread switched into
// the namespace, unit tests could not fake it, and moving our jump back to
// first place would be an insert and a delete in two commands (or a delete
// by position that a concurrent insert can shift). Sync already reads
// iptables-save for its diff, which gives the position of our jumps for
// free, and iptables-restore --noflush applies the delete and the insert,
// with every chain change, as one transaction; ipset restore loads members
// in bulk. Each is one process per change whatever its size, where a
// per-rule API costs one process per rule.
//
// The mark bits are configurable (Config.AllowMark, Config.PassMark) for
// CNIs that use those bits; each is only ever set inside our chains and
// cleared before the packet leaves them, except on a DROP.
package iptables
