package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/spf13/cobra"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/conntrack"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/policy"
)

func labCmd() *cobra.Command {
	var f inputFlags
	var backendName string
	var nodes int
	var timeout time.Duration
	var held bool
	var established string
	var sourceValidation bool
	var topology string
	var logVerdicts bool
	var counters bool
	var counterDetail string
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Decide flows with real packets through a real kernel (root)",
		Long: `lab builds network namespaces for one or two nodes and every pod (the pods' own
addresses, external hosts for IP literals), programs the backend
inside each node namespace from that node's engine (a full Sync at the first
step, deltas after), and probes every flow with TCP, UDP or SCTP packets.
Nodes named by the pods and Node objects are spread over the lab's nodes in
lexical order; each Node object's InternalIP becomes its lab node's address
(for the nodes peers of cluster-wide policies), and a flow to a Node's
InternalIP goes to that lab node.
Output is that of simulate. Everything is removed on exit, error or Ctrl-C.

Each node cuts the established connections a change denies (--established
follow, as the node agent does). With --held, every flow allowed at the first
step is also kept open as a connection (TCP, and UDP from a fixed source port;
SCTP cannot be held) and, at every later step, sends data and waits for the
echo: one extra line per held connection, "conn":"held", verdict allow when
the echo came back.

--topology routed (default) gives each pod a routed veth of its own, as
Calico does; --topology bridge puts each node's pods on one Linux bridge,
cni0, as flannel, Canal and the CNI bridge plugin do: traffic between two pods
of a node is bridged and reaches the filter through br_netfilter (on in the
lab), traffic between nodes is routed host-gw style. The same inputs work on
both.

Each pod's lab interface (routed veth or bridge port) is its endpoint's
interface (--source-validation, default true): the node drops what a pod
sends from an address that is not its own, as the node agent does with
--source-validation.

With --log-verdicts, every node logs verdicts through NFLOG as the node agent
does (denied new connections, and allowed ones too), with a budget far above
what the probes send (100000 records/s), and each flow line gains what the
kernel's log recorded for that probe's packets (matched by protocol, source
address and port, destination address and port): "logged":"deny" when a
record denies it (at either end), else "allow" when one allows it, absent
when nothing was logged (a flow no policy restricts is allowed without a
rule, and not logged); "policy" the object the record names
("Kind/namespace/name", absent for a NetworkPolicy tier's default deny) and
"rule" its rule (name, index, or "isolated" for that default deny).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return fmt.Errorf("lab needs root: it creates network namespaces and packet filters")
			}
			if nodes != 1 && nodes != 2 {
				return fmt.Errorf("--nodes %d: want 1 or 2", nodes)
			}
			topo, err := lab.ParseTopology(topology)
			if err != nil {
				return fmt.Errorf("--topology: %w", err)
			}
			perRule, err := parseDetail(counterDetail)
			if err != nil {
				return err
			}
			mode, err := conntrack.ParseMode(established)
			if err != nil {
				return fmt.Errorf("--established: %w", err)
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
			l, err := lab.New(ctx, lab.Config{Nodes: nodes, ProbeTimeout: timeout, Topology: topo})
			if err != nil {
				return err
			}
			defer l.Close()

			warn := func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) }
			place := sim.NewPlacement(steps, nodes)
			for _, w := range place.UseLabAddresses(steps, l.NodeIPs) {
				warn("warning: " + w)
			}
			var logs *sim.VerdictLogs
			if logVerdicts {
				logs = sim.NewVerdictLogs()
				defer logs.Close()
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
				if sourceValidation {
					cfg.Interface = labInterface(l)
				}
				var be backend.Backend
				switch backendName {
				case "nftables":
					nft, err := nftables.New(nftables.Config{NetNS: int(ns), Log: labLogging(logVerdicts)})
					if err != nil {
						return err
					}
					defer nft.Close()
					be = nft
				case "iptables":
					ipt, err := iptables.New(iptables.Config{NetNS: int(ns), Log: labLogging(logVerdicts)})
					if err != nil {
						return err
					}
					defer ipt.Close()
					be = ipt
				default:
					return fmt.Errorf("--backend %q: want nftables or iptables", backendName)
				}
				// Failures to follow are warnings on stderr.
				logger := funcr.New(func(prefix, args string) {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: node %d: %s\n", i, args)
				}, funcr.Options{})
				follower, err := conntrack.New(be, conntrack.Config{Mode: mode, NetNS: int(ns), Logger: logger})
				if err != nil {
					return err
				}
				defer follower.Close()
				var nodeBackend backend.Backend = follower
				if logs != nil {
					if nodeBackend, err = logs.AddNode(ctx, i, int(ns), follower); err != nil {
						return err
					}
				}
				labNodes = append(labNodes, sim.Node{Engine: policy.New(cfg), Backend: nodeBackend})
			}
			pr := &sim.LabProber{Lab: l, Placement: place, Flows: fl, Hold: held, Logs: logs}
			if err := sim.Run(ctx, f.in, steps, fl, labNodes, pr, warn, emit); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
			if counters {
				return printLabCounters(ctx, cmd.OutOrStdout(), f.output, perRule, nodeBackends(labNodes))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&backendName, "backend", "nftables", "backend to program in each lab node: nftables or iptables")
	cmd.Flags().IntVar(&nodes, "nodes", 1, "lab nodes: 1 or 2")
	cmd.Flags().DurationVar(&timeout, "probe-timeout", 0, "how long a probe waits for an answer (default the lab's, 400ms)")
	cmd.Flags().BoolVar(&held, "held", false, "keep the flows allowed at the first step open as connections and check them at every later step")
	cmd.Flags().StringVar(&topology, "topology", string(lab.Routed), "how pods are wired to their node: routed (a veth each) or bridge (one Linux bridge per node)")
	cmd.Flags().StringVar(&established, "established", string(conntrack.ModeFollow), "established connections a change denies: follow (cut them) or keep")
	cmd.Flags().BoolVar(&sourceValidation, "source-validation", true, "each pod may only send from its own addresses on its lab interface (routed veth or bridge port); false leaves sources unchecked")
	cmd.Flags().BoolVar(&logVerdicts, "log-verdicts", false, "log verdicts in the nodes' kernels (NFLOG) and add to each flow line what the log recorded: logged, policy, rule")
	cmd.Flags().BoolVar(&counters, "counters", false, `after the last step, print each node's policy counters: JSON lines {"node":N,"counters":{...}} after the flow lines (a table with -o table)`)
	cmd.Flags().StringVar(&counterDetail, "counters-detail", "policy", "with --counters: policy (per policy, direction and action) or rule (per rule)")
	return cmd
}

// labInterface is policy.Config.Interface for a lab: a pod's node-side
// interface, "" until the lab has created the pod.
func labInterface(l *lab.Lab) func(string, []netip.Addr) string {
	return func(podID string, _ []netip.Addr) string { return l.HostLink(podID) }
}

// labLogging is the nodes' verdict log: sim.LabLogging with --log-verdicts,
// nothing without.
func labLogging(on bool) verdictlog.Logging {
	if on {
		return sim.LabLogging
	}
	return verdictlog.Logging{}
}
