package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/palisade-net/palisade/examples/internal/bench"
)

func benchCmd() *cobra.Command {
	cfg := bench.Default()
	var verbose bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the engine, the nftables backend and the datapath on a synthetic cluster; print JSON",
		Long: `bench generates a synthetic cluster and prints one JSON object of figures, each
measured beside its baseline in the same run:

  engine    full compile (every pod local) time and live heap, beside the same pods
            with no policy; one node's view; one pod's label change (UpsertPod + Delta).
  backend   (--backend nftables, root) in a lab node namespace: cold Sync, no-op
            resync, Apply of a one-pod change at this size and at 10x the pods
            (within --large-budget), beside the cold Sync with no policy.
  datapath  (--datapath, root) first-packet latency and new connections per second
            between two real pods on a lab node, each measured interleaved with the
            same between two pods on a second lab node with no filter: with no table
            (the method's error), connection tracking only, the backend with no
            policy, and each --datapath-policies count.

Without root the backend and datapath sections say why they were skipped. All
kernel state lives in the lab's namespaces and is removed on exit, error or Ctrl-C.`,
		Example: `  netpolctl bench --backend none
  sudo netpolctl bench --pods 10000 --namespaces 500 --policies 1000 --datapath --datapath-policies 0,1000,10000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if verbose {
				cfg.Progress = cmd.ErrOrStderr()
			}
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := bench.Run(ctx, cfg)
			if err != nil {
				if ctx.Err() != nil && errors.Is(err, context.Canceled) {
					return fmt.Errorf("interrupted (everything the run created is removed): %w", err)
				}
				return err
			}
			return writeJSON(cmd.OutOrStdout(), rep)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Pods, "pods", cfg.Pods, "synthetic pods")
	f.IntVar(&cfg.Namespaces, "namespaces", cfg.Namespaces, "synthetic namespaces")
	f.IntVar(&cfg.Policies, "policies", cfg.Policies, "synthetic NetworkPolicies")
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "nodes the pods are spread over (the node view is node-0's)")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the synthetic cluster")
	f.StringVar(&cfg.Backend, "backend", cfg.Backend, "backend to measure: nftables (root) or none")
	f.IntVar(&cfg.Changes, "changes", cfg.Changes, "one-pod label changes timed (engine and backend)")
	f.DurationVar(&cfg.LargeBudget, "large-budget", cfg.LargeBudget, "time allowed for the backend run at 10x the pods; less than 10x when it would not fit")
	f.BoolVar(&cfg.Datapath, "datapath", cfg.Datapath, "measure first-packet latency and connection rate between two real pods (root)")
	f.IntSliceVar(&cfg.DatapathPolicies, "datapath-policies", cfg.DatapathPolicies, "policy counts of the datapath runs")
	f.IntVar(&cfg.DatapathSamples, "datapath-samples", cfg.DatapathSamples, "latency rounds (one connect on each node) per run")
	f.IntVar(&cfg.DatapathParallel, "datapath-parallel", cfg.DatapathParallel, "workers connecting in a loop for the connection rate")
	f.DurationVar(&cfg.DatapathDuration, "datapath-duration", cfg.DatapathDuration, "connection-rate time per side and run")
	f.BoolVar(&cfg.DatapathVerdictLog, "datapath-verdict-log", false, "with --datapath: also measure with the kernel verdict log off, deny and all (every new connection logged), at the largest policy count")
	f.BoolVarP(&verbose, "verbose", "v", false, "progress lines on stderr")
	return cmd
}

// cmdContext is the command's context, or Background when run without one.
func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
