package matrix

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/reach"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/policy/ir"
)

// NamedPort is a port asked by name: at each destination, the container
// port of that name, if it has one.
type NamedPort struct {
	Name string
	// Protocol keeps only the container port of this protocol; empty: the
	// port of that name whatever its protocol.
	Protocol ir.Protocol
}

func (n NamedPort) String() string {
	if n.Protocol == 0 {
		return n.Name
	}
	return n.Name + "/" + n.Protocol.String()
}

// Input is what Compute decides: the pods a selection picks in a cluster
// state, and the ports.
type Input struct {
	State *manifest.State
	// Selection picks the pods (namespaces, label selector) and the ports
	// given by number. With neither Selection.Ports nor Named, each
	// destination's container ports are tried.
	Selection reach.Selection
	// Named are the ports given by name.
	Named []NamedPort
	// Warn receives validation problems of the objects (an invalid policy
	// is applied in its safe form) and each named port no selected pod
	// offers, one line each; nil drops them.
	Warn func(string)
}

// Compute decides every flow among the selected pods (reach.Flows: every
// ordered pair of distinct pods, each port of the destination) with the
// memory backend's evaluator and builds their matrix, naming at each end the
// tier, policy and rule that decided. With no pod selected the matrix is
// empty.
func Compute(in Input) (*Matrix, error) {
	mem, err := reach.Compile(in.State, in.Warn)
	if err != nil {
		return nil, err
	}
	ev := reach.Evaluator{State: in.State, Backend: mem}
	names := newNamer(mem.Snapshot())
	var pods []Pod
	offered := map[NamedPort]bool{} // the port names the selected pods offer
	containerPorts := in.Selection
	containerPorts.Ports = nil
	for _, p := range reach.Pods(in.State, in.Selection) {
		pods = append(pods, Pod{Namespace: p.Namespace, Name: p.Name})
		for _, dp := range reach.Ports(p, containerPorts) {
			offered[NamedPort{Name: dp.Name}], offered[NamedPort{Name: dp.Name, Protocol: dp.Protocol}] = true, true
		}
	}
	var results []Result
	decide := func(f reach.Flow) {
		v := ev.Decide(f.Flow, true)
		results = append(results, Result{
			Src:     Pod{Namespace: f.Src.Namespace, Name: f.Src.Name},
			Dst:     Pod{Namespace: f.Dst.Namespace, Name: f.Dst.Name},
			Port:    Port{Port: f.Port, Protocol: f.Protocol.String(), Name: f.PortName},
			Allowed: v.Allowed(),
			Egress:  names.end(v.Verdict.Egress, ir.Egress, v.Result.Egress),
			Ingress: names.end(v.Verdict.Ingress, ir.Ingress, v.Result.Ingress),
			Reason:  v.Result.Reason,
		})
	}
	numbered := len(in.Selection.Ports) > 0
	if numbered || len(in.Named) == 0 {
		for f := range reach.Flows(in.State, in.Selection) {
			decide(f)
		}
	}
	if len(in.Named) > 0 {
		// The container ports, of which the named ones not already tried.
		for f := range reach.Flows(in.State, containerPorts) {
			if in.named(f) && !(numbered && in.numbered(f)) {
				decide(f)
			}
		}
		for _, n := range in.Named {
			if !offered[n] && in.Warn != nil {
				in.Warn(fmt.Sprintf("warning: port %s: no selected pod has a container port of that name", n))
			}
		}
	}
	return Build(pods, results, in.describePorts())
}

func (in Input) named(f reach.Flow) bool {
	for _, n := range in.Named {
		if f.PortName == n.Name && (n.Protocol == 0 || n.Protocol == f.Protocol) {
			return true
		}
	}
	return false
}

func (in Input) numbered(f reach.Flow) bool {
	for _, p := range in.Selection.Ports {
		if p.Port == f.Port && p.Protocol == f.Protocol {
			return true
		}
	}
	return false
}

// describePorts says which ports were asked, for legends.
func (in Input) describePorts() string {
	var out []string
	for _, p := range in.Selection.Ports {
		out = append(out, p.String())
	}
	for _, n := range in.Named {
		out = append(out, n.String())
	}
	if len(out) == 0 {
		return "each destination's container ports"
	}
	return strings.Join(out, ", ")
}

// namer names rules and the policies that isolate an endpoint, from the
// snapshot the evaluator holds.
type namer struct {
	lists     map[string]*ir.RuleList
	endpoints map[string]*ir.Endpoint
}

func newNamer(s *ir.Snapshot) namer {
	n := namer{lists: map[string]*ir.RuleList{}, endpoints: map[string]*ir.Endpoint{}}
	for i := range s.RuleLists {
		n.lists[s.RuleLists[i].ID] = &s.RuleLists[i]
	}
	for i := range s.Endpoints {
		n.endpoints[s.Endpoints[i].ID] = &s.Endpoints[i]
	}
	return n
}

// end describes decision d of direction dir; summary is the evaluator's
// sentence for it.
func (n namer) end(d memory.Decision, dir ir.Direction, summary string) End {
	e := End{Allowed: d.Allowed, Tier: string(d.Tier), Summary: summary}
	if ep := n.endpoints[d.Endpoint]; ep != nil && d.Tier != ir.TierAdmin {
		for _, t := range ep.Tiers(dir) {
			e.AfterAdmin = e.AfterAdmin || t.Kind == ir.TierAdmin
		}
	}
	switch {
	case d.Tier == "":
	case d.Rule >= 0:
		e.Kind, e.Namespace, e.Name = d.Origin.Kind, d.Origin.Namespace, d.Origin.Name
		e.Rule = strconv.Itoa(d.Rule)
		if l := n.lists[d.RuleList]; l != nil {
			for _, r := range l.Rules {
				if r.Index == d.Rule {
					e.Rule = sim.RuleName(r)
				}
			}
		}
	case d.Tier == ir.TierNetworkPolicy:
		// Isolated and no rule matched: every NetworkPolicy that selects the
		// endpoint took part.
		if ep := n.endpoints[d.Endpoint]; ep != nil {
			for _, t := range ep.Tiers(dir) {
				if t.Kind != ir.TierNetworkPolicy {
					continue
				}
				for _, id := range t.RuleLists {
					if l := n.lists[id]; l != nil {
						e.Isolating = append(e.Isolating, PolicyName(l.Origin.Kind, l.Origin.Namespace, l.Origin.Name))
					}
				}
			}
		}
	}
	return e
}
