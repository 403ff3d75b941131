package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/internal/rulecount"
	"github.com/palisade-net/palisade/policy/ir"
)

var _ backend.CounterReader = (*Backend)(nil)

// Counters reads the counters of our chains: one `iptables-save -c -t
// filter` and one `ip6tables-save -c -t filter`, side by side, whatever
// the number of policies; ipsets are not read. Each rule of a list chain
// (PREFIX-L<hash>) that goes to PREFIX-ALLOW or PREFIX-PASS or drops, and
// whose comment reads back as one the compiler writes, counts for the IR
// rule it names; the isolated default is the DROP at the end of the
// NetworkPolicy tier in the profile chains (PREFIX-P<hash>), whose
// direction the profile's first rules name. Each list's tier and ID come
// from the jumps to its chain, checked against the chain's name (a hash of
// the ID). Other rules, ours or not (an NFLOG rule, say), are ignored. It
// needs no Sync; with nothing of ours it returns empty Counters.
func (b *Backend) Counters(ctx context.Context) (backend.Counters, error) {
	b.mu.Lock()
	err := b.resolve(ctx)
	bins := b.bins
	b.mu.Unlock()
	if err != nil {
		return backend.Counters{}, err
	}
	var outs [2][]byte
	var errs [2]error
	var wg sync.WaitGroup
	for f := range 2 {
		wg.Go(func() {
			outs[f], errs[f] = b.run.Run(ctx, bins.save[f], []string{"-c", "-t", "filter"}, nil)
			if errs[f] != nil {
				errs[f] = fmt.Errorf("iptables: reading the %s counters: %w", familyName(families[f]), errs[f])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return backend.Counters{}, err
	}
	var t rulecount.Tally
	for f := range 2 {
		if err := tallySave(b.n, outs[f], &t); err != nil {
			return backend.Counters{}, err
		}
	}
	return t.Counters(), nil
}

// savedRule is a rule of one of our chains in iptables-save -c output.
type savedRule struct {
	chain   string
	n       backend.Count
	comment string
	target  string // "-j X" or "-g X", the last one of the rule
}

// tallySave adds the counters of our chains in out (iptables-save -c -t
// filter) to t.
func tallySave(n *names, out []byte, t *rulecount.Tally) error {
	var rules []savedRule
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	inFilter := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			inFilter = line == "*filter"
			continue
		case !inFilter || !strings.HasPrefix(line, "["):
			continue
		}
		r, ok := parseSavedRule(line)
		if ok && n.isOurs(r.chain) {
			rules = append(rules, r)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading iptables-save -c output: %w", err)
	}
	listPrefix, profilePrefix := n.chain+"-L", n.chain+"-P"
	for _, r := range rules {
		target, ok := strings.CutPrefix(r.target, "-j ")
		if !ok || !strings.HasPrefix(target, listPrefix) {
			continue
		}
		if tier, id, ok := rulecount.ParseTierJump(r.comment); ok {
			if n.listChain(id) != target {
				id = ""
			}
			t.List(target, tier, id)
		}
	}
	profileDir := map[string]ir.Direction{}
	for _, r := range rules {
		if strings.HasPrefix(r.chain, profilePrefix) {
			for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
				if r.comment == "start of the "+strings.ToLower(string(dir))+" check" {
					profileDir[r.chain] = dir
				}
			}
		}
	}
	for _, r := range rules {
		switch {
		case strings.HasPrefix(r.chain, listPrefix):
			var action ir.Action
			switch r.target {
			case "-g " + n.allowC():
				action = ir.Allow
			case "-g " + n.passC():
				action = ir.Pass
			case "-j DROP":
				action = ir.Deny
			default:
				continue // decides nothing: not a rule of the list
			}
			ref, ok := parseRuleComment(r.comment)
			if ok && ref.Action == action {
				t.Rule(r.chain, ref, r.n)
			} else {
				t.Unattributed(r.n)
			}
		case strings.HasPrefix(r.chain, profilePrefix):
			if dir, ok := profileDir[r.chain]; ok && r.target == "-j DROP" && r.comment == rulecount.IsolatedComment {
				t.Default(ir.TierNetworkPolicy, dir, ir.Deny, r.n)
			}
		}
	}
	return nil
}

// parseSavedRule reads "[packets:bytes] -A CHAIN ...".
func parseSavedRule(line string) (savedRule, bool) {
	var r savedRule
	cnt, rest, ok := strings.Cut(line, "] -A ")
	if !ok {
		return r, false
	}
	p, by, ok := strings.Cut(strings.TrimPrefix(cnt, "["), ":")
	if !ok {
		return r, false
	}
	var err1, err2 error
	r.n.Packets, err1 = strconv.ParseUint(p, 10, 64)
	r.n.Bytes, err2 = strconv.ParseUint(by, 10, 64)
	if err1 != nil || err2 != nil {
		return r, false
	}
	r.chain, rest, _ = strings.Cut(rest, " ")
	rest = " " + rest
	if i := strings.Index(rest, " -m comment --comment "); i >= 0 {
		c := rest[i+len(" -m comment --comment "):]
		if strings.HasPrefix(c, `"`) {
			c, _, _ = strings.Cut(c[1:], `"`)
		} else {
			c, _, _ = strings.Cut(c, " ")
		}
		r.comment = c
	}
	if i := max(strings.LastIndex(rest, " -j "), strings.LastIndex(rest, " -g ")); i >= 0 {
		// The target's name, without its options (MARK --set-xmark ...).
		if f := strings.Fields(rest[i+4:]); len(f) > 0 {
			r.target = rest[i+1:i+3] + " " + f[0]
		}
	}
	return r, true
}

// parseRuleComment reads a rule comment as ruleComment writes it (and
// sanitize stores it): `Kind ns/name ingress rule 3 name: allow`. It
// accepts only text that ruleComment renders back exactly.
func parseRuleComment(c string) (rulecount.Ref, bool) {
	ref, ok := rulecount.ParseRule(c, func(s string) (ir.Origin, bool) {
		kind, obj, ok := strings.Cut(s, " ")
		if !ok || kind == "" || strings.Contains(obj, " ") {
			return ir.Origin{}, false
		}
		ns, name, namespaced := strings.Cut(obj, "/")
		switch {
		case !namespaced && obj != "":
			return ir.Origin{Kind: kind, Name: obj}, true
		case namespaced && ns != "" && name != "" && !strings.Contains(name, "/"):
			return ir.Origin{Kind: kind, Namespace: ns, Name: name}, true
		}
		return ir.Origin{}, false
	}, func(s string) (string, bool) { return s, true })
	if !ok || sanitize(ruleComment(ref.List(), ref.Rule())) != c {
		return rulecount.Ref{}, false
	}
	return ref, true
}
