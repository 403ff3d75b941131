package verdictlog

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Record is one verdict of the kernel's log, as the Reader emits it and as
// it is written: one JSON object per line, with exactly these fields, in
// this order:
//
//	{"time":"2026-12-03T18:00:00.123456789Z","node":"node-a","src":"shop/web-1",
//	 "dst":"shop/db-0","port":6379,"protocol":"TCP","verdict":"deny",
//	 "tier":"NetworkPolicy","policy":"","rule":"isolated"}
//
// The schema is stable: tools (netpolctl diff --flows-from-log) read these
// files. A field is never left out; an unknown value is the empty string.
type Record struct {
	// Time is when the reader received the record, RFC 3339 with
	// nanoseconds, UTC.
	Time time.Time `json:"time"`
	// Node is the name of the node whose kernel logged the verdict.
	Node string `json:"node"`
	// Src and Dst are the two ends of the connection's first packet:
	// "namespace/pod" when the address is a pod's in the embedder's
	// current view, else the IP address ("10.0.0.1", "fd00::1").
	Src string `json:"src"`
	Dst string `json:"dst"`
	// Port is the destination port (TCP, UDP, SCTP), 0 for other protocols.
	Port uint16 `json:"port"`
	// Protocol is "TCP", "UDP", "SCTP", "ICMP", "ICMPv6", or
	// "proto-<number>" for any other IP protocol.
	Protocol string `json:"protocol"`
	// Verdict is "allow" or "deny".
	Verdict string `json:"verdict"`
	// Tier is the tier that decided: "Admin", "NetworkPolicy" or "Baseline".
	Tier string `json:"tier"`
	// Policy names the deciding object as "Kind/namespace/name" (or
	// "Kind/name" when cluster-scoped), e.g. "NetworkPolicy/shop/db",
	// "AdminNetworkPolicy/deny-all". It is empty when no single object
	// decided: a pod isolated by the NetworkPolicy tier whose policies have
	// no matching rule (Rule is then "isolated"), or a rule list the reader
	// no longer knows (Rule is then the log's list ID and rule index).
	Policy string `json:"policy"`
	// Rule is the deciding rule: its name when it has one, else its index
	// in the object's ingress or egress list, in decimal ("0", "3");
	// "isolated" for the NetworkPolicy tier's default deny.
	Rule string `json:"rule"`
}

// Verdict values of Record.Verdict.
const (
	VerdictAllow = "allow"
	VerdictDeny  = "deny"
)

// RuleIsolated is Record.Rule for the NetworkPolicy tier's default deny.
const RuleIsolated = "isolated"

// WriteJSON writes r as one line of JSON to w.
func WriteJSON(w io.Writer, r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("verdictlog: encode record: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
