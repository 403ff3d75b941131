package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/examples/internal/source"
	"github.com/palisade-net/palisade/policy"
)

// inputFlags are the inputs shared by simulate and lab.
type inputFlags struct {
	in     sim.Input
	output string
	// src reads a live cluster too, when live is set (simulate).
	src  source.Flags
	live bool
}

func (f *inputFlags) register(cmd *cobra.Command) {
	if f.live {
		f.src.Register(cmd.Flags())
	} else {
		cmd.Flags().StringArrayVarP(&f.in.Files, "filename", "f", nil, "YAML/JSON file or directory of cluster objects (repeatable)")
	}
	cmd.Flags().StringVar(&f.in.StepsDir, "steps", "", "directory of steps (00.yaml, 01.yaml, ...), each a complete cluster state")
	cmd.Flags().StringVar(&f.in.FlowsFile, "flows", "", "flow file: one \"SRC DST PORT PROTOCOL\" per line")
	cmd.Flags().StringVarP(&f.output, "output", "o", "jsonl", "output format: jsonl or table")
	cmd.Flags().BoolVar(&f.in.Strict, "strict", false, "treat a policy of any kind that fails validation as an error (default: warn and apply it in its safe form)")
}

// load reads the steps (files, a directory of steps, or a live cluster
// when the command takes one) and the flows.
func (f *inputFlags) load(ctx context.Context, warn func(string)) ([]sim.Step, []flows.Flow, error) {
	// In a pod, --steps without --kubeconfig reads the steps, not the
	// cluster.
	if !f.live || !f.src.Live() || (f.in.StepsDir != "" && f.src.Kubeconfig == "") {
		f.in.Files = append(f.in.Files, f.src.Files...)
		return f.in.Load()
	}
	if f.in.StepsDir != "" {
		return nil, nil, fmt.Errorf("give either --steps or a live cluster (--kubeconfig), not both")
	}
	if f.in.FlowsFile == "" {
		return nil, nil, fmt.Errorf("no flows: give --flows FILE")
	}
	fl, err := flows.ReadFile(f.in.FlowsFile)
	if err != nil {
		return nil, nil, err
	}
	f.src.Warn = warn
	st, err := f.src.Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	return []sim.Step{{Index: 0, Name: f.src.Describe(), State: st}}, fl, nil
}

func (f *inputFlags) writer(w io.Writer) (func([]sim.Result) error, func() error, error) {
	switch f.output {
	case "jsonl":
		enc := json.NewEncoder(w)
		return func(rs []sim.Result) error {
			for _, r := range rs {
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			return nil
		}, func() error { return nil }, nil
	case "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STEP\tSRC\tDST\tPORT\tPROTO\tVERDICT\tWHY")
		return func(rs []sim.Result) error {
			for _, r := range rs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Step, r.Src, r.Dst, r.Port, r.Protocol, r.Verdict, why(r))
			}
			return nil
		}, tw.Flush, nil
	}
	return nil, nil, fmt.Errorf("--output %q: want jsonl or table", f.output)
}

// why summarizes a result's trace in one cell.
func why(r sim.Result) string {
	if r.Conn != "" {
		return r.Conn + " connection: " + r.Reason
	}
	if r.Reason != "" {
		return r.Reason
	}
	return "egress: " + r.Egress + "; ingress: " + r.Ingress
}

func simulateCmd() *cobra.Command {
	f := inputFlags{live: true}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Decide flows with the in-memory reference evaluator",
		Long: `simulate loads cluster objects, compiles them with the policy engine and decides
every flow with the in-memory backend. With --steps, each step's state reaches the
engine as add/update/delete events and the flows are decided after every step.
With --kubeconfig (or the in-cluster configuration in a pod, when -f and --steps
are not given), the objects are listed once from the live cluster (one step).
Output: one JSON object per flow and step (jsonl), or a table for people.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			emit, flush, err := f.writer(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			warn := stderrWarn(cmd)
			steps, fl, err := f.load(cmd.Context(), warn)
			if err != nil {
				return err
			}
			mem := memory.New(memory.Config{})
			if err := sim.Run(context.Background(), f.in, steps, fl, []sim.Node{{Engine: policy.New(policy.Config{}), Backend: mem}}, sim.MemoryProber{Backend: mem}, warn, emit); err != nil {
				return err
			}
			return flush()
		},
	}
	f.register(cmd)
	return cmd
}
