package reach

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// Port is a destination port and its protocol.
type Port struct {
	Port     uint16
	Protocol ir.Protocol
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// ParsePorts reads a comma-separated list of ports, each PORT or
// PORT/PROTOCOL (TCP when omitted; TCP, UDP or SCTP, any case), as
// "80,443/TCP,53/UDP". An empty string gives no ports (nil). Errors name
// each bad item; duplicates are dropped; the result is sorted by protocol
// then port.
func ParsePorts(s string) ([]Port, error) {
	var out []Port
	var bad []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		num, proto, hasProto := strings.Cut(item, "/")
		p := Port{Protocol: ir.TCP}
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil || n == 0 {
			bad = append(bad, fmt.Sprintf("%q: port %q is not 1-65535", item, num))
			continue
		}
		p.Port = uint16(n)
		if hasProto {
			pr, ok := ir.ParseProtocol(strings.ToUpper(proto))
			if !ok {
				bad = append(bad, fmt.Sprintf("%q: protocol %q is not TCP, UDP or SCTP", item, proto))
				continue
			}
			p.Protocol = pr
		}
		out = append(out, p)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("--ports: %s", strings.Join(bad, "; "))
	}
	sortPorts(&out)
	return out, nil
}

func sortPorts(ps *[]Port) {
	slices.SortFunc(*ps, func(a, b Port) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
	})
	*ps = slices.Compact(*ps)
}

// Selection picks the pods and ports of the flows. The zero value selects
// every pod and each destination's container ports.
type Selection struct {
	// Namespaces keeps the pods of these namespaces; empty: every namespace.
	Namespaces []string
	// Selector keeps the pods whose labels it matches; nil: every pod.
	Selector labels.Selector
	// Ports are tried at every destination; empty: each destination's
	// container ports.
	Ports []Port
}

// NewSelection builds a Selection from command-line values: namespaces,
// a label selector in kubectl's syntax ("app=web,tier in (a,b)"; empty:
// every pod), and ports (see ParsePorts). Errors name the flag.
func NewSelection(namespaces []string, selector, ports string) (Selection, error) {
	sel := Selection{Namespaces: namespaces}
	if strings.TrimSpace(selector) != "" {
		s, err := labels.Parse(selector)
		if err != nil {
			return Selection{}, fmt.Errorf("--selector %q: %w", selector, err)
		}
		sel.Selector = s
	}
	var err error
	if sel.Ports, err = ParsePorts(ports); err != nil {
		return Selection{}, err
	}
	return sel, nil
}

// Pods returns the selected pods of st that can take part in a flow (see
// the package doc), in namespace and name order; nil when none.
func Pods(st *manifest.State, sel Selection) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range st.Pods {
		if len(sel.Namespaces) > 0 && !slices.Contains(sel.Namespaces, p.Namespace) {
			continue
		}
		if sel.Selector != nil && !sel.Selector.Matches(labels.Set(p.Labels)) {
			continue
		}
		if p.Spec.HostNetwork || len(flows.PodIPs(p)) == 0 {
			continue
		}
		if ph := p.Status.Phase; ph == corev1.PodSucceeded || ph == corev1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	return out
}

// DestPort is a port a destination offers.
type DestPort struct {
	Port
	// Name is the container port's name, if it has one.
	Name string
}

// Ports returns the ports tried at pod dst: sel.Ports when given, else
// dst's container ports (see the package doc), sorted by protocol then
// port; nil when none.
func Ports(dst *corev1.Pod, sel Selection) []DestPort {
	if len(sel.Ports) > 0 {
		out := make([]DestPort, len(sel.Ports))
		for i, p := range sel.Ports {
			out[i] = DestPort{Port: p, Name: portName(dst, p)}
		}
		return out
	}
	var out []DestPort
	for _, c := range dst.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.ContainerPort < 1 || cp.ContainerPort > 65535 {
				continue
			}
			proto, ok := ir.ParseProtocol(string(cmp.Or(cp.Protocol, corev1.ProtocolTCP)))
			if !ok {
				continue
			}
			p := Port{Port: uint16(cp.ContainerPort), Protocol: proto}
			if !slices.ContainsFunc(out, func(d DestPort) bool { return d.Port == p }) {
				out = append(out, DestPort{Port: p, Name: cp.Name})
			}
		}
	}
	slices.SortFunc(out, func(a, b DestPort) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port.Port, b.Port.Port))
	})
	return out
}

// portName is the name of dst's container port p, or "".
func portName(dst *corev1.Pod, p Port) string {
	for _, c := range dst.Spec.Containers {
		for _, cp := range c.Ports {
			if int(cp.ContainerPort) == int(p.Port) && string(cmp.Or(cp.Protocol, corev1.ProtocolTCP)) == p.Protocol.String() {
				return cp.Name
			}
		}
	}
	return ""
}

// Flow is one flow between two selected pods.
type Flow struct {
	flows.Flow
	// SrcPod and DstPod are the pods at each end.
	SrcPod, DstPod *corev1.Pod
	// PortName is the destination container port's name, if it has one.
	PortName string
}

// Flows yields the flows among the selected pods of st (see the package
// doc for the order); nothing when fewer than two pods are selected.
func Flows(st *manifest.State, sel Selection) iter.Seq[Flow] {
	pods := Pods(st, sel)
	return func(yield func(Flow) bool) {
		ports := make([][]DestPort, len(pods))
		for i, p := range pods {
			ports[i] = Ports(p, sel)
		}
		for _, src := range pods {
			for j, dst := range pods {
				if src == dst {
					continue
				}
				for _, p := range ports[j] {
					f := Flow{
						Flow: flows.Flow{
							Src:  flows.End{Namespace: src.Namespace, Name: src.Name},
							Dst:  flows.End{Namespace: dst.Namespace, Name: dst.Name},
							Port: p.Port.Port, Protocol: p.Protocol,
						},
						SrcPod: src, DstPod: dst, PortName: p.Name,
					}
					if !yield(f) {
						return
					}
				}
			}
		}
	}
}

// Compile compiles st with a new policy engine into a new memory backend,
// the one an Evaluator reads. Validation problems (an invalid policy is
// applied in its safe form, see policy.Engine) and addresses shared by
// several pods go to warn, one line each (nil: dropped). The error is the
// backend's refusal of the snapshot, which would be a bug.
func Compile(st *manifest.State, warn func(string)) (*memory.Backend, error) {
	e := sim.Compile(st, policy.Config{}, warn)
	mem := memory.New(memory.Config{})
	if _, err := mem.Sync(context.Background(), e.Snapshot()); err != nil {
		return nil, fmt.Errorf("memory backend: %w", err)
	}
	return mem, nil
}

// Evaluator decides flows against one cluster state.
type Evaluator struct {
	State   *manifest.State
	Backend *memory.Backend
}

// Verdict is the decision of one flow.
type Verdict struct {
	// Result is the flow's line as netpolctl simulate prints it (Step 0);
	// Egress and Ingress are sim.Describe's text when explained.
	Result sim.Result
	// Verdict names the tier, policy (Origin) and rule that decided at
	// each end (zero when the flow is Absent).
	Verdict memory.Verdict
	// Traces are every rule list's trace at both ends, when explained.
	Traces []memory.ListTrace
}

// Allowed reports whether the flow is allowed.
func (v Verdict) Allowed() bool { return v.Result.Verdict == sim.Allow }

// Decide decides f (a flow of Flows, or any flow of the state's pods or
// addresses): a flow naming a pod absent from the state, or not running,
// is denied with the reason in Result.Reason. With explain set, Result's
// Egress and Ingress name the rule by name and note every Pass (see
// sim.Decide); without, deciding is several times faster.
func (ev Evaluator) Decide(f flows.Flow, explain bool) Verdict {
	r := flows.Resolve(ev.State, f)
	base := sim.Result{Src: f.Src.String(), Dst: f.Dst.String(), Port: f.Port, Protocol: f.Protocol.String()}
	if r.Absent != "" {
		base.Verdict, base.Reason = sim.Deny, r.Absent
		return Verdict{Result: base}
	}
	res, v, traces := sim.Decide(ev.Backend, r, explain)
	res.Src, res.Dst, res.Port, res.Protocol = base.Src, base.Dst, base.Port, base.Protocol
	res.SrcIP, res.DstIP = r.SrcIP.String(), r.DstIP.String()
	return Verdict{Result: res, Verdict: v, Traces: traces}
}

// Allowed reports whether f is allowed, as Decide would, without building
// the result: the cheapest check, for comparing states.
func (ev Evaluator) Allowed(f flows.Flow) bool {
	r := flows.Resolve(ev.State, f)
	if r.Absent != "" {
		return false
	}
	if sim.NodeLocal(r) {
		return true
	}
	return ev.Backend.Evaluate(memory.Flow{Src: r.SrcIP, Dst: r.DstIP, Protocol: r.Protocol, Port: r.Port}).Allowed
}

// By names what decided a verdict in one phrase: for a denied flow, the
// end(s) that denied; for an allowed one, both ends. When explained, an
// end denied because the NetworkPolicy tier isolates it and no rule
// matched names the policies that isolate it.
func (v Verdict) By() string {
	r := v.Result
	if r.Reason != "" {
		return r.Reason
	}
	egress := "egress: " + v.end(ir.Egress, v.Verdict.Egress, r.Egress)
	ingress := "ingress: " + v.end(ir.Ingress, v.Verdict.Ingress, r.Ingress)
	switch {
	case r.Verdict == sim.Deny && !v.Verdict.Egress.Allowed && v.Verdict.Ingress.Allowed:
		return egress
	case r.Verdict == sim.Deny && v.Verdict.Egress.Allowed && !v.Verdict.Ingress.Allowed:
		return ingress
	}
	return egress + "; " + ingress
}

// end is the description of one end's decision d, text, naming the
// isolating policies when d is the NetworkPolicy tier's default deny.
func (v Verdict) end(dir ir.Direction, d memory.Decision, text string) string {
	if d.Allowed || d.Tier != ir.TierNetworkPolicy || d.Rule >= 0 {
		return text
	}
	var by []string
	for _, lt := range v.Traces {
		if lt.Direction == dir && lt.Tier == ir.TierNetworkPolicy && !slices.Contains(by, lt.Origin.String()) {
			by = append(by, lt.Origin.String())
		}
	}
	if len(by) == 0 {
		return text
	}
	return "denied (isolated by " + strings.Join(by, ", ") + "; no rule matched)"
}
