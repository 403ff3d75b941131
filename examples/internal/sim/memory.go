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

// Probe evaluates each flow.
func (m MemoryProber) Probe(_ context.Context, _ Step, fl []flows.Resolved) ([]Result, error) {
	out := make([]Result, len(fl))
	for i, f := range fl {
		if NodeLocal(f) {
			out[i] = Result{Verdict: Allow, Reason: "from a hostNetwork pod (its node) to a pod on the same node: always allowed"}
			continue
		}
		v, traces := m.Backend.Explain(memory.Flow{Src: f.SrcIP, Dst: f.DstIP, Protocol: f.Protocol, Port: f.Port})
		var egress, ingress []memory.ListTrace
		for _, lt := range traces {
			if lt.Direction == ir.Egress {
				egress = append(egress, lt)
			} else {
				ingress = append(ingress, lt)
			}
		}
		out[i] = Result{Verdict: Deny, Egress: Describe(v.Egress, egress), Ingress: Describe(v.Ingress, ingress), Reason: v.Reason}
		if v.Allowed {
			out[i].Verdict = Allow
		}
	}
	return out, nil
}

// NodeLocal reports whether a flow goes from a node (a hostNetwork pod
// speaks with its node's address) to a pod running on that node: such
// traffic is always allowed.
func NodeLocal(f flows.Resolved) bool {
	return f.SrcPod != nil && f.SrcPod.Spec.HostNetwork && f.SrcPod.Spec.NodeName != "" &&
		f.DstPod != nil && !f.DstPod.Spec.HostNetwork && f.DstPod.Spec.NodeName == f.SrcPod.Spec.NodeName
}
