package policy

import (
	"fmt"
	"slices"

	"github.com/palisade-net/palisade/policy/ir"
)

// Interfaces for source validation (Config.Interface): each local
// endpoint gets the name Config.Interface gives, when it is a legal name
// no other endpoint holds. A name is held by the first endpoint that got
// it until that endpoint lets it go (removed, or given another name), so
// the IR never has two endpoints on one interface, which the backends
// would refuse whole.

// assignInterface sets ep.Interface from Config.Interface; cur is the
// endpoint's previous version (nil for a new one).
func (e *engine) assignInterface(ep, cur *ir.Endpoint) {
	if e.cfg.Interface == nil {
		return
	}
	name := e.cfg.Interface(ep.ID, ep.IPs)
	if cur != nil && cur.Interface != name {
		e.releaseInterface(cur)
	}
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
