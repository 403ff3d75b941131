package sim

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/policy/ir"
)

// Placement maps the nodes the input names (spec.nodeName, Node objects)
// onto lab nodes: node names in lexical order, round robin over the lab's
// nodes; pods with no node go to lab node 0.
type Placement struct {
	index map[string]int
	nodes int
	// nodeAddrs maps the InternalIP addresses the input's Node objects
	// had (before UseLabAddresses) to their lab node.
	nodeAddrs map[netip.Addr]int
}

// NewPlacement places every node named by a pod or a Node object of any
// step.
func NewPlacement(steps []Step, nodes int) *Placement {
	var names []string
	for _, st := range steps {
		for _, p := range st.State.Pods {
			if p.Spec.NodeName != "" && !slices.Contains(names, p.Spec.NodeName) {
				names = append(names, p.Spec.NodeName)
			}
		}
		for _, n := range st.State.Nodes {
			if !slices.Contains(names, n.Name) {
				names = append(names, n.Name)
			}
		}
	}
	slices.Sort(names)
	pl := &Placement{index: map[string]int{}, nodes: max(nodes, 1)}
	for i, n := range names {
		pl.index[n] = i % pl.nodes
	}
	return pl
}

// UseLabAddresses gives every Node object of every step the addresses of
// its lab node: each InternalIP becomes the lab node's address of the same
// family (labIPs(i) lists lab node i's addresses), so that the `nodes`
// peers of cluster-wide policies match what the lab's packets carry. The
// Nodes are replaced by modified copies. It returns a warning for each step
// where two Node objects share a lab node (then a `nodes` peer selecting one
// of them also matches the other's traffic), nil when none do.
func (pl *Placement) UseLabAddresses(steps []Step, labIPs func(i int) []netip.Addr) []string {
	pl.nodeAddrs = map[netip.Addr]int{}
	var warnings []string
	for _, st := range steps {
		byLab := map[int][]string{}
		for j, n := range st.State.Nodes {
			i := pl.Node(n.Name)
			byLab[i] = append(byLab[i], n.Name)
			n = n.DeepCopy()
			for k, a := range n.Status.Addresses {
				ip, err := netip.ParseAddr(a.Address)
				if a.Type != corev1.NodeInternalIP || err != nil {
					continue
				}
				ip = ip.Unmap()
				pl.nodeAddrs[ip] = i
				for _, lip := range labIPs(i) {
					if ir.FamilyOf(lip) == ir.FamilyOf(ip) {
						n.Status.Addresses[k].Address = lip.String()
					}
				}
			}
			st.State.Nodes[j] = n
		}
		for i := range pl.nodes {
			if len(byLab[i]) > 1 {
				warnings = append(warnings, fmt.Sprintf("step %s: nodes %s share lab node %d and its address: a `nodes` peer selecting one of them matches them all",
					st.Name, strings.Join(byLab[i], ", "), i))
			}
		}
	}
	return warnings
}

// labNodeAddr returns the address of lab node i of ip's family for an
// input Node's InternalIP ip, and false when ip is no Node's address.
func (pl *Placement) labNodeAddr(l *lab.Lab, ip netip.Addr) (netip.Addr, bool) {
	i, ok := pl.nodeAddrs[ip]
	if !ok {
		return netip.Addr{}, false
	}
	for _, lip := range l.NodeIPs(i) {
		if ir.FamilyOf(lip) == ir.FamilyOf(ip) {
			return lip, true
		}
	}
	return netip.Addr{}, false
}

// Node returns the lab node of a Kubernetes node name.
func (pl *Placement) Node(nodeName string) int { return pl.index[nodeName] }

// IsLocal returns the local-pod filter of lab node i, for policy.Config.
func (pl *Placement) IsLocal(i int) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return pl.Node(p.Spec.NodeName) == i }
}

// LabProber decides flows by sending real packets through the lab: pods of
// the step become pod namespaces with their IPs, IP literals that belong to
// no pod become external hosts, and each flow is one probe.
type LabProber struct {
	Lab       *lab.Lab
	Placement *Placement
	// Flows are every flow of the run, so Prepare can create the external
	// hosts they name.
	Flows []flows.Flow

	// Hold keeps, from the first step on, a connection open for every flow
	// allowed at the first step (TCP and UDP; SCTP cannot be held) and
	// checks it at every later step (see Held).
	Hold bool
	// Logs, when set, adds to each result what the nodes' verdict logs
	// recorded for the probe (VerdictLogs.Annotate).
	Logs *VerdictLogs

	pods      map[string]lab.PodSpec
	externals map[netip.Addr]bool
	held      []heldFlow
}

// heldFlow is a connection held for one flow of the flow file.
type heldFlow struct {
	flow int       // index in the flow file
	conn *lab.Held // nil when it could not be opened
	why  string    // why it could not be opened
}

// Prepare makes the lab's pods those of the step: running, non-hostNetwork
// pods with an address, each on its node with its addresses, and empties
// the nodes' conntrack tables.
func (lp *LabProber) Prepare(ctx context.Context, step Step) error {
	if lp.pods == nil {
		lp.pods = map[string]lab.PodSpec{}
		lp.externals = map[netip.Addr]bool{}
	}
	want := map[string]lab.PodSpec{}
	podIPs := map[netip.Addr]bool{}
	for _, p := range step.State.Pods {
		ips := flows.PodIPs(p)
		if p.Spec.HostNetwork || len(ips) == 0 || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		name := p.Namespace + "/" + p.Name
		want[name] = lab.PodSpec{Name: name, Node: lp.Placement.Node(p.Spec.NodeName), IPs: ips}
		for _, ip := range ips {
			podIPs[ip] = true
		}
	}
	for name, have := range lp.pods {
		if w, ok := want[name]; !ok || w.Node != have.Node || !slices.Equal(w.IPs, have.IPs) {
			if err := lp.Lab.RemovePod(name); err != nil {
				return err
			}
			delete(lp.pods, name)
		}
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, ok := lp.pods[name]; ok {
			continue
		}
		for _, ip := range want[name].IPs {
			if lp.externals[ip] {
				return fmt.Errorf("lab: %s is an external host in an earlier step and pod %s's address now; the lab cannot move it", ip, name)
			}
		}
		if err := lp.Lab.AddPod(ctx, want[name]); err != nil {
			return err
		}
		lp.pods[name] = want[name]
	}
	for _, f := range lp.Flows {
		for _, e := range []flows.End{f.Src, f.Dst} {
			if !e.IP.IsValid() || podIPs[e.IP] || lp.externals[e.IP] {
				continue
			}
			if _, node := lp.Placement.labNodeAddr(lp.Lab, e.IP); node && e == f.Dst {
				continue // probed at the lab node's address
			}
			if err := lp.Lab.AddExternal(ctx, e.IP); err != nil {
				return err
			}
			lp.externals[e.IP] = true
		}
	}
	if lp.Logs != nil {
		lp.Logs.SetPods(lp.pods)
	}
	// Each step's verdicts are for new connections, not for what an
	// earlier step's probes left in conntrack; held connections stay.
	return lp.Lab.ForgetProbes()
}

// probeOf is the lab probe of a resolved flow.
func (lp *LabProber) probeOf(f flows.Resolved) lab.Probe {
	p := lab.Probe{Dst: f.DstIP, Port: f.Port, Protocol: lab.Protocol(f.Protocol.String())}
	switch {
	case f.SrcPod != nil && f.SrcPod.Spec.HostNetwork:
		p.Src = fmt.Sprintf("node:%d", lp.Placement.Node(f.SrcPod.Spec.NodeName))
	case f.SrcPod != nil:
		p.Src = f.SrcPod.Namespace + "/" + f.SrcPod.Name
	default:
		p.Src = f.SrcIP.String()
	}
	if lip, ok := lp.Placement.labNodeAddr(lp.Lab, f.DstIP); ok && f.DstPod == nil {
		// A Node's address: the lab node's (see UseLabAddresses).
		p.Dst = lip
	}
	if f.DstPod != nil && f.DstPod.Spec.HostNetwork {
		// A hostNetwork pod answers on its node's address; the lab's
		// nodes have addresses of their own.
		node := lp.Placement.Node(f.DstPod.Spec.NodeName)
		for _, ip := range lp.Lab.NodeIPs(node) {
			if ir.FamilyOf(ip) == ir.FamilyOf(f.DstIP) {
				p.Dst = ip
			}
		}
	}
	return p
}

// Probe sends one probe per flow, in parallel.
func (lp *LabProber) Probe(ctx context.Context, _ Step, fl []flows.Resolved) ([]Result, error) {
	probes := make([]lab.Probe, len(fl))
	for i, f := range fl {
		probes[i] = lp.probeOf(f)
	}
	out := make([]Result, len(fl))
	start := time.Now()
	rs := lp.Lab.Probe(ctx, probes)
	for i, r := range rs {
		if r.Err != nil {
			return nil, fmt.Errorf("probe %s -> %s %s/%d: %w", probes[i].Src, probes[i].Dst, probes[i].Protocol, probes[i].Port, r.Err)
		}
		out[i] = Result{Verdict: Deny, Reason: r.Detail}
		if r.Connected {
			out[i] = Result{Verdict: Allow, Reason: "connected"}
		}
	}
	if lp.Logs != nil {
		lp.Logs.Annotate(rs, out, start)
	}
	return out, nil
}

// Holding reports whether the prober holds connections (Hold).
func (lp *LabProber) Holding() bool { return lp.Hold }

// HoldAllowed opens a connection for every flow of the first step whose
// result is allowed, except SCTP ones (the lab cannot hold them). at[i] is
// the index in the flow file of fl[i] and res[i].
func (lp *LabProber) HoldAllowed(ctx context.Context, fl []flows.Resolved, at []int, res []Result) error {
	var probes []lab.Probe
	var idx []int
	for i, f := range fl {
		if res[i].Verdict != Allow || f.Protocol == ir.SCTP {
			continue
		}
		probes = append(probes, lp.probeOf(f))
		idx = append(idx, at[i])
	}
	conns, rs := lp.Lab.Hold(ctx, probes)
	for i, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("hold %s -> %s %s/%d: %w", probes[i].Src, probes[i].Dst, probes[i].Protocol, probes[i].Port, r.Err)
		}
		h := heldFlow{flow: idx[i], conn: conns[i]}
		if conns[i] == nil {
			h.why = "could not be held: " + r.Detail
		}
		lp.held = append(lp.held, h)
	}
	return nil
}

// CheckHeld checks every held connection once, in parallel, and returns
// one result per held connection, in flow order, with only Verdict, Reason
// and Conn set. A connection whose flow names a pod absent at this step
// is denied and closed.
func (lp *LabProber) CheckHeld(ctx context.Context, step Step, fl []flows.Flow) []HeldResult {
	out := make([]HeldResult, len(lp.held))
	var check []*lab.Held
	var at []int
	for i, h := range lp.held {
		out[i] = HeldResult{Flow: h.flow, Result: Result{Verdict: Deny, Reason: h.why, Conn: ConnHeld}}
		if h.conn == nil {
			continue
		}
		if r := flows.Resolve(step.State, fl[h.flow]); r.Absent != "" {
			out[i].Result.Reason = r.Absent
			h.conn.Close()
			lp.held[i].conn, lp.held[i].why = nil, r.Absent
			continue
		}
		check = append(check, h.conn)
		at = append(at, i)
	}
	for j, r := range lp.Lab.CheckHeld(ctx, check) {
		i := at[j]
		switch {
		case r.Err != nil:
			out[i].Result.Reason = r.Err.Error()
		case r.Connected:
			out[i].Result.Verdict, out[i].Result.Reason = Allow, "echoed"
		default:
			out[i].Result.Reason = r.Detail
		}
	}
	return out
}
