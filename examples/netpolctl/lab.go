package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/policy"
)

func labCmd() *cobra.Command {
	var f inputFlags
	var backendName string
	var nodes int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Decide flows with real packets through a real kernel (root)",
		Long: `lab builds network namespaces for one or two nodes and every pod (routed veths,
the pods' own addresses, external hosts for IP literals), programs the backend
inside each node namespace from that node's engine (a full Sync at the first
step, deltas after), and probes every flow with TCP, UDP or SCTP packets.
Nodes named by the pods and Node objects are spread over the lab's nodes in
lexical order; each Node object's InternalIP becomes its lab node's address
(for the nodes peers of cluster-wide policies), and a flow to a Node's
InternalIP goes to that lab node.
Output is that of simulate. Everything is removed on exit, error or Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return fmt.Errorf("lab needs root: it creates network namespaces and packet filters")
			}
			if nodes != 1 && nodes != 2 {
				return fmt.Errorf("--nodes %d: want 1 or 2", nodes)
			}
			emit, flush, err := f.writer(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			steps, fl, err := f.in.Load()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := lab.New(ctx, lab.Config{Nodes: nodes, ProbeTimeout: timeout})
			if err != nil {
				return err
			}
			defer l.Close()

			warn := func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) }
			place := sim.NewPlacement(steps, nodes)
			for _, w := range place.UseLabAddresses(steps, l.NodeIPs) {
				warn("warning: " + w)
			}
			var labNodes []sim.Node
			for i := range nodes {
				ns, err := l.NodeNS(i)
				if err != nil {
					return err
				}
				var cfg policy.Config
				if nodes > 1 {
					cfg.IsLocal = place.IsLocal(i)
				}
				switch backendName {
				case "nftables":
					be, err := nftables.New(nftables.Config{NetNS: int(ns)})
					if err != nil {
						return err
					}
					defer be.Close()
					labNodes = append(labNodes, sim.Node{Engine: policy.New(cfg), Backend: be})
				case "iptables":
					be, err := iptables.New(iptables.Config{NetNS: int(ns)})
					if err != nil {
						return err
					}
					defer be.Close()
					labNodes = append(labNodes, sim.Node{Engine: policy.New(cfg), Backend: be})
				default:
					return fmt.Errorf("--backend %q: want nftables or iptables", backendName)
				}
			}
			pr := &sim.LabProber{Lab: l, Placement: place, Flows: fl}
			if err := sim.Run(ctx, f.in, steps, fl, labNodes, pr, warn, emit); err != nil {
				return err
			}
			return flush()
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&backendName, "backend", "nftables", "backend to program in each lab node: nftables or iptables")
	cmd.Flags().IntVar(&nodes, "nodes", 1, "lab nodes: 1 or 2")
	cmd.Flags().DurationVar(&timeout, "probe-timeout", 0, "how long a probe waits for an answer (default the lab's, 400ms)")
	return cmd
}
