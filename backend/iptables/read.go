package iptables

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/palisade-net/palisade/policy/ir"
)

// parseSave reads iptables-save output of the filter and raw tables and
// keeps our chains, the rules of other chains that jump or go to ours and,
// for each such chain, how many rules of others come before the first of
// them (ahead). Chains of the raw table are named with rawPrefix.
// Everything else is ignored.
func parseSave(n *names, out []byte) (chains, hooks map[string][]string, ahead map[string]int, err error) {
	chains, hooks, ahead = map[string][]string{}, map[string][]string{}, map[string]int{}
	seen := map[string]int{} // rules of other chains so far
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	prefix, inTable := "", false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			inTable = line == "*filter" || line == "*raw"
			prefix = ""
			if line == "*raw" {
				prefix = rawPrefix
			}
		case !inTable:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if n.isOurs(name) {
				if _, ok := chains[prefix+name]; !ok {
					chains[prefix+name] = []string{}
				}
			}
		case strings.HasPrefix(line, "-A "):
			name, rule, _ := strings.Cut(line[3:], " ")
			ours := n.isOurs(name)
			name = prefix + name
			switch {
			case ours:
				chains[name] = append(chains[name], rule)
			case entersOurs(n, rule):
				if _, ok := hooks[name]; !ok {
					ahead[name] = seen[name]
				}
				hooks[name] = append(hooks[name], rule)
			}
			seen[name]++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("reading iptables-save output: %w", err)
	}
	return chains, hooks, ahead, nil
}

func entersOurs(n *names, rule string) bool {
	for _, target := range []string{" -j ", " -g "} {
		if i := strings.LastIndex(" "+rule, target); i >= 0 {
			rest := (" " + rule)[i+len(target):]
			name, _, _ := strings.Cut(rest, " ")
			if n.isOurs(name) {
				return true
			}
		}
	}
	return false
}

// parseIPSetSave reads ipset save output and keeps our sets.
func parseIPSetSave(n *names, out []byte) (map[string]*setModel, error) {
	sets := map[string]*setModel{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !n.ourSet(f[1]) {
			continue
		}
		switch f[0] {
		case "create":
			sm := &setModel{typ: f[2], members: map[string]struct{}{}}
			for i := 3; i+1 < len(f); i++ {
				if f[i] == "family" {
					if f[i+1] == "inet6" {
						sm.fam = ir.IPv6
					} else {
						sm.fam = ir.IPv4
					}
				}
			}
			sets[f[1]] = sm
		case "add":
			sm := sets[f[1]]
			if sm == nil {
				return nil, fmt.Errorf("ipset save: member of set %s before its create line", f[1])
			}
			sm.members[f[2]] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading ipset save output: %w", err)
	}
	return sets, nil
}
