package matrix

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// HTMLOptions say what the page's header tells about the matrix.
type HTMLOptions struct {
	// Source names where the objects came from ("files examples/demo",
	// "cluster kind-dev"); empty leaves it out.
	Source string
	// Selection says which pods were selected ("namespaces shop,
	// monitoring; pods role=db"); empty leaves it out.
	Selection string
}

//go:embed matrix.html
var pageText string

var page = template.Must(template.New("matrix").Funcs(template.FuncMap{"hue": hue}).Parse(pageText))

// The page's cell width and the widest character of its namespace headers,
// in CSS pixels, to tell which names need tilting.
const (
	cellWidth = 26
	charWidth = 8
)

// hue is the colour of the k-th namespace, spread around the wheel.
func hue(k int) int { return (205 + k*67) % 360 }

// WriteHTML writes the matrix as one self-contained HTML page: inline style
// and script, nothing fetched from the network. Sources are rows, grouped by
// namespace like the columns; each cell is coloured by its verdict, carries
// the verdict of every port and what decided at each end in its title (a
// tooltip that the page's script shows richer on hover, highlighting the
// cell's row and column). Every name is escaped. With no pods the page says
// so.
func (m *Matrix) WriteHTML(w io.Writer, opt HTMLOptions) error {
	n := len(m.Pods)
	type cellView struct {
		Class, Symbol, Title string
		Col                  int
		GroupStart           bool
	}
	type rowView struct {
		Pod        Pod
		Index      int
		Group      *Group // set on the first row of a group
		GroupIndex int
		Cells      []cellView
	}
	type colView struct {
		Pod        Pod
		Index      int
		GroupStart bool
	}
	starts := map[int]bool{}
	for _, g := range m.Groups {
		starts[g.First] = true
	}
	var cols []colView
	for j, p := range m.Pods {
		cols = append(cols, colView{Pod: p, Index: j, GroupStart: starts[j] && j > 0})
	}
	var rows []rowView
	for gi := range m.Groups {
		g := &m.Groups[gi]
		for i := g.First; i < g.First+g.Count; i++ {
			r := rowView{Pod: m.Pods[i], Index: i}
			if i == g.First {
				r.Group, r.GroupIndex = g, gi
			}
			for j := range n {
				c := m.Cell(i, j)
				class := "c " + string(c.Verdict)
				if c.Self && c.Verdict != Self {
					class += " self"
				}
				symbol := symbols[c.Verdict]
				if c.Verdict == Self {
					symbol = "" // the stripes say it
				}
				r.Cells = append(r.Cells, cellView{Class: class, Symbol: symbol, Title: m.title(c), Col: j, GroupStart: starts[j] && j > 0})
			}
			rows = append(rows, r)
		}
	}
	// The script's data: per cell, per port, the verdict and each end.
	type endData struct {
		Allowed   bool     `json:"a"`
		Tier      string   `json:"t,omitempty"`
		Policy    string   `json:"p,omitempty"`
		Rule      string   `json:"r,omitempty"`
		Summary   string   `json:"s"`
		Isolating []string `json:"iso,omitempty"`
		// Note is the evaluator's sentence, shown too when the structured
		// fields do not say all (a Pass in the Admin tier).
		Note string `json:"n,omitempty"`
	}
	// Ends repeat across cells: each distinct one is written once, flows
	// refer to it by index.
	type flowData struct {
		Port string `json:"port"`
		Key  string `json:"k"` // port/protocol, what the port filter selects

		Verdict Verdict `json:"v"`
		Egress  int     `json:"e"` // index into ends; -1 with a Reason
		Ingress int     `json:"i"`
		Reason  string  `json:"why,omitempty"`
	}
	data := struct {
		Pods  []string     `json:"pods"`
		Ends  []endData    `json:"ends"`
		Cells [][]flowData `json:"cells"`
	}{Cells: make([][]flowData, len(m.Cells))}
	type endKey struct {
		allowed, afterAdmin                        bool
		tier, kind, ns, name, rule, sum, isolating string
	}
	ends := map[endKey]int{}
	end := func(e End) int {
		key := endKey{e.Allowed, e.AfterAdmin, e.Tier, e.Kind, e.Namespace, e.Name, e.Rule, e.Summary, strings.Join(e.Isolating, "\x00")}
		k, ok := ends[key]
		if !ok {
			k = len(data.Ends)
			ends[key] = k
			d := endData{Allowed: e.Allowed, Tier: e.Tier, Policy: e.Policy(), Rule: e.Rule, Summary: e.Summary, Isolating: e.Isolating}
			if e.AfterAdmin {
				d.Note = e.Summary
			}
			data.Ends = append(data.Ends, d)
		}
		return k
	}
	for _, p := range m.Pods {
		data.Pods = append(data.Pods, p.String())
	}
	// The distinct ports, for the page's port filter.
	seenPort := map[string]bool{}
	var portKeys []Port
	for k, c := range m.Cells {
		fl := make([]flowData, 0, len(c.Flows))
		for _, f := range c.Flows {
			key := portKey(f.Port)
			if !seenPort[key] {
				seenPort[key] = true
				portKeys = append(portKeys, f.Port)
			}
			fd := flowData{Port: f.Port.String(), Key: key, Verdict: f.Verdict, Egress: -1, Ingress: -1, Reason: f.Reason}
			if f.Reason == "" {
				fd.Egress, fd.Ingress = end(f.Egress), end(f.Ingress)
			}
			fl = append(fl, fd)
		}
		data.Cells[k] = fl
	}
	// A namespace's name that does not fit above its columns is tilted; the
	// header row grows to hold the longest.
	type groupView struct {
		Group
		Tilt bool
	}
	var groups []groupView
	header := 30
	for _, g := range m.Groups {
		width := utf8.RuneCountInString(g.Namespace) * charWidth
		tilt := width > g.Count*cellWidth-12
		if tilt {
			header = max(header, width*71/100+32)
		}
		groups = append(groups, groupView{g, tilt})
	}
	slices.SortFunc(portKeys, comparePorts)
	var filter []string
	if len(portKeys) > 1 {
		for _, p := range portKeys {
			filter = append(filter, portKey(p))
		}
	}
	counts := m.Count()
	return page.Execute(w, map[string]any{
		"Pods":         n,
		"Namespaces":   len(m.Groups),
		"Pairs":        n * (n - 1),
		"Counts":       counts,
		"Ports":        m.Ports,
		"PortFilter":   filter,
		"Source":       opt.Source,
		"Selection":    opt.Selection,
		"Groups":       groups,
		"HeaderHeight": header,
		"Cols":         cols,
		"Rows":         rows,
		"Data":         data,
		"Legend": []struct {
			Class, Symbol, Text string
		}{
			{"allow", symbols[Allow], legend[Allow]},
			{"partial", symbols[Partial], legend[Partial]},
			{"deny", symbols[Deny], legend[Deny]},
			{"none", symbols[None], legend[None]},
			{"self", "", legend[Self]},
		},
	})
}

// title is a cell's plain-text tooltip: the pair and its verdict, then a
// line per port with its verdict and what decided at each end.
func (m *Matrix) title(c *Cell) string {
	src, dst := m.Pods[c.Src], m.Pods[c.Dst]
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s: %s", src, dst, verdictWords[c.Verdict])
	for _, f := range c.Flows {
		fmt.Fprintf(&b, "\n%s: %s", f.Port, f.Verdict)
		if f.Reason != "" {
			fmt.Fprintf(&b, " (%s)", f.Reason)
			continue
		}
		fmt.Fprintf(&b, "; egress: %s; ingress: %s", endText(f.Egress), endText(f.Ingress))
	}
	return b.String()
}

// portKey is a port without its name: 6379/TCP.
func portKey(p Port) string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// endText says in a few words what decided an end: the policy and rule,
// the policies that isolate it when no rule matched, or the evaluator's
// sentence (always after the Admin tier, to name its Pass).
func endText(e End) string {
	if e.AfterAdmin {
		return e.Summary // it names the Pass
	}
	verb := "allowed"
	if !e.Allowed {
		verb = "denied"
	}
	tier := ""
	if e.Tier != "" && e.Tier != "NetworkPolicy" {
		tier = " (" + e.Tier + " tier)"
	}
	switch {
	case e.Name != "":
		return verb + " by " + e.Policy() + " rule " + e.Rule + tier
	case len(e.Isolating) > 0:
		return verb + ", no rule matched in " + strings.Join(e.Isolating, ", ")
	}
	return e.Summary
}

var verdictWords = map[Verdict]string{
	Allow:   "allowed",
	Partial: "partly allowed",
	Deny:    "denied",
	None:    "no port to test",
	Self:    "a pod to itself (always allowed: such traffic never leaves the pod)",
}
