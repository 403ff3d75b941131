package iptables

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/palisade-net/palisade/policy/ir"
)

// plan is one change of the kernel state, as the input of (at most) four
// commands run in this order: ipset restore (create sets, add members, and
// delete members when no rule changes), iptables-restore --noflush and
// ip6tables-restore --noflush (our chains declared, which flushes them, and
// refilled; hook rules fixed; dead chains deleted), ipset restore (delete
// members and destroy sets nothing references any more). New sets and
// chains are therefore complete before any rule jumps to them, and old ones
// go only after nothing does.
type plan struct {
	pre, post []string
	tables    [2]table
	n         int
	err       error // the kernel holds something the plan cannot fix
}

type table struct {
	write   map[string][]string // chains to declare (flush) and fill
	del     []string            // chains to flush and delete
	hookDel []string            // "-D FORWARD …"
	hookIns []string            // "-I FORWARD 1 …"
}

func (t *table) empty() bool {
	return len(t.write) == 0 && len(t.del) == 0 && len(t.hookDel) == 0 && len(t.hookIns) == 0
}

func (p *plan) empty() bool {
	return len(p.pre) == 0 && len(p.post) == 0 && p.tables[0].empty() && p.tables[1].empty()
}

// restoreInput renders one family's part as iptables-restore --noflush
// input, a section per table (filter, then raw: chains named with
// rawPrefix); nil when there is nothing to do.
func (t *table) restoreInput() []byte {
	if t.empty() {
		return nil
	}
	var b strings.Builder
	for _, tname := range []string{"filter", "raw"} {
		in := func(name string) (string, bool) {
			tn, c := splitTable(name)
			return c, tn == tname
		}
		// hookLine is "-D CHAIN rule" or "-I CHAIN 1 rule".
		hookLine := func(l string) (string, bool) {
			op, rest, _ := strings.Cut(l, " ")
			chain, rule, _ := strings.Cut(rest, " ")
			c, ok := in(chain)
			return op + " " + c + " " + rule, ok
		}
		var sec strings.Builder
		chains := slices.Sorted(maps.Keys(t.write))
		dels := slices.Sorted(slices.Values(t.del))
		for _, name := range append(slices.Clone(chains), dels...) {
			if c, ok := in(name); ok {
				sec.WriteString(":" + c + " - [0:0]\n")
			}
		}
		for _, name := range chains {
			if c, ok := in(name); ok {
				for _, r := range t.write[name] {
					sec.WriteString("-A " + c + " " + r + "\n")
				}
			}
		}
		for _, l := range append(slices.Clone(t.hookDel), t.hookIns...) {
			if l, ok := hookLine(l); ok {
				sec.WriteString(l + "\n")
			}
		}
		for _, name := range dels {
			if c, ok := in(name); ok {
				sec.WriteString("-X " + c + "\n")
			}
		}
		if sec.Len() > 0 {
			b.WriteString("*" + tname + "\n" + sec.String() + "COMMIT\n")
		}
	}
	return []byte(b.String())
}

func ipsetInput(lines []string) []byte {
	if len(lines) == 0 {
		return nil
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// planOps turns the changes a state recorded while applying a delta into a
// plan.
func planOps(s *state) *plan {
	o := s.ops
	p := &plan{n: o.n}
	for f := range p.tables {
		p.tables[f].write = map[string][]string{}
	}
	for name := range o.chains {
		c := s.m.chains[name]
		for f := range p.tables {
			if c == nil {
				p.tables[f].del = append(p.tables[f].del, name)
			} else {
				p.tables[f].write[name] = c[f]
			}
		}
	}
	for _, h := range o.hooks {
		for f := range p.tables {
			if h.insert {
				p.tables[f].hookIns = append(p.tables[f].hookIns, "-I "+h.builtin+" 1 "+h.rule)
			} else {
				p.tables[f].hookDel = append(p.tables[f].hookDel, "-D "+h.builtin+" "+h.rule)
			}
		}
	}
	p.pre = append(slices.Clone(o.create), o.adds...)
	if len(o.chains) == 0 {
		p.pre = append(p.pre, o.dels...)
	} else {
		p.post = append(p.post, o.dels...)
	}
	p.post = append(p.post, o.destroy...)
	return p
}

// kernel is our part of the kernel state, as read back.
type kernel struct {
	chains [2]map[string][]string // our chains per family
	hooks  [2]map[string][]string // built-in chain → its rules that enter ours
	ahead  [2]map[string]int      // built-in chain → rules of others before the first of those
	sets   map[string]*setModel
}

// planDiff compares what the kernel holds with want and returns the plan
// that makes them equal. With describe set, it also lists every
// difference, one line each.
//
// A nil want is the empty state: everything of ours goes, the rules
// entering our chains included.
func planDiff(n *names, k *kernel, want *model, describe bool) (*plan, []string) {
	if want == nil {
		want = newModel()
	}
	hooks := n.hookRules(want)
	if len(want.chains) == 0 {
		hooks = nil // the empty state: no rule enters our chains
	}
	p := &plan{}
	var lines []string
	note := func(format string, args ...any) {
		p.n++
		if describe {
			lines = append(lines, fmt.Sprintf(format, args...))
		}
	}
	for f, fam := range families {
		t := &p.tables[f]
		t.write = map[string][]string{}
		for _, name := range slices.Sorted(maps.Keys(want.chains)) {
			rules := want.chains[name][f]
			have, ok := k.chains[f][name]
			switch {
			case !ok:
				note("%s chain %s: missing", familyName(fam), name)
			case !slices.Equal(have, rules):
				note("%s chain %s: rules differ (%d rules, want %d)", familyName(fam), name, len(have), len(rules))
			default:
				continue
			}
			t.write[name] = rules
		}
		for _, name := range slices.Sorted(maps.Keys(k.chains[f])) {
			if _, ok := want.chains[name]; !ok {
				note("%s chain %s: not ours to keep", familyName(fam), name)
				t.del = append(t.del, name)
			}
		}
		for _, builtin := range slices.Sorted(maps.Keys(hooks)) {
			rule := hooks[builtin]
			have := k.hooks[f][builtin]
			ahead := k.ahead[f][builtin]
			switch {
			case len(have) == 1 && have[0] == rule && ahead == 0:
				continue
			case len(have) == 1 && have[0] == rule:
				// Another component inserted rules before ours (say an
				// ACCEPT): they would decide before our checks. The
				// delete and insert below are one transaction.
				note("%s chain %s: %d rules of others before the rule entering %s, which must be first", familyName(fam), builtin, ahead, n.chain)
			default:
				note("%s chain %s: the rule entering %s is missing or differs", familyName(fam), builtin, n.chain)
			}
			for _, r := range have {
				t.hookDel = append(t.hookDel, "-D "+builtin+" "+r)
			}
			t.hookIns = append(t.hookIns, "-I "+builtin+" 1 "+rule)
		}
		// Rules entering chains we delete must go too.
		for _, builtin := range slices.Sorted(maps.Keys(k.hooks[f])) {
			if _, ok := hooks[builtin]; ok {
				continue
			}
			for _, r := range k.hooks[f][builtin] {
				note("%s chain %s: stray rule entering %s", familyName(fam), builtin, n.chain)
				t.hookDel = append(t.hookDel, "-D "+builtin+" "+r)
			}
		}
	}
	rulesChange := !p.tables[0].empty() || !p.tables[1].empty()
	var dels []string
	for _, name := range slices.Sorted(maps.Keys(want.sets)) {
		ws := want.sets[name]
		hs := k.sets[name]
		if hs != nil && (hs.typ != ws.typ || hs.fam != ws.fam) {
			// Not something we made; rules of ours may reference it, so it
			// cannot be replaced in place.
			p.err = fmt.Errorf("iptables: set %s is %s family %s, want %s %s: destroy it by hand", name, hs.typ, famWord(hs.fam), ws.typ, famWord(ws.fam))
			continue
		}
		if hs == nil {
			note("set %s: missing", name)
			p.pre = append(p.pre, createLine(name, ws.typ, ws.fam))
			hs = &setModel{}
		}
		var add, del []string
		for m := range ws.members {
			if _, ok := hs.members[m]; !ok {
				add = append(add, m)
			}
		}
		for m := range hs.members {
			if _, ok := ws.members[m]; !ok {
				del = append(del, m)
			}
		}
		slices.Sort(add)
		slices.Sort(del)
		for _, m := range add {
			note("set %s: member %s missing", name, m)
			p.pre = append(p.pre, "add "+name+" "+m)
		}
		for _, m := range del {
			note("set %s: member %s not ours to keep", name, m)
			dels = append(dels, "del "+name+" "+m)
		}
	}
	if rulesChange {
		p.post = append(p.post, dels...)
	} else {
		p.pre = append(p.pre, dels...)
	}
	for _, name := range slices.Sorted(maps.Keys(k.sets)) {
		if _, ok := want.sets[name]; !ok {
			note("set %s: not ours to keep", name)
			p.post = append(p.post, "destroy "+name)
		}
	}
	return p, lines
}

// familyName names a family in messages.
func familyName(f ir.Family) string {
	if f == ir.IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// wrongSets lists, sorted, the sets of want that the kernel holds with
// another type or family (made by someone else, or by an older version).
func wrongSets(k *kernel, want *model) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(want.sets)) {
		if hs, ws := k.sets[name], want.sets[name]; hs != nil && (hs.typ != ws.typ || hs.fam != ws.fam) {
			out = append(out, name)
		}
	}
	return out
}

// tempSet is the set that stands in for name while name is re-created.
func (n *names) tempSet(name string) string { return n.set + "-r" + hashHex("replace "+name) }

// planReplaceSets is the first of two plans that replace the sets in bad,
// which the kernel holds with the wrong type or family: a set cannot change
// type, and one that a rule references can be neither destroyed nor swapped
// with a set of another type. It fills a temporary set of the right type
// and members for each, rewrites our chains that reference one to use the
// temporary instead (one iptables-restore transaction per family, so no
// rule is ever without its set), and destroys the sets in bad. The next
// plan, made from a fresh read, creates them again and moves the rules back
// (and destroys the temporaries, which are ours and unwanted).
func planReplaceSets(n *names, k *kernel, want *model, bad []string) *plan {
	p := &plan{}
	sub := map[string]string{}
	for _, name := range bad {
		ws, tmp := want.sets[name], n.tempSet(name)
		sub["--match-set "+name+" "] = "--match-set " + tmp + " "
		// A temporary left by an interrupted replacement has the same
		// type (it derives from name): -exist keeps it, flush empties it.
		p.pre = append(p.pre, createLine(tmp, ws.typ, ws.fam), "flush "+tmp)
		for _, m := range slices.Sorted(maps.Keys(ws.members)) {
			p.pre = append(p.pre, "add "+tmp+" "+m)
		}
		p.post = append(p.post, "destroy "+name)
		p.n++
	}
	for f := range p.tables {
		t := &p.tables[f]
		t.write = map[string][]string{}
		for _, name := range slices.Sorted(maps.Keys(k.chains[f])) {
			rules, changed := slices.Clone(k.chains[f][name]), false
			for i, r := range rules {
				for from, to := range sub {
					if strings.Contains(r+" ", from) {
						rules[i] = strings.TrimSuffix(strings.ReplaceAll(r+" ", from, to), " ")
						r, changed = rules[i], true
					}
				}
			}
			if changed {
				t.write[name] = rules
			}
		}
	}
	return p
}
