package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/reach"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/examples/internal/source"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

func explainCmd() *cobra.Command {
	var src source.Flags
	cmd := &cobra.Command{
		Use:   "explain (-f PATH | --kubeconfig PATH) SRC DST PORT PROTOCOL",
		Short: "Explain the verdict of one flow: every policy at each end and how each rule fared",
		Long: `explain decides one flow with the in-memory reference evaluator and prints, at each
end, every policy that applies, tier by tier, and how each of its rules fared.
The objects come from files (-f) or from a live cluster (--kubeconfig, or the
in-cluster configuration in a pod), listed once. Against a live cluster, a pod
named by SRC or DST that does not exist is an error.`,
		Example: `  netpolctl explain -f examples/demo shop/web-1 shop/db-0 6379 TCP
  netpolctl explain -f examples/demo 203.0.113.7 shop/web-1 8080 TCP
  netpolctl explain --kubeconfig ~/.kube/config shop/web-1 shop/db-0 6379 TCP`,
		Args: cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, err := flows.Parse("arguments", strings.NewReader(strings.Join(args, " ")))
			if err != nil {
				return err
			}
			if len(fl) == 0 { // the arguments were a comment: "#..."
				return fmt.Errorf("arguments: want SRC DST PORT PROTOCOL, got %q", strings.Join(args, " "))
			}
			src.Warn = stderrWarn(cmd)
			st, err := src.Load(cmd.Context())
			if err != nil {
				return err
			}
			if src.Live() {
				for _, end := range []flows.End{fl[0].Src, fl[0].Dst} {
					if end.Name != "" && st.Pod(end.Namespace, end.Name) == nil {
						return fmt.Errorf("pod %s not found in %s", end, src.Describe())
					}
				}
			}
			mem, err := reach.Compile(st, stderrWarn(cmd))
			if err != nil {
				return err
			}
			return explain(cmd.OutOrStdout(), st, mem, fl[0])
		},
	}
	src.Register(cmd.Flags())
	return cmd
}

func explain(w io.Writer, st *manifest.State, mem *memory.Backend, f flows.Flow) error {
	r := flows.Resolve(st, f)
	head := fmt.Sprintf("%s -> %s %s/%d", f.Src, f.Dst, f.Protocol, f.Port)
	if r.Absent != "" {
		fmt.Fprintf(w, "%s: DENY (%s: no packet can be sent)\n", head, r.Absent)
		return nil
	}
	fmt.Fprintf(w, "%s (%s -> %s)", head, r.SrcIP, r.DstIP)
	if sim.NodeLocal(r) {
		fmt.Fprintf(w, ": ALLOW (from a hostNetwork pod, i.e. its node, to a pod on the same node: always allowed)\n")
		return nil
	}
	v, traces := mem.Explain(memory.Flow{Src: r.SrcIP, Dst: r.DstIP, Protocol: f.Protocol, Port: f.Port})
	verdict := "DENY"
	if v.Allowed {
		verdict = "ALLOW"
	}
	fmt.Fprintf(w, ": %s\n", verdict)
	if v.Reason != "" {
		fmt.Fprintf(w, "  %s\n", v.Reason)
		return nil
	}
	sets := map[string]string{}
	for _, s := range mem.Snapshot().AddressSets {
		sets[s.ID] = s.Description
	}
	for _, end := range []struct {
		dir  ir.Direction
		name string
		d    memory.Decision
	}{{ir.Egress, f.Src.String(), v.Egress}, {ir.Ingress, f.Dst.String(), v.Ingress}} {
		var mine []memory.ListTrace
		for _, lt := range traces {
			if lt.Direction == end.dir {
				mine = append(mine, lt)
			}
		}
		fmt.Fprintf(w, "\n%s at %s: %s\n", end.dir, end.name, sim.Describe(end.d, mine))
		if end.d.Endpoint == "" {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if len(mine) > 0 {
			fmt.Fprintln(tw, "  TIER\tPOLICY\tRULE\tACTION\tPEER\tPORT\tDETAIL")
		}
		passed := map[ir.TierKind]bool{} // a Pass left the tier
		for _, lt := range mine {
			if len(lt.Rules) == 0 {
				fmt.Fprintf(tw, "  %s\t%s\t-\t-\t-\t-\tno rules for %s: isolates only\n", lt.Tier, lt.Origin, strings.ToLower(string(end.dir)))
				continue
			}
			// In a first-match tier, the first matching rule of a list decides.
			firstMatch, decided := lt.Tier.FirstMatch(), false
			skipped := !lt.Evaluated && passed[lt.Tier]
			for _, rt := range lt.Rules {
				detail := "matches"
				switch {
				case skipped:
					detail = "not reached (a Pass left the " + string(lt.Tier) + " tier)"
				case !lt.Evaluated:
					detail = "not reached (decided earlier)"
				case !rt.PeerMatched:
					detail = "peer not in " + peers(rt.Rule, sets)
				case !rt.PortMatched:
					detail = "port not in " + ports(rt.Rule)
				case !firstMatch:
				case decided:
					detail = "not reached (an earlier rule of this policy decided)"
				case rt.Rule.Action == ir.Pass:
					detail = "matches: Pass, the rest of the " + string(lt.Tier) + " tier is skipped"
					passed[lt.Tier], decided = true, true
				default:
					detail = "matches: decides"
					decided = true
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", lt.Tier, lt.Origin, sim.RuleName(rt.Rule), rt.Rule.Action, mark(rt.PeerMatched), mark(rt.PortMatched), detail)
			}
		}
		if len(mine) == 0 {
			fmt.Fprintf(tw, "  no policy selects %s for %s\n", end.name, strings.ToLower(string(end.dir)))
		}
		tw.Flush()
	}
	return nil
}

func mark(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func peers(r ir.Rule, sets map[string]string) string {
	var out []string
	for _, id := range r.Peers {
		out = append(out, "["+sets[id]+"]")
	}
	if len(out) == 0 {
		return "(no valid peer)"
	}
	return strings.Join(out, " or ")
}

func ports(r ir.Rule) string {
	var out []string
	for _, p := range r.Ports {
		out = append(out, memory.FormatPort(p))
	}
	return strings.Join(out, ",")
}

// loadEngine reads the files into a new engine, printing validation
// problems as warnings (the objects apply in their safe form).
func loadEngine(cmd *cobra.Command, files []string, cfg policy.Config) (policy.Engine, *manifest.State, error) {
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no input: give -f PATH")
	}
	st, err := manifest.Load(files...)
	if err != nil {
		return nil, nil, err
	}
	return sim.Compile(st, cfg, stderrWarn(cmd)), st, nil
}

// stderrWarn prints warnings on the command's standard error.
func stderrWarn(cmd *cobra.Command) func(string) {
	return func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) }
}
