package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/examples/internal/sim"
)

// counterRecord is one line of counters output: a policy's sum per
// direction and action (scope "policy"), one rule ("rule"), a tier's
// default verdict ("default"), or what could not be attributed
// ("unattributed").
type counterRecord struct {
	Scope     string `json:"scope"`
	Tier      string `json:"tier,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Policy    string `json:"policy,omitempty"`
	Direction string `json:"direction,omitempty"`
	Rule      *int   `json:"rule,omitempty"`
	RuleName  string `json:"rule_name,omitempty"`
	Action    string `json:"action,omitempty"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
}

// counterRecords flattens c: per policy (or per rule with perRule), then
// the defaults, then the unattributed counts when there are any.
func counterRecords(c backend.Counters, perRule bool) []counterRecord {
	var out []counterRecord
	if perRule {
		for _, r := range c.Rules {
			idx := r.Index
			out = append(out, counterRecord{Scope: "rule", Tier: string(r.Tier), Kind: r.Origin.Kind, Namespace: r.Origin.Namespace,
				Policy: r.Origin.Name, Direction: strings.ToLower(string(r.Direction)), Rule: &idx, RuleName: r.Name,
				Action: strings.ToLower(string(r.Action)), Packets: r.Packets, Bytes: r.Bytes})
		}
	} else {
		for _, p := range c.PerPolicy() {
			out = append(out, counterRecord{Scope: "policy", Tier: string(p.Tier), Kind: p.Origin.Kind, Namespace: p.Origin.Namespace,
				Policy: p.Origin.Name, Direction: strings.ToLower(string(p.Direction)), Action: strings.ToLower(string(p.Action)),
				Packets: p.Packets, Bytes: p.Bytes})
		}
	}
	for _, d := range c.Defaults {
		out = append(out, counterRecord{Scope: "default", Tier: string(d.Tier), Direction: strings.ToLower(string(d.Direction)),
			Action: strings.ToLower(string(d.Action)), Packets: d.Packets, Bytes: d.Bytes})
	}
	if c.Unattributed != (backend.Count{}) {
		out = append(out, counterRecord{Scope: "unattributed", Packets: c.Unattributed.Packets, Bytes: c.Unattributed.Bytes})
	}
	return out
}

// writeCounters prints records as JSON lines or as a table. With nodes
// (the lab node of each record), a JSON line is {"node":N,"counters":{...}}
// and the table has a NODE column.
func writeCounters(w io.Writer, format string, recs []counterRecord, nodes []int) error {
	switch format {
	case "jsonl":
		enc := json.NewEncoder(w)
		for i, r := range recs {
			var v any = r
			if nodes != nil {
				v = struct {
					Node     int           `json:"node"`
					Counters counterRecord `json:"counters"`
				}{nodes[i], r}
			}
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	case "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		head := "SCOPE\tTIER\tPOLICY\tDIRECTION\tRULE\tACTION\tPACKETS\tBYTES"
		if nodes != nil {
			head = "NODE\t" + head
		}
		fmt.Fprintln(tw, head)
		for i, r := range recs {
			pol := r.Kind
			if r.Namespace != "" {
				pol += "/" + r.Namespace
			}
			if r.Policy != "" {
				pol += "/" + r.Policy
			}
			rule := ""
			if r.Rule != nil {
				rule = strconv.Itoa(*r.Rule)
				if r.RuleName != "" {
					rule += " " + strconv.Quote(r.RuleName)
				}
			}
			if nodes != nil {
				fmt.Fprintf(tw, "%d\t", nodes[i])
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.Scope, dash(r.Tier), dash(pol), dash(r.Direction), dash(rule), dash(r.Action), r.Packets, r.Bytes)
		}
		return tw.Flush()
	}
	return fmt.Errorf("--output %q: want jsonl or table", format)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseDetail reads --detail.
func parseDetail(s string) (perRule bool, err error) {
	switch s {
	case "policy":
		return false, nil
	case "rule":
		return true, nil
	}
	return false, fmt.Errorf("--detail %q: want policy or rule", s)
}

// printLabCounters prints, after a lab run, each lab node's counters: as
// JSON lines {"node":i,"counters":{...}} after the flow lines, or as a
// table.
func printLabCounters(ctx context.Context, w io.Writer, format string, perRule bool, backends []backend.Backend) error {
	var all []counterRecord
	var nodes []int
	for i, be := range backends {
		cr, ok := backend.As[backend.CounterReader](be)
		if !ok {
			return fmt.Errorf("lab node %d: the backend cannot read counters", i)
		}
		c, err := cr.Counters(ctx)
		if err != nil {
			return fmt.Errorf("lab node %d: %w", i, err)
		}
		for _, r := range counterRecords(c, perRule) {
			all = append(all, r)
			nodes = append(nodes, i)
		}
	}
	if format == "table" {
		fmt.Fprintln(w) // after the flows' table
	}
	return writeCounters(w, format, all, nodes)
}

func countersCmd() *cobra.Command {
	var netnsPath, backendName, table, output, detail string
	var pid int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "counters",
		Short: "Print the packet filter's per-policy counters of a node (root)",
		Long: `counters reads the packet and byte counters of the rules Palisade programmed in
a network namespace (--netns PATH, or --pid PID for /proc/PID/ns/net) and
prints them per policy, direction and action (--detail policy) or per rule
(--detail rule), then the isolated endpoints' default denies. The rules are
mapped to their policies by the comments the backend wrote on them; no API
server and no policy files are needed. A rule whose comment could not be
mapped back (cut to the kernel's comment limit, say) is counted in one
"unattributed" line. Reading changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			perRule, err := parseDetail(detail)
			if err != nil {
				return err
			}
			switch {
			case (netnsPath == "") == (pid == 0):
				return fmt.Errorf("give exactly one of --netns PATH and --pid PID")
			case pid < 0:
				return fmt.Errorf("--pid %d: want a process id", pid)
			case pid > 0:
				netnsPath = fmt.Sprintf("/proc/%d/ns/net", pid)
			}
			if output != "jsonl" && output != "table" {
				return fmt.Errorf("--output %q: want jsonl or table", output)
			}
			if backendName != "nftables" && backendName != "iptables" {
				return fmt.Errorf("--backend %q: want nftables or iptables", backendName)
			}
			f, err := os.Open(netnsPath)
			if err != nil {
				return fmt.Errorf("network namespace: %w", err)
			}
			defer f.Close()
			var cr backend.CounterReader
			switch backendName {
			case "nftables":
				be, err := nftables.New(nftables.Config{NetNS: int(f.Fd()), TableName: table})
				if err != nil {
					return err
				}
				defer be.Close()
				cr = be
			default:
				be, err := iptables.New(iptables.Config{NetNS: int(f.Fd())})
				if err != nil {
					return err
				}
				defer be.Close()
				cr = be
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			c, err := cr.Counters(ctx)
			if err != nil {
				return err
			}
			return writeCounters(cmd.OutOrStdout(), output, counterRecords(c, perRule), nil)
		},
	}
	cmd.Flags().StringVar(&netnsPath, "netns", "", "network namespace of the node, as a path (e.g. /proc/PID/ns/net, /run/netns/NAME)")
	cmd.Flags().IntVar(&pid, "pid", 0, "a process in the node's network namespace")
	cmd.Flags().StringVar(&backendName, "backend", "nftables", "backend that programmed the node: nftables or iptables")
	cmd.Flags().StringVar(&table, "table", nftables.DefaultTableName, "nftables table name (the agent's --table-name)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or jsonl")
	cmd.Flags().StringVar(&detail, "detail", "policy", "policy (per policy, direction and action) or rule (per rule)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long the read may take")
	return cmd
}

// nodeBackends returns the backends of the lab's nodes.
func nodeBackends(nodes []sim.Node) []backend.Backend {
	out := make([]backend.Backend, len(nodes))
	for i, n := range nodes {
		out[i] = n.Backend
	}
	return out
}
