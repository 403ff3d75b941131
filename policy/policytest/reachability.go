package policytest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Peer matches pods by namespace and name; an empty field matches any.
type Peer struct {
	Namespace string
	Pod       string
}

// Matches reports whether pod ("namespace/name") matches p.
func (p Peer) Matches(pod string) bool {
	ns, name, _ := strings.Cut(pod, "/")
	return (p.Namespace == "" || p.Namespace == ns) && (p.Pod == "" || p.Pod == name)
}

// Reachability is a truth table over a fixed list of pods ("namespace/name"):
// for every ordered pair, whether a connection from the first to the second
// is allowed. Rows are sources, columns destinations.
//
// Methods that name a pod outside the table record an error (see Err) and
// change nothing, so a mistake in scenario data surfaces in the test that
// uses it rather than as a panic.
type Reachability struct {
	pods  []string
	index map[string]int
	cells [][]bool
	errs  []string
}

// NewReachability returns a table over pods with every pair set to def.
func NewReachability(pods []string, def bool) *Reachability {
	r := &Reachability{pods: slices.Clone(pods), index: make(map[string]int, len(pods))}
	for i, p := range pods {
		if _, dup := r.index[p]; dup {
			r.errs = append(r.errs, fmt.Sprintf("pod %q listed twice", p))
		}
		r.index[p] = i
	}
	r.cells = make([][]bool, len(pods))
	for i := range r.cells {
		r.cells[i] = make([]bool, len(pods))
		for j := range r.cells[i] {
			r.cells[i][j] = def
		}
	}
	return r
}

// Pods returns the table's pods in order.
func (r *Reachability) Pods() []string { return slices.Clone(r.pods) }

// Err reports every unknown pod a method was given, or nil.
func (r *Reachability) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("reachability: %s", strings.Join(r.errs, "; "))
}

func (r *Reachability) lookup(pod string) (int, bool) {
	i, ok := r.index[pod]
	if !ok {
		r.errs = append(r.errs, fmt.Sprintf("unknown pod %q", pod))
	}
	return i, ok
}

// Expect sets the pair from → to.
func (r *Reachability) Expect(from, to string, allowed bool) {
	i, okFrom := r.lookup(from)
	j, okTo := r.lookup(to)
	if okFrom && okTo {
		r.cells[i][j] = allowed
	}
}

// ExpectPeer sets every pair whose source matches from and destination
// matches to.
// A peer that matches no pod of the table is recorded as an error.
func (r *Reachability) ExpectPeer(from, to Peer, allowed bool) {
	matchedFrom, matchedTo := false, false
	for i, src := range r.pods {
		if !from.Matches(src) {
			continue
		}
		matchedFrom = true
		for j, dst := range r.pods {
			if to.Matches(dst) {
				matchedTo = true
				r.cells[i][j] = allowed
			}
		}
	}
	if !matchedFrom {
		r.errs = append(r.errs, fmt.Sprintf("peer %+v matches no source pod", from))
	}
	if matchedFrom && !matchedTo {
		r.errs = append(r.errs, fmt.Sprintf("peer %+v matches no destination pod", to))
	}
}

// ExpectAllIngress sets every pair whose destination is pod (its column).
func (r *Reachability) ExpectAllIngress(pod string, allowed bool) {
	if j, ok := r.lookup(pod); ok {
		for i := range r.cells {
			r.cells[i][j] = allowed
		}
	}
}

// ExpectAllEgress sets every pair whose source is pod (its row).
func (r *Reachability) ExpectAllEgress(pod string, allowed bool) {
	if i, ok := r.lookup(pod); ok {
		for j := range r.cells[i] {
			r.cells[i][j] = allowed
		}
	}
}

// AllowLoopback sets every pod's connection to itself to allowed.
func (r *Reachability) AllowLoopback() {
	for i := range r.cells {
		r.cells[i][i] = true
	}
}

// Allowed returns the value for from → to; false for unknown pods.
func (r *Reachability) Allowed(from, to string) bool {
	i, okFrom := r.index[from]
	j, okTo := r.index[to]
	return okFrom && okTo && r.cells[i][j]
}

// Clone returns a deep copy of r.
func (r *Reachability) Clone() *Reachability {
	c := &Reachability{pods: slices.Clone(r.pods), index: make(map[string]int, len(r.index)), errs: slices.Clone(r.errs)}
	for k, v := range r.index {
		c.index[k] = v
	}
	c.cells = make([][]bool, len(r.cells))
	for i := range r.cells {
		c.cells[i] = slices.Clone(r.cells[i])
	}
	return c
}

// String renders the table as a grid: "." allowed, "X" denied.
func (r *Reachability) String() string {
	return r.grid(func(i, j int) string {
		if r.cells[i][j] {
			return "."
		}
		return "X"
	})
}

// grid renders one mark per cell, rows labelled by source and columns by
// destination.
func (r *Reachability) grid(mark func(i, j int) string) string {
	width := 1
	for _, p := range r.pods {
		width = max(width, len(p))
	}
	var b strings.Builder
	line := func(head string, cell func(j int) string) {
		var l strings.Builder
		fmt.Fprintf(&l, "%-*s", width, head)
		for j := range r.pods {
			fmt.Fprintf(&l, " %-*s", width, cell(j))
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteString("\n")
	}
	line("-", func(j int) string { return r.pods[j] })
	for i, p := range r.pods {
		line(p, func(j int) string { return mark(i, j) })
	}
	return b.String()
}

// CompareOptions says how the diagonal (a pod's connection to itself) is
// compared.
type CompareOptions struct {
	// IgnoreLoopback skips the diagonal, as upstream does.
	IgnoreLoopback bool
	// LoopbackAllowed expects the diagonal to be allowed whatever the
	// expected table says (Palisade's semantics: a pod's traffic to itself
	// never leaves the pod).
	LoopbackAllowed bool
}

// Mismatch is one pair whose observed value differs from the expected one.
type Mismatch struct {
	From, To           string
	Expected, Observed bool
}

func (m Mismatch) String() string {
	word := func(b bool) string {
		if b {
			return "allowed"
		}
		return "denied"
	}
	return fmt.Sprintf("%s -> %s: expected %s, observed %s", m.From, m.To, word(m.Expected), word(m.Observed))
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Expected, Observed *Reachability
	Options            CompareOptions
	Mismatches         []Mismatch
	// Errs holds problems with the tables themselves (unknown pods,
	// different pod lists).
	Errs []string
}

// OK reports whether the tables agree and are well formed.
func (c *Comparison) OK() bool { return len(c.Mismatches) == 0 && len(c.Errs) == 0 }

// Compare compares an observed table with an expected one over the same
// pods.
func Compare(expected, observed *Reachability, opts CompareOptions) *Comparison {
	c := &Comparison{Expected: expected.Clone(), Observed: observed.Clone(), Options: opts}
	if opts.LoopbackAllowed {
		c.Expected.AllowLoopback()
	}
	if err := expected.Err(); err != nil {
		c.Errs = append(c.Errs, "expected: "+err.Error())
	}
	if err := observed.Err(); err != nil {
		c.Errs = append(c.Errs, "observed: "+err.Error())
	}
	if !slices.Equal(expected.pods, observed.pods) {
		c.Errs = append(c.Errs, fmt.Sprintf("pod lists differ: expected %v, observed %v", expected.pods, observed.pods))
		return c
	}
	for i, from := range c.Expected.pods {
		for j, to := range c.Expected.pods {
			if i == j && opts.IgnoreLoopback {
				continue
			}
			if e, o := c.Expected.cells[i][j], c.Observed.cells[i][j]; e != o {
				c.Mismatches = append(c.Mismatches, Mismatch{From: from, To: to, Expected: e, Observed: o})
			}
		}
	}
	return c
}

// String renders the comparison for a failure message: the expected and
// observed grids, a grid marking each differing pair with "!" (and an
// ignored diagonal with "-"), and the list of differing pairs.
func (c *Comparison) String() string {
	var b strings.Builder
	for _, e := range c.Errs {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	if !slices.Equal(c.Expected.pods, c.Observed.pods) {
		return b.String()
	}
	fmt.Fprintf(&b, "%d of %d pairs differ (rows: from, columns: to; \".\" allowed, \"X\" denied)\n",
		len(c.Mismatches), len(c.Expected.pods)*len(c.Expected.pods))
	fmt.Fprintf(&b, "expected:\n%s", c.Expected)
	fmt.Fprintf(&b, "observed:\n%s", c.Observed)
	fmt.Fprintf(&b, "comparison (\"!\" differs):\n%s", c.Expected.grid(func(i, j int) string {
		switch {
		case i == j && c.Options.IgnoreLoopback:
			return "-"
		case c.Expected.cells[i][j] != c.Observed.cells[i][j]:
			return "!"
		}
		return "."
	}))
	for _, m := range c.Mismatches {
		fmt.Fprintf(&b, "  %s\n", m)
	}
	return b.String()
}

// Flow is one probe of a matrix: a connection from pod From to pod To, in
// one family.
type Flow struct {
	From, To string
	Src, Dst netip.Addr
	Protocol corev1.Protocol
	Port     int
}

func (f Flow) String() string {
	return fmt.Sprintf("%s (%s) -> %s (%s) %s/%d", f.From, f.Src, f.To, f.Dst, f.Protocol, f.Port)
}

// Observe builds the observed table over pods for one protocol, port and
// family by calling probe for every ordered pair (loopback included). A pair
// where either pod has no address in fam is denied without a probe.
func Observe(c *Cluster, pods []string, fam Family, proto corev1.Protocol, port int, probe func(Flow) bool) *Reachability {
	r := NewReachability(pods, false)
	for i, from := range pods {
		fns, fname, _ := strings.Cut(from, "/")
		src, okSrc := c.PodIP(fns, fname, fam)
		for j, to := range pods {
			tns, tname, _ := strings.Cut(to, "/")
			dst, okDst := c.PodIP(tns, tname, fam)
			if okSrc && okDst {
				r.cells[i][j] = probe(Flow{From: from, To: to, Src: src, Dst: dst, Protocol: proto, Port: port})
			}
		}
	}
	return r
}
