package sim

import (
	"context"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/policy/ir"
)

// MemoryProber decides flows with the memory backend's evaluator.
type MemoryProber struct {
	Backend *memory.Backend
}

// Prepare does nothing: the memory backend needs no setup.
func (MemoryProber) Prepare(context.Context, Step) error { return nil }

// Probe evaluates each flow (see Decide).
func (m MemoryProber) Probe(_ context.Context, _ Step, fl []flows.Resolved) ([]Result, error) {
	out := make([]Result, len(fl))
	for i, f := range fl {
		out[i], _, _ = Decide(m.Backend, f, true)
	}
	return out, nil
}

// NodeLocalReason is the Reason of a flow from a node to one of its pods.
const NodeLocalReason = "from a hostNetwork pod (its node) to a pod on the same node: always allowed"

// Decide decides one resolved flow (Absent unset) with b: the result as
// netpolctl prints it (Verdict, and Egress, Ingress and Reason saying what
// decided) and the backend's verdict, which names the tier, policy and
// rule that decided at each end, and with explain set its traces. With
// explain unset, the flow is only evaluated (faster, no trace): Egress and
// Ingress are the decisions' short form (the rule by index, no Pass
// noted). A flow from a hostNetwork pod to a pod on its node is allowed
// with NodeLocalReason.
func Decide(b *memory.Backend, f flows.Resolved, explain bool) (Result, memory.Verdict, []memory.ListTrace) {
	if NodeLocal(f) {
		return Result{Verdict: Allow, Reason: NodeLocalReason}, memory.Verdict{Allowed: true, Reason: NodeLocalReason}, nil
	}
	mf := memory.Flow{Src: f.SrcIP, Dst: f.DstIP, Protocol: f.Protocol, Port: f.Port}
	var r Result
	var v memory.Verdict
	var traces []memory.ListTrace
	if explain {
		v, traces = b.Explain(mf)
		var egress, ingress []memory.ListTrace
		for _, lt := range traces {
			if lt.Direction == ir.Egress {
				egress = append(egress, lt)
			} else {
				ingress = append(ingress, lt)
			}
		}
		r = Result{Egress: Describe(v.Egress, egress), Ingress: Describe(v.Ingress, ingress), Reason: v.Reason}
	} else {
		v = b.Evaluate(mf)
		r = Result{Egress: v.Egress.String(), Ingress: v.Ingress.String(), Reason: v.Reason}
	}
	r.Verdict = Deny
	if v.Allowed {
		r.Verdict = Allow
	}
	return r, v, traces
}

// NodeLocal reports whether a flow goes from a node (a hostNetwork pod
// speaks with its node's address) to a pod running on that node: such
// traffic is always allowed.
func NodeLocal(f flows.Resolved) bool {
	return f.SrcPod != nil && f.SrcPod.Spec.HostNetwork && f.SrcPod.Spec.NodeName != "" &&
		f.DstPod != nil && !f.DstPod.Spec.HostNetwork && f.DstPod.Spec.NodeName == f.SrcPod.Spec.NodeName
}
