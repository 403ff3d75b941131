// Package memory is Palisade's in-memory backend: a complete model of the
// programmed IR and the reference evaluator of its semantics. It answers
// "is this flow allowed, and why" (Evaluate, Explain), backs `netpolctl
// simulate` and every unit test, and can be used by a CNI's own tests in
// place of a kernel.
//
// It keeps the IR contract exactly as the kernel backends do: the same
// validator (ir.CheckDelta) accepts and rejects every snapshot and delta,
// a delta from another generation fails with ir.ErrStaleBase, invalid IR with ir.ErrInvalid,
// and what is accepted is matched as the kernel backends match it (a fuzz
// test compares the verdicts with the nftables and iptables rulesets). It
// applies changes all or nothing; unlike a kernel backend it cannot drift,
// so Sync never reports repairs and it is never dirty. Unlike a kernel
// backend it knows its state from the start: a new Backend, and one after
// Cleanup, holds the empty snapshot of generation 0, to which a delta with
// Base 0 applies without a Sync.
//
// Source validation (ir.Endpoint.Interface) is held, validated and dumped,
// but never changes a verdict: a Flow names its source by address, and a
// flow from a pod's address is that pod's, which is what the kernel
// backends make true by dropping, on the pod's interface, every packet
// with another source. A forged packet is not a flow this model admits; it
// is tested on real kernels (backendtest.RunSourceValidation).
//
// Its Counters (backend.CounterReader) count Evaluate's decisions per rule
// and isolated default, as a kernel backend counts packets, for the unit
// tests of code that reads counters; a list replaced with other rules
// starts again at zero, as a rewritten kernel chain does.
package memory

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
)

// Config configures a Backend. The zero value works.
type Config struct {
	// NodeIPs are the addresses of the node the endpoints run on. A flow
	// from one of them to a local endpoint is always allowed (kubelet
	// probes), as a kernel backend allows node-to-pod traffic.
	NodeIPs []netip.Addr
}

// Backend holds a programmed IR snapshot. It is safe for concurrent use.
type Backend struct {
	cfg Config

	mu    sync.RWMutex
	snap  *ir.Snapshot
	state *state
}

var _ backend.Backend = (*Backend)(nil)

// New returns an empty Backend (generation 0, nothing enforced).
func New(cfg Config) *Backend {
	b := &Backend{cfg: cfg, snap: &ir.Snapshot{}}
	b.state = reindex(b.snap, nil, nil)
	return b
}

// Sync replaces the programmed state with snap after validating it
// (ir.ErrInvalid when it breaks the contract, as for every backend). On
// error the previous state stays.
func (b *Backend) Sync(ctx context.Context, snap *ir.Snapshot) (backend.SyncReport, error) {
	if err := ctx.Err(); err != nil {
		return backend.SyncReport{}, err
	}
	if snap == nil {
		return backend.SyncReport{}, fmt.Errorf("memory: Sync: %w: nil snapshot", ir.ErrInvalid)
	}
	next := snap.Clone()
	next.Sort()
	if err := next.Validate(); err != nil {
		return backend.SyncReport{}, fmt.Errorf("memory: Sync of generation %d: %w", snap.Generation, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	changes := countChanges(b.snap, next)
	b.snap, b.state = next, reindex(next, b.state, b.snap)
	return backend.SyncReport{Generation: next.Generation, Changes: changes}, nil
}

// Apply applies d, all or nothing. It fails as a kernel backend does
// (backend.CheckApply, ir.CheckDelta): with a nil delta or one that does not
// fit the state (ir.ErrInvalid), or of another base generation
// (ir.ErrStaleBase).
func (b *Backend) Apply(ctx context.Context, d *ir.Delta) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := backend.CheckApply(ctx, "memory", d, true, false, b.snap.Generation); err != nil {
		return err
	}
	if b.applyMembers(d) {
		return nil
	}
	next := b.snap.Clone()
	if err := next.Apply(d); err != nil {
		return fmt.Errorf("memory: Apply: %w", err)
	}
	b.snap, b.state = next, reindex(next, b.state, b.snap)
	return nil
}

// Cleanup forgets everything: nothing is enforced afterwards (the empty
// snapshot of generation 0).
func (b *Backend) Cleanup(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.snap = &ir.Snapshot{}
	b.state = reindex(b.snap, nil, nil)
	return nil
}

// Snapshot returns a copy of the programmed state.
func (b *Backend) Snapshot() *ir.Snapshot {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.snap.Clone()
}

// Generation returns the programmed generation.
func (b *Backend) Generation() uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.snap.Generation
}

// countChanges counts the sets (their attributes, then each member), rule
// lists and endpoints that differ between two sorted snapshots.
func countChanges(a, b *ir.Snapshot) int {
	n := 0
	n += diffByID(a.AddressSets, b.AddressSets, func(s ir.AddressSet) string { return s.ID },
		func(x, y ir.AddressSet) int {
			return boolInt(x.Description != y.Description || x.Hosts != y.Hosts) + symDiff(x.Members, y.Members)
		})
	n += diffByID(a.PortSets, b.PortSets, func(s ir.PortSet) string { return s.ID },
		func(x, y ir.PortSet) int {
			return boolInt(x.Protocol != y.Protocol || x.PortName != y.PortName) + symDiff(x.Members, y.Members)
		})
	n += diffByID(a.RuleLists, b.RuleLists, func(r ir.RuleList) string { return r.ID },
		func(x, y ir.RuleList) int { return boolInt(!rulesEqual(x, y)) })
	n += diffByID(a.Endpoints, b.Endpoints, func(e ir.Endpoint) string { return e.ID },
		func(x, y ir.Endpoint) int { return boolInt(!x.Equal(&y)) })
	return n
}

func diffByID[T any](a, b []T, id func(T) string, diff func(x, y T) int) int {
	old := make(map[string]T, len(a))
	for _, x := range a {
		old[id(x)] = x
	}
	n := 0
	for _, y := range b {
		x, ok := old[id(y)]
		if !ok {
			n++
			continue
		}
		delete(old, id(y))
		n += diff(x, y)
	}
	return n + len(old)
}

func symDiff[T comparable](a, b []T) int {
	in := make(map[T]bool, len(a))
	for _, x := range a {
		in[x] = true
	}
	n := 0
	for _, y := range b {
		if in[y] {
			delete(in, y)
		} else {
			n++
		}
	}
	return n + len(in)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func rulesEqual(x, y ir.RuleList) bool { return x.Equal(&y) }

// Dump renders the programmed state as sorted, stable text: one line per set
// member, rule and endpoint tier.
func (b *Backend) Dump() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	s := b.snap
	var w strings.Builder
	fmt.Fprintf(&w, "generation %d\n", s.Generation)
	for _, set := range s.AddressSets {
		fmt.Fprintf(&w, "address-set %s # %s\n", set.ID, set.Description)
		for _, m := range set.Members {
			fmt.Fprintf(&w, "  %s\n", m)
		}
	}
	for _, set := range s.PortSets {
		fmt.Fprintf(&w, "port-set %s %s %q\n", set.ID, set.Protocol, set.PortName)
		for _, m := range set.Members {
			fmt.Fprintf(&w, "  %s\n", m)
		}
	}
	for _, rl := range s.RuleLists {
		fmt.Fprintf(&w, "rule-list %s %s %s priority %d\n", rl.ID, rl.Origin, rl.Direction, rl.Priority)
		for _, r := range rl.Rules {
			fmt.Fprintf(&w, "  %s\n", FormatRule(r))
		}
	}
	for _, ep := range s.Endpoints {
		fmt.Fprintf(&w, "endpoint %s %v\n", ep.ID, ep.IPs)
		if ep.Interface != "" {
			fmt.Fprintf(&w, "endpoint %s interface %s\n", ep.ID, ep.Interface)
		}
		for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
			for _, t := range ep.Tiers(dir) {
				fmt.Fprintf(&w, "  %s %s %s\n", dir, t.Kind, strings.Join(t.RuleLists, " "))
			}
		}
	}
	return w.String()
}

// FormatRule renders a rule on one line, e.g.
// "[0] Allow peers=pods-1a2b… ports=TCP/80,UDP/53-54".
func FormatRule(r ir.Rule) string {
	var w strings.Builder
	fmt.Fprintf(&w, "[%d]", r.Index)
	if r.Name != "" {
		fmt.Fprintf(&w, " %q", r.Name)
	}
	fmt.Fprintf(&w, " %s", r.Action)
	if r.AllPeers {
		w.WriteString(" peers=*")
	} else {
		fmt.Fprintf(&w, " peers=%s", strings.Join(r.Peers, ","))
	}
	if r.AllPorts {
		w.WriteString(" ports=*")
	} else {
		ports := make([]string, len(r.Ports))
		for i, p := range r.Ports {
			ports[i] = FormatPort(p)
		}
		fmt.Fprintf(&w, " ports=%s", strings.Join(ports, ","))
	}
	return w.String()
}

// FormatPort renders a port match: "TCP/80", "UDP/1000-2000", "SCTP/*",
// "TCP/@tcp-http".
func FormatPort(p ir.PortMatch) string {
	switch {
	case p.NamedSet != "":
		return fmt.Sprintf("%s/@%s", p.Protocol, p.NamedSet)
	case p.Port == 0:
		return fmt.Sprintf("%s/*", p.Protocol)
	case p.EndPort != p.Port:
		return fmt.Sprintf("%s/%d-%d", p.Protocol, p.Port, p.EndPort)
	}
	return fmt.Sprintf("%s/%d", p.Protocol, p.Port)
}

// Affected returns the addresses of the endpoints, in the state held, whose
// verdicts d may change: the endpoints d upserts or removes, and those whose
// tiers use a rule list d replaces or a rule list with a rule that uses an
// address or port set d changes. Call it before applying d (for the old
// addresses of endpoints d changes or removes) and after (for the new ones);
// the union of the two answers covers every endpoint a flow's verdict can
// change at. Names that the state does not hold are skipped; a nil or empty
// delta affects nothing. The order of the addresses is unspecified.
func (b *Backend) Affected(d *ir.Delta) []netip.Addr {
	if d == nil {
		return nil
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	sets := make(map[string]bool, len(d.AddressSetChanges)+len(d.PortSetChanges))
	for _, ch := range d.AddressSetChanges {
		sets[ch.ID] = true
	}
	for _, ch := range d.PortSetChanges {
		sets[ch.ID] = true
	}
	lists := make(map[string]bool, len(d.RuleLists))
	for _, rl := range d.RuleLists {
		lists[rl.ID] = true
	}
	if len(sets) > 0 {
		for id, rl := range b.state.lists {
			if !lists[id] && usesSet(rl, sets) {
				lists[id] = true
			}
		}
	}
	named := make(map[string]bool, len(d.Endpoints)+len(d.RemovedEndpoints))
	for _, ep := range d.Endpoints {
		named[ep.ID] = true
	}
	for _, id := range d.RemovedEndpoints {
		named[id] = true
	}
	var out []netip.Addr
	for i := range b.snap.Endpoints {
		ep := &b.snap.Endpoints[i]
		if named[ep.ID] || (len(lists) > 0 && usesList(ep, lists)) {
			out = append(out, ep.IPs...)
		}
	}
	return out
}

func usesSet(rl *ir.RuleList, sets map[string]bool) bool {
	for _, r := range rl.Rules {
		for _, id := range r.Peers {
			if sets[id] {
				return true
			}
		}
		for _, p := range r.Ports {
			if p.NamedSet != "" && sets[p.NamedSet] {
				return true
			}
		}
	}
	return false
}

func usesList(ep *ir.Endpoint, lists map[string]bool) bool {
	for _, tiers := range [][]ir.Tier{ep.Ingress, ep.Egress} {
		for _, t := range tiers {
			for _, id := range t.RuleLists {
				if lists[id] {
					return true
				}
			}
		}
	}
	return false
}
