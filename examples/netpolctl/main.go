// Command netpolctl simulates, explains and tests Palisade's enforcement of
// Kubernetes network policy without a cluster.
//
//	netpolctl simulate -f PATH [-f PATH ...] --flows FLOWS [-o jsonl|table]
//	netpolctl simulate --steps DIR --flows FLOWS [-o jsonl|table]
//	netpolctl explain  -f PATH --flow "SRC DST PORT PROTOCOL"
//	netpolctl counters --netns PATH|--pid PID --backend nftables|iptables [-o table|jsonl]
//
// PATH is a YAML/JSON file or a directory of them (Namespaces, Pods, Nodes,
// NetworkPolicies, ClusterNetworkPolicies, AdminNetworkPolicies,
// BaselineAdminNetworkPolicies, Lists). FLOWS has one "SRC DST PORT PROTOCOL" per line,
// SRC/DST being namespace/pod or an IP literal.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "netpolctl",
		Short:         "Simulate, explain and test Kubernetes network policy enforcement",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(simulateCmd(), explainCmd(), labCmd(), renderCmd(), benchCmd(), countersCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "netpolctl:", err)
		os.Exit(1)
	}
}
