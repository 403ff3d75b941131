package policy

import (
	"fmt"
	"maps"
	"slices"

	"github.com/palisade-net/palisade/policy/ir"
)

// Interfaces for source validation (Config.Interface): each local
// endpoint gets the name Config.Interface gives, when it is a legal name
// no other endpoint holds. A name is held by the endpoint that got it until
// that endpoint lets it go (removed, or given another name); in one batch
// the names let go are free first and the rest go in pod order. So the IR
// never has two endpoints on one interface, which the backends would
// refuse whole.

// assignInterfaces sets the Interface of the endpoints just computed
// (by pod) from Config.Interface: first every name one of them stops
// using is released, then the names are taken in pod order, so that two
// pods swapping interfaces in one batch both get theirs.
func (e *engine) assignInterfaces(eps map[string]*ir.Endpoint) {
	if e.cfg.Interface == nil || len(eps) == 0 {
		return
	}
	names := make(map[string]string, len(eps))
	for key, ep := range eps {
		names[key] = e.cfg.Interface(ep.ID, ep.IPs)
		if cur := e.endpoints[key]; cur != nil && cur.Interface != names[key] {
			e.releaseInterface(cur)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(eps)) {
		e.assignInterface(eps[key], names[key])
	}
}

// assignInterface gives ep the interface name, when it is legal and no
// other endpoint holds it.
func (e *engine) assignInterface(ep *ir.Endpoint, name string) {
	delete(e.ifProblems, ep.ID)
	if name == "" {
		return
	}
	if err := ir.CheckInterfaceName(name); err != nil {
		e.ifProblems[ep.ID] = fmt.Sprintf("pod %s: interface: %v: not checked", ep.ID, err)
		return
	}
	if o, ok := e.ifOwner[name]; ok && o != ep.ID {
		e.ifProblems[ep.ID] = fmt.Sprintf("pod %s: interface %q is also pod %s's: not checked", ep.ID, name, o)
		return
	}
	e.ifOwner[name] = ep.ID
	ep.Interface = name
}

// releaseInterface lets the interface of ep (leaving, or renamed) go.
func (e *engine) releaseInterface(ep *ir.Endpoint) {
	if ep.Interface != "" && e.ifOwner[ep.Interface] == ep.ID {
		delete(e.ifOwner, ep.Interface)
	}
	delete(e.ifProblems, ep.ID)
}

func (e *engine) refreshInterfaces(podIDs []string) {
	if e.cfg.Interface == nil {
		return
	}
	if len(podIDs) == 0 {
		for key := range e.endpoints {
			e.dirtyPods[key] = struct{}{}
		}
		return
	}
	for _, key := range podIDs {
		if _, ok := e.endpoints[key]; ok {
			e.dirtyPods[key] = struct{}{}
		}
	}
}

func (e *engine) interfaceProblems() []string {
	out := make([]string, 0, len(e.ifProblems))
	for _, p := range e.ifProblems {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
