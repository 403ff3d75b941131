package nftables

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// kernelState is our table as read from the kernel.
type kernelState struct {
	exists bool
	flags  uint32
	m      *model
	attrs  map[string]setAttrs // sets: attributes as found
}

// diffModels records in t (when not nil) what turns have into want, and
// returns one line per difference. Everything is changed in place: the
// table and the base chains are never deleted, except a base chain whose
// hook or priority is not ours (deleted and re-created in the same batch).
func diffModels(have *kernelState, want *model, t *tx) []string {
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }

	switch {
	case !have.exists:
		note("table missing")
		t.createTable()
	case have.flags&unix.NFT_TABLE_F_DORMANT != 0:
		note("table dormant")
		t.createTable()
	}

	diffLimits(have.m, want, t, note)
	rebuild := false
	for _, name := range sortedKeys(want.sets) {
		if _, ok := have.m.sets[name]; ok && have.attrs[name] != want.sets[name].attrs() {
			note("set %s: type or flags differ", name)
			rebuild = true
		}
	}
	for _, name := range sortedKeys(want.chains) {
		if hc, ok := have.m.chains[name]; ok && (hc.base == nil) != (want.chains[name].base == nil) {
			note("chain %s: base chain expected to be regular or the reverse", name)
			rebuild = true
		}
	}
	if rebuild {
		rebuildAll(have, want, t)
		return notes
	}

	for _, name := range sortedKeys(want.sets) {
		ws, hs := want.sets[name], have.m.sets[name]
		switch {
		case hs == nil:
			note("set %s missing", name)
			t.createSet(ws)
			addElements(ws, t)
		case hs.broken:
			note("set %s: elements unreadable", name)
			t.flushSet(hs)
			addElements(ws, t)
		default:
			if missing, extra := diffElements(hs, ws, t); missing+extra > 0 {
				note("set %s: %d elements missing or different, %d unexpected", name, missing, extra)
			}
		}
	}
	for _, name := range sortedKeys(have.m.sets) {
		if want.sets[name] == nil {
			note("set %s unexpected", name)
			t.deleteSet(name)
		}
	}
	for _, name := range sortedKeys(want.chains) {
		wc, hc := want.chains[name], have.m.chains[name]
		switch {
		case hc == nil:
			note("chain %s missing", name)
			t.createChain(wc)
			t.writeRules(wc, false, 0)
		case !sameSpec(hc, wc):
			note("chain %s: hook, priority, type or policy differ", name)
			t.deleteChain(name, len(hc.rules))
			t.createChain(wc)
			t.writeRules(wc, false, 0)
		case !sameRules(hc.rules, wc.rules):
			note("chain %s: rules differ (%d found, %d expected)", name, len(hc.rules), len(wc.rules))
			t.writeRules(wc, true, len(hc.rules))
		}
	}
	for _, name := range sortedKeys(have.m.chains) {
		if want.chains[name] == nil {
			note("chain %s unexpected", name)
			t.deleteChain(name, len(have.m.chains[name].rules))
		}
	}
	return notes
}

// rebuildAll replaces every set and chain of the table within the batch,
// keeping (flushed and refilled) the base chains whose hook is right.
func rebuildAll(have *kernelState, want *model, t *tx) {
	for _, name := range sortedKeys(have.m.sets) {
		if hs := have.m.sets[name]; have.attrs[name].flags&unix.NFT_SET_MAP != 0 {
			t.flushSet(hs) // drops the map entries' references to chains
		}
	}
	kept := map[string]bool{}
	for _, name := range sortedKeys(have.m.chains) {
		hc, wc := have.m.chains[name], want.chains[name]
		if wc != nil && hc.base != nil && sameSpec(hc, wc) {
			kept[name] = true
			t.writeRules(wc, true, len(hc.rules))
			continue
		}
		t.deleteChain(name, len(hc.rules))
	}
	for _, name := range sortedKeys(have.m.sets) {
		t.deleteSet(name)
	}
	for _, name := range sortedKeys(want.sets) {
		t.createSet(want.sets[name])
		addElements(want.sets[name], t)
	}
	for _, name := range sortedKeys(want.chains) {
		if !kept[name] {
			t.createChain(want.chains[name])
			t.writeRules(want.chains[name], false, 0)
		}
	}
}

func addElements(s *setModel, t *tx) {
	if t == nil {
		return
	}
	for iv := range s.ivals {
		t.addInterval(s, iv)
	}
	for a := range s.hosts {
		t.addHost(s, a)
	}
	for ap := range s.ports {
		t.addPort(s, ap)
	}
	for a, c := range s.jumps {
		t.addDispatch(s, a, c)
	}
	for name := range s.ifaces {
		t.addIface(s, name)
	}
	for p := range s.pairs {
		t.addPair(s, p)
	}
}

// diffElements records the element changes from have to want (same kind).
func diffElements(have, want *setModel, t *tx) (missing, extra int) {
	for iv := range want.ivals {
		if _, ok := have.ivals[iv]; !ok {
			missing++
			t.addInterval(want, iv)
		}
	}
	for iv := range have.ivals {
		if _, ok := want.ivals[iv]; !ok {
			extra++
			t.delInterval(want, iv)
		}
	}
	for a := range want.hosts {
		if _, ok := have.hosts[a]; !ok {
			missing++
			t.addHost(want, a)
		}
	}
	for a := range have.hosts {
		if _, ok := want.hosts[a]; !ok {
			extra++
			t.delHost(want, a)
		}
	}
	for ap := range want.ports {
		if _, ok := have.ports[ap]; !ok {
			missing++
			t.addPort(want, ap)
		}
	}
	for ap := range have.ports {
		if _, ok := want.ports[ap]; !ok {
			extra++
			t.delPort(want, ap)
		}
	}
	for a, c := range want.jumps {
		hc, ok := have.jumps[a]
		if ok && hc == c {
			continue
		}
		missing++
		if ok {
			t.delDispatch(want, a)
		}
		t.addDispatch(want, a, c)
	}
	for a := range have.jumps {
		if _, ok := want.jumps[a]; !ok {
			extra++
			t.delDispatch(want, a)
		}
	}
	for name := range want.ifaces {
		if _, ok := have.ifaces[name]; !ok {
			missing++
			t.addIface(want, name)
		}
	}
	for name := range have.ifaces {
		if _, ok := want.ifaces[name]; !ok {
			extra++
			t.delIface(want, name)
		}
	}
	for p := range want.pairs {
		if _, ok := have.pairs[p]; !ok {
			missing++
			t.addPair(want, p)
		}
	}
	for p := range have.pairs {
		if _, ok := want.pairs[p]; !ok {
			extra++
			t.delPair(want, p)
		}
	}
	return missing, extra
}
