package matrix

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Pod is one row and one column of the matrix.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// String renders the pod as namespace/name.
func (p Pod) String() string { return p.Namespace + "/" + p.Name }

// Port is a destination port of a flow.
type Port struct {
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
	// Name is the container port's name when the port was named (asked by
	// name, or taken from a named container port); else empty.
	Name string `json:"name,omitempty"`
}

// String renders the port as 6379/TCP, with its name when it has one:
// 6379/TCP (redis).
func (p Port) String() string {
	s := strconv.Itoa(int(p.Port)) + "/" + p.Protocol
	if p.Name != "" {
		s += " (" + p.Name + ")"
	}
	return s
}

// End is what decided one direction at one end of a flow: egress at the
// source, ingress at the destination.
type End struct {
	Allowed bool `json:"allowed"`
	// Tier is the tier that decided (Admin, NetworkPolicy, Baseline); empty
	// when no policy restricts this end in this direction.
	Tier string `json:"tier,omitempty"`
	// Kind, Namespace and Name name the deciding policy; empty when no
	// single policy decided (no policy restricts the end, or it is isolated
	// and no rule matched: then Tier is set and Rule is empty).
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// Rule is the deciding rule: its index, with its name when it has one.
	Rule string `json:"rule,omitempty"`
	// Isolating names, when the end is isolated and no rule matched, the
	// policies that isolate it (see End.Policy for the form).
	Isolating []string `json:"isolating,omitempty"`
	// AfterAdmin is set when the Admin tier applies to this end and did not
	// decide (no rule of it matched, or one passed): Summary names the Pass.
	AfterAdmin bool `json:"afterAdmin,omitempty"`
	// Summary says all of the above in a sentence.
	Summary string `json:"summary"`
}

// Policy renders the deciding policy as Kind namespace/name (or Kind name
// for a cluster-scoped one); empty when no single policy decided.
func (e End) Policy() string {
	if e.Name == "" {
		return ""
	}
	return PolicyName(e.Kind, e.Namespace, e.Name)
}

// PolicyName renders a policy as Kind namespace/name, or Kind name when
// namespace is empty (a cluster-scoped policy).
func PolicyName(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// Result is one evaluated flow: from Src to Dst on Port.
type Result struct {
	Src, Dst Pod
	Port     Port
	Allowed  bool
	// Egress is what decided at the source, Ingress at the destination.
	Egress, Ingress End
	// Reason explains a verdict reached without the two checks (traffic of
	// a pod to itself); empty otherwise.
	Reason string
}

// Verdict sums up a cell.
type Verdict string

// Cell verdicts.
const (
	// Allow: every port of the cell is allowed.
	Allow Verdict = "allow"
	// Deny: no port of the cell is allowed.
	Deny Verdict = "deny"
	// Partial: some ports are allowed, others are not.
	Partial Verdict = "partial"
	// None: the cell has no port to test (the destination exposes none, or
	// none of the ports asked).
	None Verdict = "none"
	// Self: a pod to itself with no flow given (such traffic never leaves
	// the pod and is always allowed, so it is usually not evaluated).
	Self Verdict = "self"
)

// Flow is one port of a cell, with its verdict and what decided at each end.
type Flow struct {
	Port
	Verdict Verdict `json:"verdict"` // Allow or Deny
	Egress  End     `json:"egress"`
	Ingress End     `json:"ingress"`
	Reason  string  `json:"reason,omitempty"`
}

// Cell is what one source can reach of one destination.
type Cell struct {
	Src, Dst int // indexes into Matrix.Pods
	Verdict  Verdict
	// Self is set on the diagonal: a pod to itself. Its Verdict is Self
	// when no flow was given for it.
	Self bool
	// Flows are sorted by protocol (TCP, UDP, SCTP), then port number.
	Flows []Flow
}

// Group is one namespace's run of pods: Pods[First:First+Count].
type Group struct {
	Namespace string `json:"namespace"`
	First     int    `json:"first"`
	Count     int    `json:"count"`
}

// Matrix is the reachability of every pod from every pod (itself included).
type Matrix struct {
	// Pods are sorted by namespace, then name (numbers in names compare as
	// numbers).
	Pods []Pod
	// Groups are the namespaces, in the order of Pods.
	Groups []Group
	// Cells holds len(Pods)² cells, source-major: see Cell.
	Cells []Cell
	// Ports describes the ports asked, for legends: "80/TCP, http" or
	// "each destination's container ports".
	Ports string
}

// Cell returns the cell of source i and destination j; it panics when either
// is out of range, like a slice index.
func (m *Matrix) Cell(i, j int) *Cell {
	n := len(m.Pods)
	if i < 0 || j < 0 || i >= n || j >= n {
		panic(fmt.Sprintf("matrix: cell (%d, %d) out of range [0, %d)", i, j, n))
	}
	return &m.Cells[i*n+j]
}

// Counts are the number of cells of each verdict, the diagonal (a pod to
// itself) excluded.
type Counts struct {
	Allow, Deny, Partial, None int
}

// Count counts the cells of each verdict, the diagonal excluded.
func (m *Matrix) Count() Counts {
	var c Counts
	for _, cell := range m.Cells {
		if cell.Self {
			continue
		}
		switch cell.Verdict {
		case Allow:
			c.Allow++
		case Deny:
			c.Deny++
		case Partial:
			c.Partial++
		case None:
			c.None++
		}
	}
	return c
}

// Build makes the matrix of pods from the evaluated flows among them. ports
// describes the ports asked, for legends. Every pod is a row and a column,
// whether or not any result names it; with no pods the matrix is empty.
// A result naming a pod absent from pods, or a second result for the same
// source, destination and port, is an error naming it. A pod listed twice
// counts once.
func Build(pods []Pod, results []Result, ports string) (*Matrix, error) {
	m := &Matrix{Pods: slices.Clone(pods), Ports: ports}
	slices.SortFunc(m.Pods, comparePods)
	m.Pods = slices.Compact(m.Pods)
	index := make(map[Pod]int, len(m.Pods))
	for i, p := range m.Pods {
		index[p] = i
		if len(m.Groups) == 0 || m.Groups[len(m.Groups)-1].Namespace != p.Namespace {
			m.Groups = append(m.Groups, Group{Namespace: p.Namespace, First: i})
		}
		m.Groups[len(m.Groups)-1].Count++
	}
	n := len(m.Pods)
	m.Cells = make([]Cell, n*n)
	for i := range n {
		for j := range n {
			m.Cells[i*n+j] = Cell{Src: i, Dst: j, Self: i == j}
		}
	}
	type key struct {
		src, dst int
		port     uint16
		protocol string
	}
	seen := map[key]bool{}
	for _, r := range results {
		i, ok := index[r.Src]
		if !ok {
			return nil, fmt.Errorf("flow %s -> %s %s: source pod %s is not among the matrix's pods", r.Src, r.Dst, r.Port, r.Src)
		}
		j, ok := index[r.Dst]
		if !ok {
			return nil, fmt.Errorf("flow %s -> %s %s: destination pod %s is not among the matrix's pods", r.Src, r.Dst, r.Port, r.Dst)
		}
		k := key{i, j, r.Port.Port, r.Port.Protocol}
		if seen[k] {
			return nil, fmt.Errorf("flow %s -> %s %d/%s: given twice", r.Src, r.Dst, r.Port.Port, r.Port.Protocol)
		}
		seen[k] = true
		f := Flow{Port: r.Port, Verdict: Deny, Egress: r.Egress, Ingress: r.Ingress, Reason: r.Reason}
		if r.Allowed {
			f.Verdict = Allow
		}
		c := m.Cell(i, j)
		c.Flows = append(c.Flows, f)
	}
	for i := range m.Cells {
		c := &m.Cells[i]
		slices.SortFunc(c.Flows, func(a, b Flow) int { return comparePorts(a.Port, b.Port) })
		c.Verdict = fold(c.Flows)
		if c.Self && c.Verdict == None {
			c.Verdict = Self
		}
	}
	return m, nil
}

// comparePorts orders ports by protocol (TCP, UDP, SCTP), then number.
func comparePorts(a, b Port) int {
	return cmp.Or(cmp.Compare(protocolRank(a.Protocol), protocolRank(b.Protocol)), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

// protocolRank orders protocols as the IR does: TCP, UDP, SCTP, then any
// other.
func protocolRank(p string) int {
	switch p {
	case "TCP":
		return 0
	case "UDP":
		return 1
	case "SCTP":
		return 2
	}
	return 3
}

// fold sums up the flows of a cell.
func fold(fl []Flow) Verdict {
	if len(fl) == 0 {
		return None
	}
	allowed := 0
	for _, f := range fl {
		if f.Verdict == Allow {
			allowed++
		}
	}
	switch allowed {
	case len(fl):
		return Allow
	case 0:
		return Deny
	}
	return Partial
}

func comparePods(a, b Pod) int {
	return cmp.Or(naturalCompare(a.Namespace, b.Namespace), naturalCompare(a.Name, b.Name),
		// Equal in natural order ("web-01" and "web-1"): byte order decides.
		cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// naturalCompare compares strings with runs of digits compared by value:
// "web-2" < "web-10".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), cmp.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

// digits is the length of the run of ASCII digits that starts s.
func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
