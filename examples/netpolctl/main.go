// Command netpolctl simulates, explains and tests Palisade's enforcement of
// Kubernetes network policy without a cluster.
//
//	netpolctl simulate -f PATH [-f PATH ...] --flows FLOWS [-o jsonl|table]
//	netpolctl simulate --steps DIR --flows FLOWS [-o jsonl|table]
//	netpolctl simulate --kubeconfig PATH [--context NAME] --flows FLOWS [-o jsonl|table]
//	netpolctl explain  (-f PATH | --kubeconfig PATH) SRC DST PORT PROTOCOL
//	netpolctl diff     (-f PATH | --kubeconfig PATH) --proposed PATH [--delete KIND/NS/NAME] [-n NS] [-l SEL] [--ports P] [--flows-from-log FILE] [-o table|jsonl]
//	netpolctl matrix   (-f PATH | --kubeconfig PATH) [-n NS... | -A] [-l SELECTOR] [--port PORT[/PROTO]]... [-o text|html|json]
//	netpolctl counters --netns PATH|--pid PID --backend nftables|iptables [-o table|jsonl]
//
// --kubeconfig reads the objects from a live cluster, listed once (in a pod,
// the in-cluster configuration is used when neither -f nor --kubeconfig is
// given); the same engine decides, with the same output.
//
// PATH is a YAML/JSON file or a directory of them (Namespaces, Pods, Nodes,
// NetworkPolicies, ClusterNetworkPolicies, AdminNetworkPolicies,
// BaselineAdminNetworkPolicies, Lists). FLOWS has one "SRC DST PORT PROTOCOL" per line,
// SRC/DST being namespace/pod or an IP literal.
package main

import (
	"errors"
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
	root.AddCommand(simulateCmd(), explainCmd(), labCmd(), renderCmd(), benchCmd(), diffCmd(), matrixCmd(), countersCmd())
	cmd, err := root.ExecuteC()
	var code exitCode
	switch {
	case errors.As(err, &code):
		os.Exit(int(code))
	case err != nil && cmd.Name() == "diff":
		fmt.Fprintln(os.Stderr, "netpolctl:", err)
		os.Exit(diffTrouble)
	case err != nil:
		fmt.Fprintln(os.Stderr, "netpolctl:", err)
		os.Exit(1)
	}
}
