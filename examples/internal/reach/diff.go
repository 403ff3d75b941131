package reach

import (
	"iter"
	"slices"

	"github.com/palisade-net/palisade/examples/internal/manifest"
)

// Change is a flow whose verdict differs between two states.
type Change struct {
	Flow Flow
	// Before and After are the flow's verdicts, explained (see
	// Evaluator.Decide).
	Before, After Verdict
}

// Diff decides every flow of fl in before and in after and returns, in
// fl's order, those whose verdict differs (allow to deny and deny to
// allow), each explained in both states. Only changed flows are
// explained, so a diff costs about two evaluations per flow. No flow, or
// no change, gives nil.
func Diff(before, after Evaluator, fl iter.Seq[Flow]) []Change {
	var out []Change
	for f := range fl {
		if before.Allowed(f.Flow) == after.Allowed(f.Flow) {
			continue
		}
		out = append(out, Change{Flow: f, Before: before.Decide(f.Flow, true), After: after.Decide(f.Flow, true)})
	}
	return out
}

// FlowsOfBoth yields the flows among the selected pods of a (Flows), then
// those among the selected pods of b that a does not have (a pod or a
// container port that only b holds, as when a proposed change adds a pod
// or changes its labels). With the same pods and ports in both, it is
// Flows(a, sel).
func FlowsOfBoth(a, b *manifest.State, sel Selection) iter.Seq[Flow] {
	return func(yield func(Flow) bool) {
		for f := range Flows(a, sel) {
			if !yield(f) {
				return
			}
		}
		podsA, podsB := Pods(a, sel), Pods(b, sel)
		if slices.Equal(podsA, podsB) { // the same pod objects: the same flows
			return
		}
		inA := map[string][]DestPort{} // selected pod of a → its ports
		for _, p := range podsA {
			inA[p.Namespace+"/"+p.Name] = Ports(p, sel)
		}
		for f := range Flows(b, sel) {
			dstPorts, dstInA := inA[f.Dst.String()]
			_, srcInA := inA[f.Src.String()]
			if srcInA && dstInA && hasPort(dstPorts, Port{f.Port, f.Protocol}) {
				continue
			}
			if !yield(f) {
				return
			}
		}
	}
}

func hasPort(ps []DestPort, p Port) bool {
	for _, d := range ps {
		if d.Port == p {
			return true
		}
	}
	return false
}
