// Package sim runs netpolctl's inputs through the policy engine: it reads the
// cluster state (files, or a directory of steps), feeds the engine the
// difference at every step (the incremental path), hands each delta to a
// backend and asks a Prober for the verdict of every flow.
package sim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/policy"
)

// Input says what to run.
type Input struct {
	// Files are read as one cluster state (step 0).
	Files []string
	// StepsDir, instead of Files, holds one complete state per step:
	// files or directories named in lexical order (00.yaml, 01.yaml, ...).
	StepsDir string
	// FlowsFile is the flow file.
	FlowsFile string
	// Strict makes a policy (of any kind) that fails validation an error.
	// By default it is a warning and the policy is applied in its safe
	// form.
	Strict bool
}

// Step is one cluster state.
type Step struct {
	Index int
	Name  string
	State *manifest.State
}

// Load reads the steps and the flows. Errors name the file, object and field.
func (in Input) Load() ([]Step, []flows.Flow, error) {
	var steps []Step
	switch {
	case in.StepsDir != "" && len(in.Files) > 0:
		return nil, nil, fmt.Errorf("give either -f or --steps, not both")
	case in.StepsDir != "":
		entries, err := os.ReadDir(in.StepsDir)
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if e.IsDir() || ext == ".yaml" || ext == ".yml" || ext == ".json" {
				names = append(names, e.Name())
			}
		}
		slices.Sort(names)
		if len(names) == 0 {
			return nil, nil, fmt.Errorf("%s: no steps (want 00.yaml, 01.yaml, ...)", in.StepsDir)
		}
		for i, n := range names {
			st, err := manifest.Load(filepath.Join(in.StepsDir, n))
			if err != nil {
				return nil, nil, err
			}
			steps = append(steps, Step{Index: i, Name: n, State: st})
		}
	case len(in.Files) > 0:
		st, err := manifest.Load(in.Files...)
		if err != nil {
			return nil, nil, err
		}
		steps = []Step{{Index: 0, Name: strings.Join(in.Files, ","), State: st}}
	default:
		return nil, nil, fmt.Errorf("no input: give -f PATH or --steps DIR")
	}
	if in.FlowsFile == "" {
		return nil, nil, fmt.Errorf("no flows: give --flows FILE")
	}
	fl, err := flows.ReadFile(in.FlowsFile)
	if err != nil {
		return nil, nil, err
	}
	return steps, fl, nil
}

// Result is the verdict of one flow at one step, as netpolctl prints it.
type Result struct {
	Step     int    `json:"step"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
	Verdict  string `json:"verdict"`
	SrcIP    string `json:"srcIP,omitempty"`
	DstIP    string `json:"dstIP,omitempty"`
	// Egress and Ingress say what decided at each end; Reason explains a
	// verdict reached otherwise.
	Egress  string `json:"egress,omitempty"`
	Ingress string `json:"ingress,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Conn is ConnHeld on the line of a connection held open since the
	// first step; empty on the line of a new connection.
	Conn string `json:"conn,omitempty"`
	// Logged, Policy and Rule are what the kernel's verdict log recorded
	// for the flow's packets (lab --log-verdicts): "deny" or "allow", the
	// deciding object ("Kind/ns/name"; empty for a NetworkPolicy tier's
	// default deny) and rule (name, index, or "isolated"). Absent when
	// nothing was logged.
	Logged string `json:"logged,omitempty"`
	Policy string `json:"policy,omitempty"`
	Rule   string `json:"rule,omitempty"`
}

// ConnHeld marks the result of a held connection.
const ConnHeld = "held"

// HeldResult is the result of one held connection: Flow is the index of
// its flow in the flow file.
type HeldResult struct {
	Flow   int
	Result Result
}

// Holder is a Prober that can also keep connections open across steps
// (netpolctl lab --held).
type Holder interface {
	// Holding reports whether connections are held in this run.
	Holding() bool
	// HoldAllowed opens a connection for each flow of the first step
	// that res allows; at[i] is the flow-file index of fl[i] and res[i].
	HoldAllowed(ctx context.Context, fl []flows.Resolved, at []int, res []Result) error
	// CheckHeld checks each held connection at a later step.
	CheckHeld(ctx context.Context, step Step, fl []flows.Flow) []HeldResult
}

// Verdict values.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Prober decides resolved flows against the backend it programs.
type Prober interface {
	// Prepare is called after the backend holds a step's state and before
	// its flows are probed (e.g. to create lab pods).
	Prepare(ctx context.Context, step Step) error
	// Probe returns one result per flow, in order. Flows with Absent set
	// are never passed.
	Probe(ctx context.Context, step Step, fl []flows.Resolved) ([]Result, error)
}

// Warn receives non-fatal problems (policies that failed validation).
type Warn func(msg string)

// Node is one node's engine and the backend it programs.
type Node struct {
	Engine  policy.Engine
	Backend backend.Backend
}

// Run runs every step. Each node's engine gets the difference from the
// previous state; its backend gets a full Sync of the first step and the
// engine's delta at every later one (the incremental path). Then the prober
// decides the flows. emit receives the results of each step in flow order.
// When pr is a Holder that is holding, the flows allowed at the first step
// are also held open, and from the second step on emit receives, after the
// flows' results, one result per held connection (Conn ConnHeld) in flow
// order.
// Validation problems are reported once, from the first node's engine.
// After Prepare, engines that name pods' interfaces (source validation,
// policy.Config.Interface) are asked again and their backends updated, for
// the interfaces Prepare created.
func Run(ctx context.Context, in Input, steps []Step, fl []flows.Flow, nodes []Node, pr Prober, warn Warn, emit func([]Result) error) error {
	var prev *manifest.State
	for _, step := range steps {
		for i, n := range nodes {
			podProblems, npProblems := manifest.Apply(n.Engine, prev, step.State)
			if i > 0 {
				continue
			}
			if len(podProblems) > 0 {
				return fmt.Errorf("step %s: %w", step.Name, joinProblems(podProblems))
			}
			if len(npProblems) > 0 {
				if in.Strict {
					return fmt.Errorf("step %s: %w", step.Name, joinProblems(npProblems))
				}
				for _, p := range npProblems {
					warn(fmt.Sprintf("warning: %s (%s)", p.Error(), safeForm(p)))
				}
			}
			for _, w := range SharedAddressWarnings(n.Engine) {
				warn(fmt.Sprintf("warning: step %s: %s", step.Name, w))
			}
		}
		for i, n := range nodes {
			if prev == nil {
				if _, err := n.Backend.Sync(ctx, n.Engine.Checkpoint()); err != nil {
					return fmt.Errorf("step %s: node %d: backend: %w", step.Name, i, err)
				}
				continue
			}
			if err := n.Backend.Apply(ctx, n.Engine.Delta()); err != nil {
				return fmt.Errorf("step %s: node %d: backend: %w", step.Name, i, err)
			}
		}
		prev = step.State
		if err := pr.Prepare(ctx, step); err != nil {
			return fmt.Errorf("step %s: %w", step.Name, err)
		}
		if err := refreshInterfaces(ctx, step, nodes); err != nil {
			return err
		}
		results := make([]Result, len(fl))
		var probe []flows.Resolved
		var at []int
		for i, f := range fl {
			r := flows.Resolve(step.State, f)
			results[i] = Result{Step: step.Index, Src: f.Src.String(), Dst: f.Dst.String(), Port: f.Port, Protocol: f.Protocol.String()}
			if r.Absent != "" {
				results[i].Verdict, results[i].Reason = Deny, r.Absent
				continue
			}
			results[i].SrcIP, results[i].DstIP = r.SrcIP.String(), r.DstIP.String()
			probe = append(probe, r)
			at = append(at, i)
		}
		holder, holding := pr.(Holder)
		holding = holding && holder.Holding()
		var held []HeldResult
		if holding && step.Index > 0 {
			// Before the new probes: the held connections see the step's
			// policy, with nothing else in flight.
			held = holder.CheckHeld(ctx, step, fl)
		}
		got, err := pr.Probe(ctx, step, probe)
		if err != nil {
			return fmt.Errorf("step %s: %w", step.Name, err)
		}
		for j, i := range at {
			g := got[j]
			g.Step, g.Src, g.Dst, g.Port, g.Protocol = results[i].Step, results[i].Src, results[i].Dst, results[i].Port, results[i].Protocol
			g.SrcIP, g.DstIP = results[i].SrcIP, results[i].DstIP
			results[i] = g
		}
		if holding && step.Index == 0 {
			if err := holder.HoldAllowed(ctx, probe, at, got); err != nil {
				return fmt.Errorf("step %s: %w", step.Name, err)
			}
		}
		for _, h := range held {
			r := h.Result
			f := fl[h.Flow]
			r.Step, r.Src, r.Dst, r.Port, r.Protocol = step.Index, f.Src.String(), f.Dst.String(), f.Port, f.Protocol.String()
			if res := results[h.Flow]; res.SrcIP != "" {
				r.SrcIP, r.DstIP = res.SrcIP, res.DstIP
			}
			results = append(results, r)
		}
		if err := emit(results); err != nil {
			return err
		}
	}
	return nil
}

// safeForm says how the engine applies an object that failed validation.
func safeForm(p manifest.Problem) string {
	if ve, ok := policy.AsValidationError(p.Err); ok && ve.Kind != "NetworkPolicy" {
		return "applied in its fail-closed form: an invalid rule never allows"
	}
	return "applied without allow rules: it isolates the pods it selects"
}

func joinProblems(ps []manifest.Problem) error {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}

// SharedAddressWarnings describes each address that several pods report
// (the engine gives it to one of them, see policy.Engine.UpsertPod), one
// line each, sorted by address; nil when no address is shared.
func SharedAddressWarnings(e policy.Engine) []string {
	var out []string
	for _, sa := range e.SharedAddresses() {
		out = append(out, fmt.Sprintf("address %s is reported by %s and %s; it is %s's (the others are neither enforced nor matched as peers on it)",
			sa.Address, sa.Owner, strings.Join(sa.Others, ", "), sa.Owner))
	}
	return out
}

// refreshInterfaces asks each engine for its pods' interfaces again (a
// no-op for an engine without policy.Config.Interface) and applies what
// changed.
func refreshInterfaces(ctx context.Context, step Step, nodes []Node) error {
	for i, n := range nodes {
		n.Engine.RefreshInterfaces()
		if d := n.Engine.Delta(); !d.Empty() || d.Base != d.Generation {
			if err := n.Backend.Apply(ctx, d); err != nil {
				return fmt.Errorf("step %s: node %d: backend: %w", step.Name, i, err)
			}
		}
	}
	return nil
}

// Compile feeds st to a new engine of cfg. Validation problems (the engine
// applies an invalid object in its safe form) and addresses several pods
// report go to warn (nil: dropped), one line each, prefixed "warning: ".
func Compile(st *manifest.State, cfg policy.Config, warn Warn) policy.Engine {
	if warn == nil {
		warn = func(string) {}
	}
	e := policy.New(cfg)
	pods, policies := manifest.Apply(e, nil, st)
	for _, p := range append(pods, policies...) {
		warn("warning: " + p.Error())
	}
	for _, w := range SharedAddressWarnings(e) {
		warn("warning: " + w)
	}
	return e
}
