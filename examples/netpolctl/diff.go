package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/reach"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/examples/internal/source"
)

// Exit codes of netpolctl diff, as diff(1)'s: 0 when no verdict changes,
// diffChanged when some does, diffTrouble on bad input or an unreachable
// API server.
const (
	diffChanged = 1
	diffTrouble = 2
)

// exitCode ends the process with a code and no message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// diffLine is one changed flow as diff prints it.
type diffLine struct {
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
	// PortName is the destination container port's name, if any.
	PortName string `json:"portName,omitempty"`
	// Before and After are the verdicts, allow or deny.
	Before string `json:"before"`
	After  string `json:"after"`
	// BeforeBy and AfterBy name what decided: for a denied flow the end
	// that denied, for an allowed one both ends (tier, policy, rule).
	BeforeBy string `json:"beforeBy"`
	AfterBy  string `json:"afterBy"`
	// Count (log replay only) is how many log records named the flow;
	// LoggedAllow and LoggedDeny how many logged each verdict.
	Count       int `json:"count,omitempty"`
	LoggedAllow int `json:"loggedAllow,omitempty"`
	LoggedDeny  int `json:"loggedDeny,omitempty"`
}

func diffCmd() *cobra.Command {
	var (
		src                  source.Flags
		proposed, deletes    []string
		namespaces           []string
		selector, ports, out string
		logFile              string
	)
	cmd := &cobra.Command{
		Use:   "diff (-f PATH | --kubeconfig PATH) (--proposed PATH | --delete KIND/NS/NAME)...",
		Short: "List the flows whose verdict a proposed change of policy would change",
		Long: `diff compares the verdicts of the current objects (files or a live cluster) with
those of the same objects once the proposed ones are applied, and lists every flow
whose verdict changes, both ways (allow->deny, deny->allow), with what decided it
before and after (tier, policy and rule at the end that decides).

The proposal: each object of --proposed files replaces the current object of the
same kind, namespace and name, or is added. To delete one, write it with only its
kind, apiVersion and metadata and the annotation
  netpolctl.palisade.dev/delete: "true"
or give --delete KIND/NAMESPACE/NAME (KIND/NAME for cluster-scoped kinds), e.g.
--delete networkpolicy/shop/web-ingress. Deleting an object that does not exist
is an error.

The flows: every ordered pair of distinct selected pods (-n, -l; all running
pods with an IP by default, hostNetwork pods excluded), at each port of --ports,
or else at each of the destination's container ports. With --flows-from-log,
the flows are instead those of a verdict log (one JSON record per line, the
node agent's format), deduplicated by src, dst, port and protocol and counted:
which connections seen in production the change would break or open.

Output: a table (default) or one JSON object per changed flow (-o jsonl); a
summary goes to standard error. Exit status: 0 no verdict changes, 1 some
change, 2 trouble (bad input, unreachable API server).`,
		Example: `  netpolctl diff -f examples/demo --proposed new-policy.yaml
  netpolctl diff --kubeconfig ~/.kube/config --delete networkpolicy/shop/web-ingress -n shop
  netpolctl diff --kubeconfig ~/.kube/config --proposed deny.yaml --flows-from-log verdicts.jsonl -o jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out != "table" && out != "jsonl" {
				return fmt.Errorf("--output %q: want table or jsonl", out)
			}
			if len(proposed) == 0 && len(deletes) == 0 {
				return errors.New("nothing proposed: give --proposed PATH or --delete KIND/NAMESPACE/NAME")
			}
			if logFile != "" && (len(namespaces) > 0 || selector != "" || ports != "") {
				return errors.New("--flows-from-log replays the log's flows: -n, -l and --ports do not apply")
			}
			sel, err := reach.NewSelection(namespaces, selector, ports)
			if err != nil {
				return err
			}
			del := map[string]string{}
			var errs []error
			for _, d := range deletes {
				k, err := manifest.ParseDelete(d)
				errs = append(errs, err)
				del[k] = "--delete " + d
			}
			var prop *manifest.State
			if len(proposed) > 0 {
				prop, err = manifest.Load(proposed...)
				errs = append(errs, err)
			} else {
				prop = &manifest.State{}
			}
			var logged []reach.Logged
			var stats reach.LogStats
			if logFile != "" {
				logged, stats, err = reach.ReadVerdictLogFile(logFile)
				errs = append(errs, err)
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			warn := stderrWarn(cmd)
			src.Warn = warn
			cur, err := src.Load(cmd.Context())
			if err != nil {
				return err
			}
			next, err := manifest.Propose(cur, prop, del)
			if err != nil {
				return err
			}
			before, err := evaluator(cur, nil)
			if err != nil {
				return err
			}
			after, err := evaluator(next, warn)
			if err != nil {
				return err
			}
			var fl iter.Seq[reach.Flow]
			byFlow := map[string]reach.Logged{}
			n := 0
			if logFile != "" {
				for _, l := range logged {
					byFlow[flowKey(l.Flow)] = l
				}
				fl = func(yield func(reach.Flow) bool) {
					for _, l := range logged {
						n++
						if !yield(l.Flow) {
							return
						}
					}
				}
			} else {
				fl = func(yield func(reach.Flow) bool) {
					for f := range reach.FlowsOfBoth(cur, next, sel) {
						n++
						if !yield(f) {
							return
						}
					}
				}
			}
			changes := reach.Diff(before, after, fl)
			lines := make([]diffLine, len(changes))
			for i, c := range changes {
				lines[i] = diffLine{
					Src: c.Flow.Src.String(), Dst: c.Flow.Dst.String(), Port: c.Flow.Port, Protocol: c.Flow.Protocol.String(),
					PortName: c.Flow.PortName, Before: c.Before.Result.Verdict, After: c.After.Result.Verdict,
					BeforeBy: c.Before.By(), AfterBy: c.After.By(),
				}
				if l, ok := byFlow[flowKey(c.Flow)]; ok {
					lines[i].Count, lines[i].LoggedAllow, lines[i].LoggedDeny = l.Count, l.Allowed, l.Denied
				}
			}
			if err := printDiff(cmd.OutOrStdout(), out, lines, logFile != ""); err != nil {
				return err
			}
			closed := 0
			for _, l := range lines {
				if l.After == sim.Deny {
					closed++
				}
			}
			what := fmt.Sprintf("%d flows among the selected pods", n)
			if logFile != "" {
				what = fmt.Sprintf("%d distinct flows of %d log records (%d of other protocols skipped)", n, stats.Records, stats.Skipped)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "diff: %s compared: %d change (%d allow->deny, %d deny->allow)\n",
				what, len(lines), closed, len(lines)-closed)
			if stale := staleLogged(before, logged); stale > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "diff: note: %d flows of the log were logged only with the verdict the current objects do not give "+
					"(a log older than the objects, or objects other than those the logging node enforced)\n", stale)
			}
			if len(lines) > 0 {
				return exitCode(diffChanged)
			}
			return nil
		},
	}
	src.Register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringArrayVar(&proposed, "proposed", nil, "YAML/JSON file or directory of proposed objects: new, changed, or deleted (annotation "+manifest.DeleteAnnotation+": \"true\") (repeatable)")
	fs.StringArrayVar(&deletes, "delete", nil, "delete an object: KIND/NAMESPACE/NAME, or KIND/NAME when cluster-scoped (repeatable)")
	fs.StringArrayVarP(&namespaces, "namespace", "n", nil, "only pods of this namespace (repeatable; default: every namespace)")
	fs.StringVarP(&selector, "selector", "l", "", "only pods whose labels match this selector (e.g. app=web,tier in (a,b))")
	fs.StringVar(&ports, "ports", "", "ports to try at every destination, e.g. 80,443/TCP,53/UDP (default: each destination's container ports)")
	fs.StringVar(&logFile, "flows-from-log", "", "replay the flows of this verdict log (JSON lines) instead of the selected pods' flows")
	fs.StringVarP(&out, "output", "o", "table", "output format: table or jsonl")
	return cmd
}

// staleLogged counts the logged flows whose every record says the
// opposite of what the current objects decide.
func staleLogged(cur reach.Evaluator, logged []reach.Logged) int {
	n := 0
	for _, l := range logged {
		allowed := cur.Allowed(l.Flow.Flow)
		if (allowed && l.Allowed == 0) || (!allowed && l.Denied == 0) {
			n++
		}
	}
	return n
}

// evaluator compiles st for reach.
func evaluator(st *manifest.State, warn func(string)) (reach.Evaluator, error) {
	mem, err := reach.Compile(st, warn)
	if err != nil {
		return reach.Evaluator{}, err
	}
	return reach.Evaluator{State: st, Backend: mem}, nil
}

func flowKey(f reach.Flow) string {
	return fmt.Sprintf("%s %s %d %s", f.Src, f.Dst, f.Port, f.Protocol)
}

func printDiff(w io.Writer, format string, lines []diffLine, counted bool) error {
	if format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	if len(lines) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"SRC", "DST", "PORT", "PROTO", "CHANGE", "BEFORE", "AFTER"}
	if counted {
		head = slices.Insert(head, 5, "SEEN")
	}
	for i, h := range head {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, h)
	}
	fmt.Fprintln(tw)
	for _, l := range lines {
		port := fmt.Sprint(l.Port)
		if l.PortName != "" {
			port += " (" + l.PortName + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s->%s\t", l.Src, l.Dst, port, l.Protocol, l.Before, l.After)
		if counted {
			fmt.Fprintf(tw, "%d\t", l.Count)
		}
		fmt.Fprintf(tw, "%s\t%s\n", l.BeforeBy, l.AfterBy)
	}
	return tw.Flush()
}
